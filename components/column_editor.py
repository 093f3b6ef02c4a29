"""The Prompt Builder's columns: add, edit, reorder and delete typed columns without YAML, draw
the column graph, and show a test row's prompts and answers.

Like ``recipe_form``, widget keys (``builder_col_<uid>_<field>``) hold the working columns;
``load_columns`` writes a recipe's columns into them and ``read_columns`` reads them back.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import streamlit as st

from services.recipes.columns import KINDS, Column

P = "builder_"
KIND_HELP = {
    "text": "An LLM call returning text.",
    "structured": "An LLM call returning JSON, validated against your JSON schema (retried when invalid).",
    "judge": "Scores earlier columns against a rubric on a scale; returns score and rationale.",
    "candidates": "n answers to the same prompt (one temperature each, if given): the inputs of a pairwise judge.",
    "pairwise": "Picks the better of two candidates with a reason: a preference pair.",
    "expression": "A Jinja template over earlier columns; no model call.",
}
EXAMPLE_SCHEMA = json.dumps({"type": "object", "properties": {"label": {"type": "string", "enum": ["positive", "negative"]},
                                                              "rationale": {"type": "string"}},
                             "required": ["label", "rationale"]}, indent=2)


def _k(uid: str, fld: str) -> str:
    return f"{P}col_{uid}_{fld}"


def _uids() -> list[str]:
    return st.session_state.setdefault(P + "cols", [])


def load_columns(columns: list[Column], output_column: str | None) -> None:
    """Write columns into widget state (from a callback or before the widgets)."""
    s = st.session_state
    uids = []
    for c in columns:
        uid = uuid.uuid4().hex[:8]
        uids.append(uid)
        schema = c.output_schema
        s[_k(uid, "name")] = c.name
        s[_k(uid, "kind")] = c.kind
        s[_k(uid, "system")] = c.system_template
        s[_k(uid, "user")] = c.user_template
        s[_k(uid, "schema")] = schema if isinstance(schema, str) else (json.dumps(schema, indent=2) if schema else "")
        s[_k(uid, "rubric")] = c.rubric
        s[_k(uid, "lo")], s[_k(uid, "hi")] = c.scale or (1, 5)
        s[_k(uid, "n")] = c.n
        s[_k(uid, "temps")] = ", ".join(f"{t:g}" for t in c.temperatures)
        s[_k(uid, "of")] = c.of or ""
        s[_k(uid, "both")] = c.both_orders
        s[_k(uid, "expr")] = c.expression
        s[_k(uid, "retries")] = c.retries
        s[_k(uid, "extra")] = json.dumps({k: v for k, v in c.model_dump(mode="json", exclude_defaults=True).items()
                                          if k in ("temperature", "max_tokens", "vote")})
    s[P + "cols"] = uids
    s[P + "output_column"] = output_column or ""


def read_columns() -> tuple[list[dict[str, Any]], str | None, list[str]]:
    """(columns as dicts for the recipe, its output column, problems found reading the widgets)."""
    s = st.session_state
    out, problems = [], []
    for uid in _uids():
        name = (s.get(_k(uid, "name")) or "").strip()
        kind = s.get(_k(uid, "kind"), "text")
        col: dict[str, Any] = {"name": name, "kind": kind, **json.loads(s.get(_k(uid, "extra")) or "{}")}
        if kind != "expression":
            col["system_template"] = s.get(_k(uid, "system"), "")
            col["user_template"] = s.get(_k(uid, "user"), "")
        if kind == "structured":
            col["output_schema"] = s.get(_k(uid, "schema"), "")  # JSON text: the recipe's checks parse it
            col["retries"] = int(s.get(_k(uid, "retries"), 2))
        if kind in ("judge", "pairwise"):
            col["rubric"] = s.get(_k(uid, "rubric"), "")
        if kind == "judge":
            col["scale"] = [int(s.get(_k(uid, "lo"), 1)), int(s.get(_k(uid, "hi"), 5))]
        if kind in ("structured", "judge", "candidates"):
            col["n"] = int(s.get(_k(uid, "n"), 2 if kind == "candidates" else 1))
        if kind == "candidates":
            text = s.get(_k(uid, "temps"), "").strip()
            try:
                col["temperatures"] = [float(t) for t in text.replace(",", " ").split()] if text else []
            except ValueError:
                problems.append(f"column '{name}', field temperatures: give numbers separated by commas, got {text!r}")
        if kind == "pairwise":
            col["of"] = s.get(_k(uid, "of")) or None
            col["both_orders"] = bool(s.get(_k(uid, "both"), True))
        if kind == "expression":
            col["expression"] = s.get(_k(uid, "expr"), "")
        out.append(col)
    return out, (s.get(P + "output_column") or None), problems


def _move(uid: str, delta: int) -> None:
    uids = _uids()
    i = uids.index(uid)
    if 0 <= i + delta < len(uids):
        uids[i], uids[i + delta] = uids[i + delta], uids[i]


def _delete(uid: str) -> None:
    st.session_state[P + "cols"] = [u for u in _uids() if u != uid]


def _add() -> None:
    s = st.session_state
    kind = s.get(P + "pin_new_col_kind", "text")
    taken = {s.get(_k(u, "name")) for u in _uids()}
    n = 1
    while f"{kind}_{n}" in taken:
        n += 1
    uid = uuid.uuid4().hex[:8]
    s[_k(uid, "name")] = f"{kind}_{n}"
    s[_k(uid, "kind")] = kind
    s[_k(uid, "user")] = "" if kind != "judge" else "{{ output }}"
    s[_k(uid, "schema")] = EXAMPLE_SCHEMA if kind == "structured" else ""
    s[_k(uid, "n")] = 2 if kind == "candidates" else 1
    s[_k(uid, "lo")], s[_k(uid, "hi")] = 1, 5
    s[P + "cols"] = [*_uids(), uid]


def columns_editor(problems: list[str], names_before: list[str]) -> None:
    """One box per column in order, with the fields of its kind; problems of a column under it."""
    st.caption("Columns run in order after the recipe's own template (its answer is the column `output`, when the user "
               "template is not empty). A column's templates may use the dimensions, `demos`, and every column above it "
               "by name, e.g. `{{ instruction }}` or `{{ label.label }}` for a field of a structured column.")
    uids = _uids()
    names = [st.session_state.get(_k(u, "name"), "") for u in uids]
    for i, uid in enumerate(uids):
        name = names[i]
        kind = st.session_state.get(_k(uid, "kind"), "text")
        with st.container(border=True):
            c1, c2, c3, c4, c5 = st.columns([3, 2, 0.5, 0.5, 0.5])
            c1.text_input("Column name", key=_k(uid, "name"))
            c2.selectbox("Kind", KINDS, key=_k(uid, "kind"), help=KIND_HELP.get(kind))
            c3.button("↑", key=_k(uid, "up"), on_click=_move, args=(uid, -1), disabled=i == 0, help="Move up")
            c4.button("↓", key=_k(uid, "down"), on_click=_move, args=(uid, 1), disabled=i == len(uids) - 1, help="Move down")
            c5.button("✕", key=_k(uid, "del"), on_click=_delete, args=(uid,), help="Delete this column")
            st.caption(KIND_HELP.get(kind, ""))
            if kind == "expression":
                st.text_input("Expression (Jinja)", key=_k(uid, "expr"), placeholder="{{ label.label | upper }}")
            else:
                st.text_area("User message template", key=_k(uid, "user"), height=90,
                             help="Empty for a pairwise judge: it is shown the candidates' prompt and both answers.")
                st.text_input("System message template (empty: the recipe's)", key=_k(uid, "system"))
            if kind == "structured":
                a, b, c = st.columns([4, 1, 1])
                a.text_area("JSON schema of the answer", key=_k(uid, "schema"), height=140)
                b.number_input("Votes (n)", min_value=1, max_value=20, key=_k(uid, "n"),
                               help="Self-consistency: ask n times, keep the majority of the first enum field, with the agreement.")
                c.number_input("Retries", min_value=0, max_value=5, key=_k(uid, "retries"), help="Asked again when the answer is not valid.")
            if kind in ("judge", "pairwise"):
                st.text_input("Rubric", key=_k(uid, "rubric"), placeholder="What a good answer is")
            if kind == "judge":
                a, b, c = st.columns(3)
                a.number_input("Lowest score", step=1, key=_k(uid, "lo"))
                b.number_input("Highest score", step=1, key=_k(uid, "hi"))
                c.number_input("Votes (n)", min_value=1, max_value=20, key=_k(uid, "n"))
            if kind == "candidates":
                a, b = st.columns(2)
                a.number_input("Answers (n)", min_value=2, max_value=20, key=_k(uid, "n"))
                b.text_input("Temperatures, one per answer (optional)", key=_k(uid, "temps"), placeholder="0.3, 1.2")
            if kind == "pairwise":
                options = [""] + [n for n in names[:i] if n] + [n for n in names_before if n]
                if st.session_state.get(_k(uid, "of")) not in options:
                    st.session_state[_k(uid, "of")] = ""
                st.selectbox("Compare the candidates of", options, key=_k(uid, "of"))
                st.session_state.setdefault(_k(uid, "both"), True)
                st.checkbox("Judge both orders (A/B and B/A)", key=_k(uid, "both"),
                            help="Two calls per pair: a pair is kept as chosen/rejected only where both orders pick the "
                                 "same answer, otherwise it is a tie (judges favour a position).")
            for m in problems:
                if m.startswith(f"column '{name}'"):
                    st.error(m, icon=":material/error:")
    a, b = st.columns([2, 1])
    a.selectbox("New column kind", KINDS, key=P + "pin_new_col_kind", label_visibility="collapsed")
    b.button("Add column", icon=":material/add:", on_click=_add)
    for m in problems:
        if not m.startswith("column '"):
            st.error(m, icon=":material/error:")
    options = [""] + [n for n in names if n]
    if st.session_state.get(P + "output_column") not in options:
        st.session_state[P + "output_column"] = ""
    st.selectbox("Column shown as the sample's text (empty: the last text column)", options, key=P + "output_column")


def column_graph(dot: str) -> None:
    st.graphviz_chart(dot, width="stretch")


def trace_view(trace: list[dict[str, Any]]) -> None:
    """Each column's prompt and answer of a test row, in the order they were made (as plain text:
    model output is never rendered as HTML or Markdown)."""
    for r in trace:
        if r["step"] == "output":
            continue
        head = f"{r['step']} ({r['column_kind'] or 'text'})"
        if r["error"]:
            head += " — failed"
        with st.expander(head, expanded=True):
            for m in r["messages"]:
                st.text(f"[{m.get('role')}] {m.get('content', '')}")
            if r["error"]:
                st.error(r["error"])
            st.text(f"→ {r['text'] if r['text'] is not None else ''}")
            bits = [f"{r['completion_tokens']} tokens" if r["completion_tokens"] is not None else None,
                    f"{r['latency_ms']:.0f} ms" if r["latency_ms"] else None,
                    f"{r['attempts']} attempt(s)" if r["attempts"] else None]
            if any(bits):
                st.caption(" · ".join(b for b in bits if b))


def test_row_panel(store: Any, recipe: Any, local: Any, secrets: dict | None = None) -> None:
    """Pick a backend and run the first item through every column now; show each prompt and answer."""
    from services.core.errors import StudioError
    from services.generation.connect import preset_config
    from services.generation.presets import LOCAL, PRESETS
    from services.generation.run_store import item_trace

    c1, c2, c3 = st.columns([2, 3, 2])
    preset = c1.selectbox("Backend", list(PRESETS), key=P + "pin_test_backend", format_func=lambda p: PRESETS[p].label)
    base_url = c2.text_input("Base URL", key=P + f"pin_test_url_{preset}", value=PRESETS[preset].base_url, disabled=preset == LOCAL)
    model = c3.text_input("Model", key=P + f"pin_test_model_{preset}", value=PRESETS[preset].model, disabled=preset == LOCAL)
    if st.button("Test one row", icon=":material/play_arrow:", key=P + "pin_test_go",
                 help="Sends the first plan item (or dataset row) through every column, in order, and records it as a run."):
        from services.data.rows import source_rows
        from services.generation.run_setup import test_one_item

        try:
            rows = None
            if (src := recipe.source) is not None:
                rows = source_rows(store, src.dataset, file=src.file, text_column=src.text_column,
                                   attribute_columns=src.attribute_columns, limit=1)
            cfg = preset_config(preset, model=model or None, base_url=None if preset == LOCAL else base_url, secrets=secrets)
            with st.spinner("Running one row through every column…"):
                run_id, outcome = test_one_item(store, recipe, cfg, local if preset == LOCAL else None, rows=rows)
            st.session_state[P + "pin_test_run"] = run_id
            if outcome.status != "finished":
                st.error(f"The test row {outcome.status}: {outcome.message}")
        except StudioError as exc:
            st.error(str(exc))
    run_id = st.session_state.get(P + "pin_test_run")
    if run_id:
        trace = item_trace(store, run_id)
        st.caption(f"Test row of run `{run_id}`: {len([r for r in trace if r['step'] != 'output'])} row(s), in the order they were made.")
        trace_view(trace)
