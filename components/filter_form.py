"""The pipeline editor: steps (one of each kind, in the order picked) with parameter widgets.

Widget keys are ``compare_filters_p{i}_{kind}_{param}``, so a saved version can be loaded into
the widgets by writing those keys (``load_into_state``) before the editor renders.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

STEP_LABELS = {
    "length": "Length bounds", "regex": "Regex", "keywords": "Keywords", "refusal": "Refusal / boilerplate",
    "exact_dedup": "Exact dedup", "minhash": "MinHash near-dup", "semantic_dedup": "Semantic dedup",
    "judge": "LLM judge", "adherence": "Condition adherence", "review": "Human review",
}
DEFAULT_STEPS = [
    ["length", "refusal", "exact_dedup"],
    ["length", "refusal", "minhash", "semantic_dedup", "adherence"],
    ["refusal", "minhash"],
    ["length", "exact_dedup"],
]
DEFAULT_NAMES = ["A", "B", "C", "D"]
# B starts stricter than A, so two fresh pipelines already disagree on real data.
DEFAULT_PARAMS: dict[int, dict[str, dict[str, Any]]] = {1: {"length": {"min": 20}, "semantic_dedup": {"threshold": 0.85}}}
PREFIX = "compare_filters"


def _k(i: int, kind: str, param: str) -> str:
    return f"{PREFIX}_p{i}_{kind}_{param}"


def load_into_state(i: int, name: str, steps: list[dict[str, Any]]) -> None:
    """Put a saved pipeline's name, step kinds and parameters into the editor's widget keys."""
    st.session_state[f"{PREFIX}_p{i}_name"] = name
    st.session_state[f"{PREFIX}_p{i}_steps"] = [s["kind"] for s in steps if s.get("kind") in STEP_LABELS]
    for s in steps:
        kind = s.get("kind")
        for param, value in s.items():
            if param == "kind":
                continue
            if param == "keywords" and isinstance(value, list):
                value = ", ".join(value)
            if param in ("min", "max") and value is None:
                value = 0
            if param in ("length_dimension", "keyword_dimension") and value is None:
                value = "(none)"
            if param == "extra_patterns":
                continue
            st.session_state[_k(i, kind, param)] = value


def _default(i: int, kind: str, param: str, value: Any) -> Any:
    return DEFAULT_PARAMS.get(i % len(DEFAULT_NAMES), {}).get(kind, {}).get(param, value)


def _params(i: int, kind: str, dimensions: list[str]) -> dict[str, Any]:
    k = lambda p: _k(i, kind, p)  # noqa: E731 - a short local helper reads better here
    if kind == "length":
        c1, c2, c3 = st.columns(3)
        unit = c1.selectbox("Unit", ["words", "characters", "tokens"], key=k("unit"))
        lo = c2.number_input("Min", min_value=0, value=_default(i, kind, "min", 3), step=1, key=k("min"), help="0: no minimum")
        hi = c3.number_input("Max", min_value=0, value=0, step=10, key=k("max"), help="0: no maximum")
        return {"unit": unit, "min": int(lo) or None, "max": int(hi) or None}
    if kind == "regex":
        pattern = st.text_input("Pattern", value=r"https?://", key=k("pattern"))
        mode = st.radio("Mode", ["exclude", "include"], horizontal=True, key=k("mode"))
        return {"pattern": pattern, "mode": mode}
    if kind == "keywords":
        words = st.text_input("Keywords (comma-separated)", value="lorem, ipsum", key=k("keywords"))
        mode = st.selectbox("Mode", ["exclude", "include_any", "include_all"], key=k("mode"))
        return {"keywords": [w for w in words.split(",")], "mode": mode}
    if kind == "refusal":
        return {"boilerplate": st.checkbox("Also chat boilerplate ('Sure! Here is…')", key=k("boilerplate"))}
    if kind == "exact_dedup":
        return {"normalise": st.checkbox("Normalise (case, punctuation, spaces)", value=True, key=k("normalise"))}
    if kind == "minhash":
        t = st.slider("Jaccard threshold", 0.3, 1.0, 0.7, 0.01, key=k("threshold"))
        size = st.number_input("Shingle size (words)", 1, 10, 3, key=k("shingle_size"))
        return {"threshold": t, "shingle_size": int(size)}
    if kind == "semantic_dedup":
        t = st.slider("Cosine threshold", 0.5, 1.0, _default(i, kind, "threshold", 0.92), 0.01, key=k("threshold"))
        keep = st.radio("Keep", ["first", "centre"], horizontal=True, key=k("keep"), help="centre: the sample closest to its group's mean")
        return {"threshold": t, "keep": keep}
    if kind == "judge":
        rubric = st.text_area("Rubric", value="The sample is fluent, on task, and would be useful as training data.", key=k("rubric"), height=80)
        model = st.text_input("Judge (preset/model: the cache label)", value="local/SmolLM2-135M-Instruct", key=k("judge_model"))
        t = st.slider("Minimum score", 1.0, 5.0, 3.0, 0.5, key=k("threshold"))
        unscored = st.radio("Not scored yet", ["keep", "drop"], horizontal=True, key=k("unscored"))
        return {"rubric": rubric, "judge_model": model, "threshold": t, "unscored": unscored}
    if kind == "adherence":
        opts = ["(none)", *dimensions]
        ld = st.selectbox("Length asked by dimension", opts, index=_guess(opts, ("length", "size", "words")), key=k("length_dimension"))
        tol = st.slider("Tolerance (share of the asked length)", 0.0, 2.0, 0.5, 0.05, key=k("tolerance"))
        kd = st.selectbox("Keyword named by dimension", opts, key=k("keyword_dimension"))
        return {"length_dimension": None if ld == "(none)" else ld, "tolerance": tol,
                "keyword_dimension": None if kd == "(none)" else kd}
    if kind == "review":
        return {"unreviewed": st.radio("Not reviewed yet", ["drop", "keep"], horizontal=True, key=k("unreviewed"))}
    return {}


def _guess(options: list[str], words: tuple[str, ...]) -> int:
    for i, o in enumerate(options):
        if any(w in o.lower() for w in words):
            return i
    return 0


def pipeline_editor(i: int, dimensions: list[str]) -> dict[str, Any]:
    """Name and steps of pipeline ``i``; returns the raw pipeline dict (validated by the caller)."""
    name = st.text_input("Name", value=DEFAULT_NAMES[i % len(DEFAULT_NAMES)], key=f"{PREFIX}_p{i}_name")
    kinds = st.multiselect("Steps, in order", list(STEP_LABELS), default=DEFAULT_STEPS[i % len(DEFAULT_STEPS)],
                           format_func=STEP_LABELS.get, key=f"{PREFIX}_p{i}_steps")
    steps = []
    for n, kind in enumerate(kinds):
        with st.expander(f"{n + 1}. {STEP_LABELS[kind]}", expanded=kind in ("length", "minhash", "semantic_dedup", "judge")):
            steps.append({"kind": kind, **_params(i, kind, dimensions)})
    return {"name": name, "steps": steps}
