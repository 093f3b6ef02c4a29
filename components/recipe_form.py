"""The Prompt Builder's form: widgets whose session-state keys hold the working recipe.

Widget keys (prefixed ``builder_``) are the source of truth; ``load_recipe`` writes a recipe
into them and ``read_recipe`` assembles a Recipe from them, collecting problems per section
so each message can be shown next to its widget.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from components import column_editor
from services.recipes.recipe import (
    Demo,
    DemoSettings,
    Dimension,
    ModelSettings,
    Recipe,
    RecipeError,
    Sampling,
    Step,
    dependency_cycle,
    dimension_problems,
)
from services.recipes.sampling import rule_problems
from services.recipes.value_import import (
    UploadError,
    format_value_lines,
    parse_demos,
    parse_parent_values,
    parse_value_lines,
    parse_values_file,
    split_at_colon,
    values_have_colons,
)

P = "builder_"
STRATEGY_HELP = {
    "grid": "Full grid: every cell of the Cartesian product (respecting dependencies), `per cell` times.",
    "random": "Random: each dimension drawn independently by weight (children from their parent's values), seeded.",
    "balanced": "Balanced: every cell equally often (counts differ by at most one).",
    "pairwise": "Pairwise coverage: every pair of values of any two dimensions appears at least once, with far fewer items than the grid.",
}


@dataclass
class FormResult:
    recipe: Recipe | None
    problems: dict[str, list[str]] = field(default_factory=dict)  # section -> messages


def _k(*parts: str) -> str:
    return P + "_".join(parts)


def _state() -> Any:
    return st.session_state


# -- loading ---------------------------------------------------------------------------
def load_recipe(recipe: Recipe, source: str = "") -> None:
    """Write a recipe into the form's widget state (call from a callback or before widgets)."""
    s = _state()
    for key in [k for k in s if str(k).startswith(P) and not str(k).startswith(P + "pin")]:
        del s[key]
    s[_k("name")] = recipe.name
    s[_k("description")] = recipe.description
    s[_k("task")] = recipe.task
    s[_k("system")] = recipe.system_template
    s[_k("user")] = recipe.user_template
    uids = []
    for d in recipe.dimensions:
        uid = uuid.uuid4().hex[:8]
        uids.append(uid)
        s[_k("dim", uid, "name")] = d.name
        s[_k("dim", uid, "prev")] = d.name
        s[_k("dim", uid, "kind")] = d.kind
        s[_k("dim", uid, "parent")] = d.depends_on or "(none)"
        s[_k("dim", uid, "desc")] = d.description
        s[_k("dim", uid, "values")] = format_value_lines(d.values)
        for pv, vals in d.values_by_parent.items():
            s[_k("dim", uid, "for", pv)] = format_value_lines(vals)
        s[_k("dim", uid, "words")] = "\n".join(d.words)
        s[_k("dim", uid, "k")] = d.k
    s[_k("dims")] = uids
    s[_k("demos")] = "\n".join(json.dumps({"id": e.id, "text": e.text, **e.attributes}, ensure_ascii=False) for e in recipe.demos.examples)
    s[_k("demo_k")] = recipe.demos.k
    s[_k("demo_strategy")] = recipe.demos.strategy
    s[_k("demo_by")] = recipe.demos.stratify_by or "(none)"
    s[_k("strategy")] = recipe.sampling.strategy
    s[_k("n_items")] = recipe.sampling.n_items
    s[_k("per_cell")] = recipe.sampling.per_cell
    s[_k("seed")] = recipe.sampling.seed
    s[_k("rules")] = "\n".join(recipe.sampling.exclusions)
    s[_k("model")] = json.dumps(recipe.model.model_dump(mode="json"))
    s[_k("steps")] = json.dumps([st_.model_dump(mode="json") for st_ in recipe.steps])
    s[_k("source_json")] = json.dumps(recipe.source.model_dump(mode="json")) if recipe.source else ""
    column_editor.load_columns(recipe.columns, recipe.output_column)
    s[_k("loaded_hash")] = recipe.content_hash()
    s[_k("source")] = source or recipe.name


def ensure_loaded(default: Recipe, label: str = "new recipe") -> None:
    if _k("dims") not in _state():
        load_recipe(default, label)


