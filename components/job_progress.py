"""Live progress of a background job: a bar that polls while the job runs, then one full rerun."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import streamlit as st


class BackgroundJob(Protocol):
    running: bool
    fraction: float
    stage: str
    message: str


def job_progress(job: BackgroundJob, *, label: str = "", every_s: float = 1.0,
                 extra: Callable[[BackgroundJob], None] | None = None) -> None:
    """Poll ``job`` every ``every_s`` seconds inside a fragment (the rest of the page stays put); when it
    ends, rerun the whole page once so it shows the result. ``extra`` renders more (e.g. a preview)."""

    @st.fragment(run_every=every_s)
    def _poll() -> None:
        if not job.running:
            st.rerun()
        text = " ".join(x for x in (label, f"{job.stage}:" if job.message else job.stage, job.message) if x)
        st.progress(min(1.0, max(0.0, float(job.fraction))), text=text)
        if extra is not None:
            extra(job)

    _poll()
