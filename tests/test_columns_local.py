"""Structured columns on the built-in llama.cpp server: it refuses ``json_schema`` (HTTP 500) and
constrains its answer to a schema sent as ``{"type": "json_object", "schema": ...}``."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.generation.backends import BackendConfig, OpenAIBackend
from services.generation.local_server import MODEL_NAME, LocalModelServer
from services.generation.presets import LOCAL
from services.generation.run_setup import prepare_run
from services.generation.run_store import get_run
from services.generation.runner import RunSettings, execute_run
from services.recipes.recipe import Recipe

pytestmark = pytest.mark.real_model


def test_the_built_in_model_answers_a_structured_column_that_validates(store):
    server = LocalModelServer()
    try:
        cfg = BackendConfig(LOCAL, server.ensure_running(), MODEL_NAME, timeout_s=120)
        rec = Recipe.parse({
            "name": "local-label", "task": "You label the sentiment of short texts.",
            "dimensions": [{"name": "text", "values": ["I loved this film.", "The soup was cold and bland."]}],
            "sampling": {"strategy": "grid"}, "model": {"temperature": 0.3, "max_tokens": 48},
            "columns": [{"name": "sentiment", "kind": "structured", "user_template": "Text: {{ text }}\nLabel its sentiment.",
                         "output_schema": {"type": "object", "properties": {"label": {"enum": ["positive", "negative"]}},
                                           "required": ["label"]}}],
        })
        run_id = prepare_run(store, rec, cfg, RunSettings(concurrency=1))
        backend = OpenAIBackend(cfg)

        async def go():
            try:
                return await execute_run(store, run_id, backend)
            finally:
                await backend.aclose()

        out = asyncio.run(go())
    finally:
        server.stop()
    assert out.status == "finished" and out.failed == 0, get_run(store, run_id).error
    rows = store.query("SELECT value, params, attempts FROM samples WHERE run_id = ? AND step = 'sentiment'", [run_id])
    assert len(rows) == 2
    for value, params, attempts in rows:
        assert json.loads(value)["label"] in ("positive", "negative")
        assert json.loads(params)["response_format"]["type"] == "json_object" and attempts == 1
