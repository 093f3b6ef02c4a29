"""The Run section of the Generate page: pick a run, its Cancel / Resume buttons, its live view."""

from __future__ import annotations

from typing import Any, Literal

import streamlit as st

from components.generate_view import live_view, run_label
from services.core.clock import utc_now
from services.generation.run_store import (
    RESUMABLE,
    RunInfo,
    events,
    get_run,
    newest_samples,
    progress,
    rename_run,
    unique_run_name,
)

Action = Literal["cancel", "resume"]


def pick_run(runs: list[RunInfo]) -> str:
    """The run to show: the one this session started last (``generate_run``), else the newest."""
    ids = [r.run_id for r in runs]
    labels = {r.run_id: run_label(r) for r in runs}
    current = st.session_state.get("generate_run")
    return st.selectbox("Run", ids, index=ids.index(current) if current in ids else 0, format_func=labels.get,
                        key="generate_run_pick")


def rename_box(store: Any, run: RunInfo) -> None:
    """Name a run as it will be shown everywhere (names are unique: a taken one gets a number)."""
    with st.popover("Rename", icon=":material/edit:"):
        name = st.text_input("Name", value=run.name or "", key=f"generate_rename_{run.run_id}")
        if st.button("Save name", key=f"generate_rename_save_{run.run_id}") and name.strip() and name.strip() != run.name:
            rename_run(store, run.run_id, unique_run_name(store, name.strip()))
            st.rerun()


def run_controls(run: RunInfo, active: bool) -> Action | None:
    """Cancel while the run works, Resume once it stopped short; returns the button pressed."""
    b1, b2, _ = st.columns([1, 1, 4])
    if active and b1.button("Cancel", key="generate_cancel"):
        return "cancel"
    if not active and run.status in RESUMABLE and b2.button("Resume", key="generate_resume"):
        return "resume"
    return None


def pacing_line(live: Any) -> str | None:
    """One line on the worker's adaptive concurrency: allowed now of the ceiling, 429s so far, a pause."""
    if live is None or not getattr(live, "limit", 0):
        return None
    line = f"Concurrency {live.concurrency} of {live.limit} · {live.rate_limited:,} rate-limit answer(s) (HTTP 429)"
    if (wait := live.paused_s()) > 0:
        line += f" · waiting {wait:.1f} s (Retry-After)"
    return line


def live_run(store: Any, jobs: Any, run_id: str, active: bool) -> None:
    """The run's progress, polled every second while its worker runs (only this fragment reruns);
    when the worker ends, one full rerun refreshes the page and stops the polling."""

    @st.fragment(run_every=1.0 if active else None)
    def live() -> None:
        r = get_run(store, run_id)
        line = pacing_line(jobs.live(run_id) if active and hasattr(jobs, "live") else None)
        if line:
            st.caption(line)
        live_view(r, progress(store, r), newest_samples(store, run_id), events(store, run_id), utc_now())
        if active and not jobs.is_active(run_id):
            st.rerun()

    live()
