"""The pipeline editor: steps (one of each kind, in the order picked) with parameter widgets.

Widget keys are ``compare_filters_p{i}_{kind}_{param}``, so a saved version can be loaded into
the widgets by writing those keys (``load_into_state``) before the editor renders. Parameters
without a widget ride along under ``compare_filters_p{i}_loaded``, so load → save keeps the hash.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import streamlit as st

from services.curation.text_steps import LENGTH_UNITS

STEP_LABELS = {
    "length": "Length bounds", "regex": "Regex", "keywords": "Keywords", "refusal": "Refusal / boilerplate",
    "exact_dedup": "Exact dedup", "minhash": "MinHash near-dup", "semantic_dedup": "Semantic dedup",
    "judge": "LLM judge", "adherence": "Condition adherence", "review": "Human review",
    "prompt_echo": "Prompt echo", "label_disagreement": "Label disagreement",
}
PREFIX = "compare_filters"
NONE = "(none)"
JudgeNote = Callable[[str, str, float], None]  # (rubric, judge label, threshold): draws under the threshold


def _k(i: int, kind: str, param: str) -> str:
    return f"{PREFIX}_p{i}_{kind}_{param}"


def load_into_state(i: int, name: str, steps: list[dict[str, Any]]) -> None:
    """Put a saved pipeline's name, step kinds and parameters into the editor's widget keys; the
    whole steps are kept too, for the parameters that have no widget."""
    st.session_state[f"{PREFIX}_p{i}_name"] = name
    st.session_state[f"{PREFIX}_p{i}_steps"] = [s["kind"] for s in steps if s.get("kind") in STEP_LABELS]
    st.session_state[f"{PREFIX}_p{i}_loaded"] = {s["kind"]: dict(s) for s in steps if s.get("kind") in STEP_LABELS}
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
                value = NONE
            st.session_state[_k(i, kind, param)] = value


def saved_version_picker(i: int, labels: dict[str, str], load: Callable[[str], Any]) -> None:
    """'Start from a saved version' (hash -> label): picking one writes it into pipeline i's widgets.
    ``load(hash)`` returns the pipeline (services.curation.pipeline_store.load_pipeline)."""
    if not labels:
        return
    key = f"{PREFIX}_p{i}_load"

    def _load() -> None:
        if h := st.session_state.get(key):
            p = load(h)
            load_into_state(i, p.name, p.canonical_steps())

    st.selectbox("Start from a saved version", [None, *labels], format_func=lambda h: "—" if h is None else labels[h],
                 key=key, on_change=_load)


# -- what survives a visit to another page ------------------------------------------------------

MEMORY = f"{PREFIX}_memory"
# Page widgets whose values are kept (buttons, downloads and the data editor cannot be set: not kept).
KEPT = {f"{PREFIX}_{k}" for k in ("run", "n", "map", "bleu", "map_pipeline", "out_pipeline", "review_mode",
                                  "review_source", "review_cluster", "judge_preset", "judge_model", "judge_url")}
_EDITOR_KEY = re.compile(rf"{PREFIX}_p\d+_")


def _kept(key: object) -> bool:
    return isinstance(key, str) and (key in KEPT or bool(_EDITOR_KEY.match(key)))


def keep_page_state() -> None:
    """Streamlit forgets the values of widgets a run does not draw, so a visit to another page
    would reset this one: copy what the user set to a plain key on every run and put back what
    was forgotten. Call at the top of the page, before any widget."""
    memory: dict[str, Any] = st.session_state.setdefault(MEMORY, {})
    for key in [k for k in st.session_state if _kept(k)]:
        memory[key] = st.session_state[key]
    for key, value in memory.items():
        if key not in st.session_state:
            st.session_state[key] = value


# -- the editor ----------------------------------------------------------------------------------


def _params(i: int, kind: str, dimensions: list[str], start: dict[str, Any], judge_note: JudgeNote | None = None) -> dict[str, Any]:
    """The widgets of one step; ``start`` holds this pipeline's starting parameters for the kind."""
    k = lambda p: _k(i, kind, p)  # noqa: E731 - a short local helper reads better here
    d = lambda p, v: start.get(p, v)  # noqa: E731
    if kind == "length":
        c1, c2, c3 = st.columns(3)
        unit = c1.selectbox("Unit", ["words", "characters", "tokens"], key=k("unit"))
        lo = c2.number_input("Min", min_value=0, value=d("min", 3), step=1, key=k("min"), help="0: no minimum")
        hi = c3.number_input("Max", min_value=0, value=d("max", None) or 0, step=10, key=k("max"), help="0: no maximum")
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
        t = st.slider("Jaccard threshold", *_span(k("threshold"), 0.3, 1.0), d("threshold", 0.7), 0.01, key=k("threshold"))
        size = st.number_input("Shingle size (words)", 1, 20, d("shingle_size", 3), key=k("shingle_size"))
        return {"threshold": t, "shingle_size": int(size)}
    if kind == "semantic_dedup":
        t = st.slider("Cosine threshold", 0.5, 1.0, d("threshold", 0.92), 0.01, key=k("threshold"))
        keep = st.radio("Keep", ["first", "centre"], horizontal=True, key=k("keep"), help="centre: the sample closest to its group's mean")
        return {"threshold": t, "keep": keep}
    if kind == "judge":
        rubric = st.text_area("Rubric", value="The sample is fluent, on task, and would be useful as training data.", key=k("rubric"), height=80)
        model = st.text_input("Judge (preset/model: the cache label)", value="local/SmolLM2-135M-Instruct", key=k("judge_model"))
        t = st.slider("Minimum score", 1.0, 5.0, 3.0, 0.5, key=k("threshold"))
        if judge_note is not None:  # how this threshold agrees with human review, right under it
            judge_note(rubric, model, t)
        unscored = st.radio("Not scored yet", ["keep", "drop"], horizontal=True, key=k("unscored"))
        return {"rubric": rubric, "judge_model": model, "threshold": t, "unscored": unscored}
    if kind == "adherence":
        return _adherence(i, dimensions, start)
    if kind == "review":
        return {"unreviewed": st.radio("Not reviewed yet", ["drop", "keep"], horizontal=True, key=k("unreviewed"))}
    if kind == "prompt_echo":
        t = st.slider("Share of 4-word phrases from its own prompt", 0.05, 1.0, d("threshold", 0.5), 0.05, key=k("threshold"))
        return {"threshold": t}
    if kind == "label_disagreement":
        opts = dimensions or ["label"]
        dim = st.selectbox("Requested label (dimension)", opts, index=_guess(opts, ("label", "sentiment", "class", "topic")),
                           key=k("dimension"), help="A cross-validated classifier on the embeddings; cleanlab flags the doubtful ones.")
        return {"dimension": dim}
    return {}