def loaded_hash() -> str | None:
    return _state().get(_k("loaded_hash"))


def source_label() -> str:
    return _state().get(_k("source"), "")


# -- sections --------------------------------------------------------------------------
def task_and_templates(variables_report: dict[str, dict] | None) -> None:
    c1, c2 = st.columns([1, 2])
    c1.text_input("Recipe name", key=_k("name"))
    c2.text_input("Description", key=_k("description"))
    st.text_area("Task specification", key=_k("task"), height=80,
                 help="Available in templates as `{{ task }}`; e.g. 'Suppose you are a movie reviewer'.")
    c1, c2 = st.columns(2)
    with c1:
        st.text_area("System message template (Jinja2)", key=_k("system"), height=140)
        _template_info(variables_report, "system")
        s = _state()
        if "task" in s.get(_k("system"), "") and not s.get(_k("task"), "").strip():
            st.warning("The task specification is empty, so the system message built from it will be empty: "
                       "write the task above, or clear the system template.", icon=":material/warning:")
    with c2:
        st.text_area("User message template (Jinja2)", key=_k("user"), height=140,
                     help="Use dimensions as `{{ name }}`, derived values like `{{ length|int + 50 }}`, "
                          "demonstrations as `{% for d in demos %}{{ d.text }}{% endfor %}`.")
        _template_info(variables_report, "user")


def _template_info(report: dict[str, dict] | None, name: str) -> None:
    if not report or name not in report:
        return
    info = report[name]
    if info["error"]:
        st.error(info["error"], icon=":material/error:")
        return
    used = ", ".join(f"`{v}`" for v in info["variables"]) or "none"
    st.caption(f"Variables used: {used}")
    if info["unprovided"]:
        st.warning("Not provided by any dimension: " + ", ".join(f"`{v}`" for v in info["unprovided"]), icon=":material/warning:")


def _move(uid: str, delta: int) -> None:
    uids = _state()[_k("dims")]
    i = uids.index(uid)
    j = i + delta
    if 0 <= j < len(uids):
        uids[i], uids[j] = uids[j], uids[i]


def _delete(uid: str) -> None:
    s = _state()
    s[_k("dims")] = [u for u in s[_k("dims")] if u != uid]
    name = s.get(_k("dim", uid, "name"))
    for other in s[_k("dims")]:
        if s.get(_k("dim", other, "parent")) == name:
            s[_k("dim", other, "parent")] = "(none)"


def _add() -> None:
    s = _state()
    uid = uuid.uuid4().hex[:8]
    existing = {s.get(_k("dim", u, "name")) for u in s[_k("dims")]}
    n = len(existing) + 1
    while f"dimension_{n}" in existing:
        n += 1
    s[_k("dim", uid, "name")] = s[_k("dim", uid, "prev")] = f"dimension_{n}"
    s[_k("dim", uid, "kind")] = "categorical"
    s[_k("dim", uid, "parent")] = "(none)"
    s[_k("dim", uid, "values")] = ""
    s[_k("dims")] = [*s[_k("dims")], uid]


def _renamed(uid: str) -> None:
    # Keep dependents pointing at the renamed dimension.
    s = _state()
    old, new = s.get(_k("dim", uid, "prev")), s.get(_k("dim", uid, "name"))
    for other in s[_k("dims")]:
        if other != uid and s.get(_k("dim", other, "parent")) == old:
            s[_k("dim", other, "parent")] = new
    s[_k("dim", uid, "prev")] = new


def _uploaded_values(uid: str, target: str) -> None:
    s = _state()
    f = s.get(_k("dim", uid, "upload"))
    if f is None:
        return
    try:
        parsed = parse_values_file(f.name, f.getvalue())
    except UploadError as exc:
        s[_k("dim", uid, "upload_msg")] = ("error", str(exc))
        return
    current = s.get(target, "").rstrip("\n")
    values, n_split = split_at_colon(parsed.values) if s.get(_k("dim", uid, "upload_split")) else (parsed.values, 0)
    added = format_value_lines(values)
    replace = s.get(_k("dim", uid, "upload_mode")) == "Replace"
    s[target] = (current + "\n" + added).strip("\n") if current and not replace else added
    msg = f"{'Replaced the values with' if replace else 'Added'} {len(parsed.values)} values from {f.name}."
    if n_split:
        msg += f" {n_split} got a short label (the part before the first colon)."
    if parsed.problems:
        msg += f" Skipped {len(parsed.problems)} lines: " + "; ".join(parsed.problems[:5])
    s[_k("dim", uid, "upload_msg")] = ("warning" if parsed.problems else "success", msg)


