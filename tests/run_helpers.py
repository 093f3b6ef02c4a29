"""Shared helpers for the runner tests: small recipes and a fake chat backend."""

from __future__ import annotations

import asyncio
from typing import Any

from services.core.store import Store
from services.generation.backends import BackendConfig, Completion
from services.generation.run_setup import prepare_run
from services.generation.runner import RunSettings
from services.recipes.recipe import Recipe


def recipe(n_items: int = 6, modes: list[str] | None = None, steps: list[dict] | None = None, **model: Any) -> Recipe:
    """A recipe whose prompts are unique per item (the index is in the user message)."""
    modes = modes or ["ok"]
    body: dict[str, Any] = {
        "name": "runner-test",
        "task": "You write one short sentence.",
        "user_template": "Item {{ index }}: write about {{ topic }} {{ mode }}",
        "dimensions": [{"name": "topic", "values": ["rain", "cats", "tea"]}, {"name": "mode", "values": modes}],
        "sampling": {"strategy": "random", "n_items": n_items, "seed": 1},
        "model": {"temperature": 0.5, "max_tokens": 16, **model},
    }
    if steps:
        body["steps"] = steps
    return Recipe.parse(body)


def grid_recipe(modes: list[str]) -> Recipe:
    """One item per mode (grid over a single dimension)."""
    return Recipe.parse({
        "name": "modes", "task": "t", "user_template": "Item {{ index }} {{ mode }}",
        "dimensions": [{"name": "mode", "values": modes}], "sampling": {"strategy": "grid"},
        "model": {"temperature": 0.5, "max_tokens": 16},
    })


def plan_run(store: Store, rec: Recipe, base_url: str = "http://127.0.0.1:9/v1", **settings: Any) -> str:
    budget = settings.pop("budget_usd", None)
    limit = settings.pop("item_limit", None)
    cfg = BackendConfig("custom", base_url, "mock-model", "sk-test", timeout_s=settings.get("timeout_s", 10), max_retries=settings.get("max_retries", 2))
    return prepare_run(store, rec, cfg, RunSettings(**settings), budget_usd=budget, item_limit=limit)


class FakeBackend:
    """Deterministic answers; optional delay; records every call."""

    model = "fake"

    def __init__(self, delay: float = 0.0, fail: str | None = None):
        self.delay = delay
        self.fail = fail
        self.calls: list[list[dict[str, str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def complete(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Completion:
        self.calls.append(messages)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            user = messages[-1]["content"]
            if self.fail and self.fail in user:
                raise ValueError("fake failure")
            return Completion(f"out[{user[:40]}|seed={params.get('seed')}]", 10, 4, "stop", self.delay * 1000)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        pass