def _span(key: str, lo: float, hi: float) -> tuple[float, float]:
    """A slider's range, widened to a loaded value the step accepts but the usual range leaves out
    (Streamlit refuses a value outside the range)."""
    v = st.session_state.get(key)
    return (min(lo, v), max(hi, v)) if isinstance(v, int | float) else (lo, hi)


def _dimension_options(key: str, dimensions: list[str]) -> list[str]:
    # A dimension picked on another run stays an option here (the step then notes it judges
    # nothing), so switching runs and back does not lose the choice.
    current = st.session_state.get(key)
    return [NONE, *dimensions, *([current] if current and current != NONE and current not in dimensions else [])]


def _adherence(i: int, dimensions: list[str], start: dict[str, Any]) -> dict[str, Any]:
    k = lambda p: _k(i, "adherence", p)  # noqa: E731
    opts = _dimension_options(k("length_dimension"), dimensions)
    guess = opts.index(start["length_dimension"]) if start.get("length_dimension") in opts else _guess(opts, ("length", "size", "words"))
    fmt = lambda o: o if o == NONE or o in dimensions else f"{o} (not in this run)"  # noqa: E731
    ld = st.selectbox("Length asked by dimension", opts, index=guess, format_func=fmt, key=k("length_dimension"),
                      help="Values such as '50 words', '30', 'between 50 and 100 words', '50-100', 'at most 20 words', "
                           "'two sentences' or 'short'. A range is judged as a range.")
    c1, c2 = st.columns(2)
    tol = c1.slider("Tolerance (share of the asked length)", *_span(k("tolerance"), 0.0, 2.0), 0.5, 0.05, key=k("tolerance"))
    bare = c2.selectbox("Bare numbers ('30', '50-100') count", LENGTH_UNITS, key=k("bare_unit"))
    kd_opts = _dimension_options(k("keyword_dimension"), dimensions)
    kd = st.selectbox("Keyword named by dimension", kd_opts, format_func=fmt, key=k("keyword_dimension"))
    if ld == NONE and kd == NONE:
        st.caption("Judges nothing until a dimension is chosen.")
    return {"length_dimension": None if ld == NONE else ld, "tolerance": tol, "bare_unit": bare,
            "keyword_dimension": None if kd == NONE else kd}


def _guess(options: list[str], words: tuple[str, ...]) -> int:
    for i, o in enumerate(options):
        if any(w in o.lower() for w in words):
            return i
    return 0


def pipeline_editor(i: int, dimensions: list[str], start: dict[str, Any], *, judge_note: JudgeNote | None = None) -> dict[str, Any]:
    """Name and steps of pipeline ``i``; returns the raw pipeline dict (validated by the caller).
    ``start`` is the pipeline a fresh editor shows (services.curation.pipeline.default_pipeline);
    ``judge_note(rubric, judge, threshold)`` draws the judge step's calibration under its threshold."""
    defaults = {s["kind"]: s for s in start["steps"]}
    loaded: dict[str, dict[str, Any]] = st.session_state.get(f"{PREFIX}_p{i}_loaded", {})
    name = st.text_input("Name", value=start["name"], key=f"{PREFIX}_p{i}_name")
    kinds = st.multiselect("Steps, in order", list(STEP_LABELS), default=list(defaults),
                           format_func=STEP_LABELS.get, key=f"{PREFIX}_p{i}_steps")
    steps = []
    for n, kind in enumerate(kinds):
        with st.expander(f"{n + 1}. {STEP_LABELS[kind]}", expanded=kind in ("length", "minhash", "semantic_dedup", "judge")):
            # A loaded version's parameters without a widget first; the widgets' values over them.
            steps.append({**loaded.get(kind, {}), "kind": kind, **_params(i, kind, dimensions, defaults.get(kind, {}), judge_note)})
    return {"name": name, "steps": steps}
