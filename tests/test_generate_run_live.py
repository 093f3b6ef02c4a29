"""The Generate page's live view shows the worker's adaptive concurrency and its 429 count."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from components.generate_run import pacing_line
from services.core.store import Store
from services.generation.pacing import LiveState
from tests.run_helpers import plan_run, recipe

SCRIPT = """
import os
from components.generate_run import live_run
from services.core.store import Store
from services.generation.pacing import LiveState

class Jobs:  # a running job whose pacer halved twice after five 429s
    def is_active(self, run_id):
        return True
    def live(self, run_id):
        return LiveState(limit=8, concurrency=2, lowest=2, rate_limited=5)

store = Store(os.environ["STUDIO_DB"])
live_run(store, Jobs(), os.environ["LIVE_RUN_ID"], True)
store.close()
"""


def test_live_fragment_shows_concurrency_and_429s(db_path, monkeypatch):
    store = Store(db_path)
    run_id = plan_run(store, recipe(n_items=3))
    store.close()
    monkeypatch.setenv("LIVE_RUN_ID", run_id)
    at = AppTest.from_string(SCRIPT, default_timeout=30).run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert "Concurrency 2 of 8 · 5 rate-limit answer(s) (HTTP 429)" in captions


def test_pacing_line_says_nothing_without_a_worker_and_tells_a_pause():
    assert pacing_line(None) is None and pacing_line(LiveState()) is None
    paused = LiveState(limit=4, concurrency=1, rate_limited=1200, paused_until=10.0)
    paused.paused_s = lambda now=None: 1.5  # type: ignore[method-assign]
    assert pacing_line(paused) == "Concurrency 1 of 4 · 1,200 rate-limit answer(s) (HTTP 429) · waiting 1.5 s (Retry-After)"