def _split_labels(target: str) -> None:
    """Give the ``Name: description`` values in a values box the short label ``Name``."""
    s = _state()
    parsed = parse_value_lines(s.get(target, ""))
    if parsed.problems:
        return
    new = split_at_colon(parsed.values)[0]
    s[target] = format_value_lines(new)
    # Dependents list their values per parent label: carry them over to the new labels.
    uid = next((u for u in s[_k("dims")] if _k("dim", u, "values") == target), None)
    if uid is None:
        return
    renamed = {a.key: b.key for a, b in zip(parsed.values, new, strict=True) if a.key != b.key}
    for child in s[_k("dims")]:
        if s.get(_k("dim", child, "parent")) == s.get(_k("dim", uid, "name")):
            for old, label in renamed.items():
                if _k("dim", child, "for", old) in s:
                    s[_k("dim", child, "for", label)] = s.pop(_k("dim", child, "for", old))


def _label_help(target: str, where: Any) -> None:
    """Offer short labels when the values look like ``Name: description``."""
    if values_have_colons(parse_value_lines(_state().get(target, "")).values):
        where.button("Short labels from 'Name: description'", key=target + "_split", on_click=_split_labels, args=(target,),
                     icon=":material/short_text:",
                     help="Show each value as the part before its first colon (in the plan, Explore, charts and SQL); "
                          "the prompt still gets the whole text.")


def _uploaded_parent_values(uid: str, parent: str) -> None:
    """A ``parent,value`` file fills the per-parent value lists (replacing those it names)."""
    s = _state()
    f = s.get(_k("dim", uid, "pupload"))
    if f is None:
        return
    try:
        groups, bad = parse_parent_values(f.name, f.getvalue())
    except UploadError as exc:
        s[_k("dim", uid, "upload_msg")] = ("error", str(exc))
        return
    for pv, vals in groups.items():
        s[_k("dim", uid, "for", pv)] = format_value_lines(vals)
    msg = f"Set the values for {len(groups)} value(s) of {parent} from {f.name}."
    if bad:
        msg += f" Skipped {len(bad)} lines: " + "; ".join(bad[:5])
    s[_k("dim", uid, "upload_msg")] = ("warning" if bad else "success", msg)


