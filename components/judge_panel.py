"""The LLM judge's scoring panel: scoring is an explicit, paid action, so it has its own button.

The backend comes from services.curation.judge_step.judge_backend_factory (one factory for every
backend); the key is read only when the button is pressed and never shown or stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import streamlit as st

from services.curation.calibration import threshold_calibration
from services.curation.judge_step import JudgeReport, judge_backend_factory, score_missing
from services.generation.presets import PRESETS, key_from

if TYPE_CHECKING:
    from services.core.store import Store
    from services.curation.pipeline import Pipeline


def judge_targets(pipelines: Sequence[Pipeline]) -> list[tuple[str, str]]:
    """(rubric, judge label) of every judge step in the pipelines, first seen first, without repeats."""
    return list(dict.fromkeys((s.rubric, s.judge_model) for p in pipelines for s in p.steps if s.kind == "judge"))


def calibration_note(store: Store, sample_keys: Sequence[str]) -> Callable[[str, str, float], None]:
    """What ``pipeline_editor`` draws under a judge threshold: that threshold against the human
    review decisions of these samples (accuracy, Cohen's kappa, how many reviewed), or how many
    more reviews it needs."""
    keys = list(sample_keys)

    def note(rubric: str, judge: str, threshold: float) -> None:
        try:
            cal = threshold_calibration(store, keys, rubric, judge, threshold)
        except Exception as exc:  # a sentence, never a traceback: the editor must stay usable
            st.caption(f"Calibration against human review could not be computed: {type(exc).__name__}: {exc}")
            return
        st.caption("**Calibration against human review.** " + cal.sentence()
                   + (" Unreviewed samples of this run are not covered." if cal.result is not None else ""))

    return note


def judge_panel(store: Store, pipelines: Sequence[Pipeline], texts: list[str], *, prefix: str,
                secrets: Callable[[], Mapping[str, Any]], local: Callable[[], Any]) -> JudgeReport | None:
    """Score the texts not scored yet for the first judge step; nothing shows without one.
    ``secrets`` and ``local`` (the built-in model server) are asked for only when scoring starts.
    Returns the report of a scoring pass run in this script run, else None."""
    targets = judge_targets(pipelines)
    if not targets:
        return None
    with st.expander("LLM judge: score the samples not scored yet", expanded=True):
        st.caption("Scores are stored by (rubric, judge, text): a text is never scored twice. "
                   "Failures are kept as unscored; run again to retry them.")
        rubric, label = targets[0]
        preset = st.selectbox("Backend", list(PRESETS), format_func=lambda k: PRESETS[k].label, key=f"{prefix}_judge_preset")
        # The step's label is 'preset/model': its model part is the natural default.
        model = st.text_input("Model", value=label.split("/", 1)[1] if "/" in label else PRESETS[preset].model, key=f"{prefix}_judge_model")
        base_url = st.text_input("Base URL", value=PRESETS[preset].base_url, key=f"{prefix}_judge_url", disabled=preset == "local")
        if f"{preset}/{model}" != label:
            st.info(f"The judge step's label is '{label}': scores are stored under that label.")
        if not st.button(f"Score {len(texts)} samples (only those not scored yet)", key=f"{prefix}_judge_go"):
            return None
        factory = judge_backend_factory(preset, model, base_url=base_url or None,
                                        api_key=key_from(PRESETS[preset], dict(secrets())), local=local())
        with st.spinner("Scoring…"):
            try:
                report = score_missing(store, factory, label, rubric, texts)
            except Exception as exc:  # a sentence, never a traceback
                st.error(f"Scoring failed: {type(exc).__name__}: {exc}")
                return None
        (st.warning if report.failed else st.success)(report.summary())
        return report
