"""Evaluate: faithfulness by an LLM judge (cost first, runs only on request) and judge calibration.

The backend comes from services.curation.judge_step.judge_backend_factory (one factory for every
backend); the key is read only when the button is pressed and never shown or stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from services.curation.judge_step import judge_backend_factory
from services.evaluation.calibration import judge_agreement
from services.evaluation.judging import FAITHFUL_AT, judged, plan_judging, run_judging
from services.generation.presets import PRESETS, key_from

if TYPE_CHECKING:
    from services.core.store import Store


def judge_section(store: Store, frames: Callable[[], dict[str, pd.DataFrame]], dimensions: list[str], memo: dict, *,
                  secrets: Callable[[], Mapping[str, Any]], local: Callable[[], Any]) -> None:
    st.subheader("Faithfulness by an LLM judge")
    st.caption(f"One rubric per condition value ('was it asked for X: does it have X?'), scored 1–5; faithful at ≥ {FAITHFUL_AT:.0f}. "
               "Scores are cached by rubric, judge and text: nothing is paid twice.")
    c1, c2, c3 = st.columns(3)
    per_set = int(c1.number_input("Samples per set", 1, 500, 10, key="evaluate_judge_n"))
    preset = c2.selectbox("Backend", list(PRESETS), format_func=lambda k: PRESETS[k].label, key="evaluate_judge_preset")
    model = c3.text_input("Model", value=PRESETS[preset].model, key="evaluate_judge_model")
    base_url = st.text_input("Base URL", value=PRESETS[preset].base_url, key="evaluate_judge_url", disabled=preset == "local")
    if ("judge plan", per_set) not in memo:  # drawn once per report and size: the same samples on every rerun
        memo[("judge plan", per_set)] = plan_judging(frames(), dimensions, per_set)
    plan = memo[("judge plan", per_set)]
    label = f"{preset}/{model}"
    cost = plan.cost(model)
    price = ("nothing (the built-in model runs here)" if preset == "local" else
             f"about ${cost:.4f} at the shipped price of {model}" if cost is not None else
             f"an unknown amount ({model} is not in the shipped price table)")
    st.info(f"{plan.calls} judge calls (≈{plan.prompt_tokens():,} prompt tokens and up to {plan.calls * 120:,} reply tokens): "
            f"{price}. Cached scores are not sent again.")
    for note in plan.notes:
        st.caption(note)
    if plan.calls and st.button(f"Run the judge on {plan.calls} (sample, condition) pairs", key="evaluate_judge_go"):
        factory = judge_backend_factory(preset, model, base_url=base_url or None,
                                        api_key=key_from(PRESETS[preset], dict(secrets())), local=local())
        with st.spinner("Judging…"):
            try:
                said = run_judging(store, factory, label, plan)
            except Exception as exc:  # a sentence, never a traceback; the rest of the report stands
                said = [f"The judge could not run: {type(exc).__name__}: {exc}"]
        for line in said:
            st.warning(line)
    result = judged(store, plan, label)
    if result.empty or not result["scored"].any():
        st.caption(f"No score from {label} for these samples yet.")
    else:
        st.dataframe(result, hide_index=True, width="stretch")


def calibration_section(store: Store, run_ids: list[str]) -> None:
    st.subheader("Judge calibration against human review")
    table, notes = judge_agreement(store, run_ids)
    if not table.empty:
        st.caption("Per judge threshold: the judge keeps a sample at score ≥ threshold; agreement with the reviewers' keep/drop.")
        st.dataframe(table, hide_index=True, width="stretch")
    for n in notes:
        st.caption(n)