def dimensions_editor(problems: dict[str, list[str]]) -> None:
    s = _state()
    uids: list[str] = s[_k("dims")]
    names = [s.get(_k("dim", u, "name"), "") for u in uids]
    if not uids:
        st.info("No dimensions yet. Add one: a named condition (e.g. `cuisine`) with values.")
    for pos, uid in enumerate(uids):
        name = names[pos]
        with st.container(border=True):
            c = st.columns([3, 2, 2, 0.5, 0.5, 0.5])
            c[0].text_input("Name", key=_k("dim", uid, "name"), on_change=_renamed, args=(uid,))
            c[1].selectbox("Kind", ["categorical", "random_words"], key=_k("dim", uid, "kind"),
                           format_func=lambda k: "values" if k == "categorical" else "creative randomness (k random words)")
            parents = ["(none)"] + [n for n in names if n != name]
            if s.get(_k("dim", uid, "parent")) not in parents:
                s[_k("dim", uid, "parent")] = "(none)"
            c[2].selectbox("Depends on", parents, key=_k("dim", uid, "parent"),
                           help="Give values per value of another dimension (e.g. subtopic per label).")
            c[3].button("", icon=":material/arrow_upward:", key=_k("dim", uid, "up"), on_click=_move, args=(uid, -1), disabled=pos == 0, help="Move up")
            c[4].button("", icon=":material/arrow_downward:", key=_k("dim", uid, "down"), on_click=_move, args=(uid, 1), disabled=pos == len(uids) - 1, help="Move down")
            c[5].button("", icon=":material/delete:", key=_k("dim", uid, "del"), on_click=_delete, args=(uid,), help="Delete this dimension")
            kind = s.get(_k("dim", uid, "kind"))
            parent = s.get(_k("dim", uid, "parent"))
            if kind == "random_words":
                w1, w2 = st.columns([4, 1])
                w1.text_area("Word list (one per line, or separated by spaces/commas)", key=_k("dim", uid, "words"), height=100)
                w2.number_input("k words per item", min_value=1, max_value=50, key=_k("dim", uid, "k"))
            elif parent and parent != "(none)":
                puid = uids[names.index(parent)] if parent in names else None
                # Per-parent lists are keyed by the parent's labels (what its conditions store).
                pvals = [v.key for v in parse_value_lines(s.get(_k("dim", puid, "values"), "")).values] if puid else []
                if puid and s.get(_k("dim", puid, "parent")) not in (None, "(none)"):
                    pvals = sorted({v for k, t in s.items() if str(k).startswith(_k("dim", puid, "for", ""))
                                    for v in (x.key for x in parse_value_lines(t).values)})
                if not pvals:
                    st.caption(f"`{parent}` has no values yet.")
                cols = st.columns(min(3, max(1, len(pvals))))
                for i, pv in enumerate(pvals):
                    cols[i % len(cols)].text_area(f"Values when {parent} = {pv}", key=_k("dim", uid, "for", pv), height=110)
                    _label_help(_k("dim", uid, "for", pv), cols[i % len(cols)])
                st.file_uploader(f"Set values from a two-column CSV: {parent},value", type=["csv"],
                                 key=_k("dim", uid, "pupload"), on_change=_uploaded_parent_values, args=(uid, parent),
                                 help="A short label per value: write `label :: full text` in the value cell, or add a "
                                      "third column `label` (header `parent,value,label`).")
                msg = s.pop(_k("dim", uid, "upload_msg"), None)
                if msg:
                    getattr(st, msg[0])(msg[1])
            else:
                target = _k("dim", uid, "values")
                st.text_area("Values: one per line; optional weight as `value | 2`; a short label as `label :: full text`",
                             key=target, height=110,
                             help="The label is what the plan, Explore, charts and SQL show; templates render the full text "
                                  "(`{{ name }}`; the label is `{{ name.label }}`).")
                _label_help(target, st)
                u1, u2 = st.columns([4, 1])
                u1.file_uploader("Values from a .txt, .csv or .jsonl file", type=["txt", "csv", "jsonl"],
                                 key=_k("dim", uid, "upload"), on_change=_uploaded_values, args=(uid, target))
                u2.radio("On upload", ["Append", "Replace"], key=_k("dim", uid, "upload_mode"),
                         help="Append adds the file's values to those above; Replace puts the file's values instead.")
                u2.checkbox("Split 'Name: description'", key=_k("dim", uid, "upload_split"),
                            help="Label each uploaded value with the part before its first colon; the prompt gets the whole line.")
                msg = s.pop(_k("dim", uid, "upload_msg"), None)
                if msg:
                    getattr(st, msg[0])(msg[1])
            for m in problems.get(f"dimension:{uid}", []):
                st.error(m, icon=":material/error:")
    st.button("Add dimension", icon=":material/add:", on_click=_add, key=_k("add"))
    for m in problems.get("dimensions", []):
        st.error(m, icon=":material/error:")


def _uploaded_demos() -> None:
    s = _state()
    f = s.get(_k("demo_upload"))
    if f is None:
        return
    try:
        parsed = parse_demos(f.name, f.getvalue())
    except UploadError as exc:
        s[_k("demo_msg")] = ("error", str(exc))
        return
    lines = [json.dumps({"id": d.id, "text": d.text, **d.attributes}, ensure_ascii=False) for d in parsed.values]
    current = s.get(_k("demos"), "").strip()
    s[_k("demos")] = "\n".join(([current] if current else []) + lines)
    msg = f"Added {len(lines)} demonstrations from {f.name}."
    if parsed.problems:
        msg += f" Skipped {len(parsed.problems)}: " + "; ".join(parsed.problems[:5])
    s[_k("demo_msg")] = ("warning" if parsed.problems else "success", msg)


def demos_editor(problems: dict[str, list[str]], dim_names: list[str]) -> None:
    s = _state()
    st.text_area("Seed examples: one per line, or JSON lines with `text` and attribute fields (e.g. `label`)",
                 key=_k("demos"), height=140)
    st.file_uploader("Add demonstrations from a .txt, .csv or .jsonl file", type=["txt", "csv", "jsonl"],
                     key=_k("demo_upload"), on_change=_uploaded_demos)
    msg = s.pop(_k("demo_msg"), None)
    if msg:
        getattr(st, msg[0])(msg[1])
    c = st.columns(3)
    c[0].number_input("k demonstrations per prompt", min_value=0, max_value=50, key=_k("demo_k"))
    c[1].selectbox("Chosen", ["random", "stratified", "matching", "nearest", "diverse"], key=_k("demo_strategy"),
                   format_func={"random": "at random", "stratified": "stratified (spread over a dimension's values)",
                                "matching": "matching the item's value of a dimension",
                                "nearest": "nearest (most similar to the item)",
                                "diverse": "diverse (similar, but unlike each other: MMR)"}.get)
    opts = ["(none)", *dim_names]
    if s.get(_k("demo_by")) not in opts:
        s[_k("demo_by")] = "(none)"
    c[2].selectbox("Stratify by", opts, key=_k("demo_by"))
    for m in problems.get("demos", []):
        st.error(m, icon=":material/error:")


def sampling_editor(problems: dict[str, list[str]]) -> None:
    c = st.columns([2, 1, 1])
    c[0].radio("Strategy", list(STRATEGY_HELP), key=_k("strategy"), horizontal=True)
    strategy = _state().get(_k("strategy"))
    if strategy in ("random", "balanced"):
        c[1].number_input("Items", min_value=1, max_value=2_000_000, step=10, key=_k("n_items"))
    else:
        c[1].number_input("Items per cell", min_value=1, max_value=1000, key=_k("per_cell"))
    c[2].number_input("Seed", min_value=0, max_value=2**31 - 1, key=_k("seed"))
    st.caption(STRATEGY_HELP.get(strategy, ""))
    st.text_area("Exclusion rules: one per line, each a condition that forbids a combination",
                 key=_k("rules"), height=80, placeholder='label == "positive" and style == "angry rant"')
    for m in problems.get("sampling", []):
        st.error(m, icon=":material/error:")


# -- assembling ------------------------------------------------------------------------
def _parse_demo_text(text: str) -> tuple[list[Demo], list[str]]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return [], []
    if all(ln.lstrip().startswith("{") for ln in lines):
        parsed = parse_demos("pasted.jsonl", "\n".join(lines))
    else:
        parsed = parse_demos("pasted.txt", "\n".join(lines))
    return parsed.values, parsed.problems


def read_recipe() -> FormResult:
    """Assemble a Recipe from the widgets; problems are keyed by section for display."""
    s = _state()
    problems: dict[str, list[str]] = {}

    def add(section: str, msg: str) -> None:
        problems.setdefault(section, []).append(msg)

    dims: list[Dimension] = []
    uid_of: dict[str, str] = {}
    for uid in s[_k("dims")]:
        name = (s.get(_k("dim", uid, "name")) or "").strip()
        uid_of[name] = uid
        kind = s.get(_k("dim", uid, "kind"), "categorical")
        parent = s.get(_k("dim", uid, "parent"), "(none)")
        parent = None if parent in (None, "(none)") else parent
        d: dict[str, Any] = {"name": name, "kind": kind, "description": s.get(_k("dim", uid, "desc"), "")}
        if kind == "random_words":
            text = s.get(_k("dim", uid, "words"), "")
            d["words"] = [w for w in text.replace(",", " ").split() if w]
            d["k"] = int(s.get(_k("dim", uid, "k"), 3) or 3)
        elif parent:
            d["depends_on"] = parent
            prefix = _k("dim", uid, "for", "")
            d["values_by_parent"] = {}
            for key in [k for k in s if str(k).startswith(prefix)]:
                parsed = parse_value_lines(s[key])
                for p in parsed.problems:
                    add(f"dimension:{uid}", f"{key[len(prefix):]}: {p}")
                if parsed.values:
                    d["values_by_parent"][key[len(prefix):]] = parsed.values
        else:
            parsed = parse_value_lines(s.get(_k("dim", uid, "values"), ""))
            for p in parsed.problems:
                add(f"dimension:{uid}", p)
            d["values"] = parsed.values
        dims.append(Dimension.model_validate(d))
    # Only keep per-parent values that the parent still has (stale keys linger in state).
    by_name = {d.name: d for d in dims}
    for d in dims:
        if d.depends_on in by_name:
            have = {v.key for v in by_name[d.depends_on].all_values()}
            d.values_by_parent = {k: v for k, v in d.values_by_parent.items() if k in have}
    names = [d.name for d in dims]
    for d in dims:
        uid = uid_of.get(d.name)
        for m in dimension_problems(d, dims):
            add(f"dimension:{uid}", m)
        if names.count(d.name) > 1:
            add(f"dimension:{uid}", f"another dimension is also called '{d.name}'")
    cycle = dependency_cycle(dims)
    if cycle:
        add("dimensions", "dependency cycle: " + " → ".join(cycle))

    demos, demo_problems = _parse_demo_text(s.get(_k("demos"), ""))
    for p in demo_problems:
        add("demos", p)
    by = s.get(_k("demo_by"), "(none)")
    demo_settings = DemoSettings(examples=demos, k=int(s.get(_k("demo_k"), 0) or 0),
                                 strategy=s.get(_k("demo_strategy"), "random"),
                                 stratify_by=None if by == "(none)" else by)
    sampling = Sampling(strategy=s.get(_k("strategy"), "grid"), n_items=int(s.get(_k("n_items"), 100) or 1),
                        per_cell=int(s.get(_k("per_cell"), 1) or 1), seed=int(s.get(_k("seed"), 0) or 0),
                        exclusions=[r.strip() for r in s.get(_k("rules"), "").splitlines() if r.strip()])
    model = ModelSettings.model_validate(json.loads(s.get(_k("model"), "{}") or "{}"))
    steps = [Step.model_validate(x) for x in json.loads(s.get(_k("steps"), "[]") or "[]")]
    columns, output_column, column_problems = column_editor.read_columns()
    for p in column_problems:
        add("columns", p)
    data = {"name": s.get(_k("name"), "") or "", "description": s.get(_k("description"), ""), "task": s.get(_k("task"), ""),
            "system_template": s.get(_k("system"), ""), "user_template": s.get(_k("user"), ""),
            "dimensions": dims, "demos": demo_settings, "sampling": sampling, "model": model, "steps": steps,
            "columns": columns, "output_column": output_column}
    if s.get(_k("source_json")):
        data["source"] = json.loads(s[_k("source_json")])
    if not problems:
        for where, m in rule_problems(Recipe.model_construct(**data)):
            add("sampling", f"{where}: {m}")
    if problems:
        return FormResult(None, problems)
    try:
        return FormResult(Recipe.model_validate(data), {})
    except (RecipeError, ValueError) as exc:
        err = _recipe_error(exc)
        for where, m in err.problems:
            if where.startswith(("column", "output_column")):
                add("columns", f"{where}: {m}")
                continue
            section = "demos" if where.startswith("demos") else "sampling" if where.startswith("sampling") else (
                f"dimension:{uid_of.get(where.split(chr(39))[1], '')}" if where.startswith("dimension '") else "general")
            add(section, m if section != "general" else f"{where}: {m}")
        return FormResult(None, problems)


def _recipe_error(exc: Exception) -> RecipeError:
    from pydantic import ValidationError

    if isinstance(exc, RecipeError):
        return exc
    if isinstance(exc, ValidationError):
        out = []
        for e in exc.errors():
            inner = (e.get("ctx") or {}).get("error")
            if isinstance(inner, RecipeError):
                out.extend(inner.problems)
            else:
                out.append((".".join(map(str, e["loc"])) or "recipe", e["msg"].removeprefix("Value error, ")))
        return RecipeError(out)
    return RecipeError([("recipe", str(exc))])
