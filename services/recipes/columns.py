"""Columns: a recipe's outputs as an ordered list of named, typed fields.

Kinds: ``text`` (an LLM call returning text), ``structured`` (JSON validated against a schema the
user writes), ``judge`` (a rubric and a scale: score and rationale), ``candidates`` (n answers to the
same prompt), ``pairwise`` (a judge that picks the better of two candidates: a preference pair; by default
asked in both orders, A/B and B/A, and kept as a pair only where both agree) and
``expression`` (a sandboxed Jinja template over earlier columns, no model call).

A column's templates see the condition, ``demos``, ``task`` and every earlier column by its name
(also as ``columns.<name>``; ``steps.<name>`` for recipes written before columns). Legacy
recipes are read as columns by ``effective_columns``: their ``steps`` are text columns and the
recipe's own templates the ``output`` column, so their hashes and sample keys do not change.

Everything here is pure (no store, no model): the runner makes the calls.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, Field

from services.recipes.templating import TemplateProblem, compile_template

# The recipe model imports this module, so functions here take it untyped (``Recipe`` in words).
Recipe = Any

ColumnKind = Literal["text", "structured", "judge", "candidates", "pairwise", "expression"]
KINDS: tuple[str, ...] = ("text", "structured", "judge", "candidates", "pairwise", "expression")
CALLING = frozenset({"text", "structured", "judge", "candidates", "pairwise"})
SCHEMA_KINDS = frozenset({"structured", "judge", "pairwise"})  # answers that are validated JSON
OUTPUT = "output"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_VOTES = 20
MAX_RETRIES = 5


class Column(BaseModel):
    """One named field of every sample."""

    name: str
    kind: ColumnKind = "text"
    system_template: str = ""  # empty: the recipe's system template (the task specification)
    user_template: str = ""
    # structured: a JSON schema (a mapping, or its JSON text as typed in the Builder)
    output_schema: dict[str, Any] | str | None = None
    rubric: str = ""  # judge, pairwise
    scale: tuple[int, int] | None = None  # judge: lowest and highest score
    # candidates: how many answers; structured/judge: how many votes (self-consistency)
    n: int = 1
    temperatures: list[float] = Field(default_factory=list)  # candidates: one per answer
    temperature: float | None = None
    max_tokens: int | None = None
    of: str | None = None  # pairwise: the candidates column it compares
    expression: str = ""  # expression: a Jinja template over earlier columns
    retries: int = 2  # structured answers that do not validate are asked again this many times
    vote: str | None = None  # the field self-consistency votes on (default: the first enum, or score)
    # pairwise: ask again with the candidates swapped; a pair is chosen/rejected only where both
    # orders pick the same answer (judges favour a position), otherwise it is a tie
    both_orders: bool = True

    def answer_schema(self) -> dict[str, Any] | None:
        """The JSON schema its answers are validated against (None for kinds without one)."""
        if self.kind == "structured":
            return parse_schema(self.output_schema)
        if self.kind == "judge":
            lo, hi = self.scale or (1, 5)
            return {"type": "object", "properties": {"score": {"type": "integer", "minimum": lo, "maximum": hi},
                                                     "rationale": {"type": "string"}}, "required": ["score", "rationale"]}
        if self.kind == "pairwise":
            return {"type": "object", "properties": {"winner": {"type": "string", "enum": ["A", "B"]},
                                                     "reason": {"type": "string"}}, "required": ["winner", "reason"]}
        return None

    def vote_field(self) -> str | None:
        if self.vote:
            return self.vote
        if self.kind == "judge":
            return "score"
        props = (self.answer_schema() or {}).get("properties") or {}
        return next((k for k, p in props.items() if isinstance(p, dict) and "enum" in p), None)

    def calls(self) -> int:
        """Model calls per sample."""
        if self.kind not in CALLING:
            return 0
        if self.kind == "pairwise":
            return 2 if self.both_orders else 1
        return max(1, self.n) if self.kind in ("candidates", "structured", "judge") else 1

    def sub_names(self) -> list[str]:
        """The row names of its calls: itself, or ``name#1..n`` when it makes several."""
        k = self.calls()
        return [self.name] if k <= 1 else [f"{self.name}#{j}" for j in range(1, k + 1)]


def parse_schema(raw: dict[str, Any] | str | None) -> dict[str, Any]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValueError("no schema is given")
    schema = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(schema, dict):
        raise ValueError("the schema must be a JSON object")
    return schema


def effective_columns(recipe: Recipe) -> list[Column]:
    """The recipe's columns in order: legacy steps, the recipe's own templates (``output``), then ``columns``."""
    cols = [Column(name=s.name, system_template=s.system_template, user_template=s.user_template) for s in recipe.steps]
    if recipe.user_template.strip():
        cols.append(Column(name=OUTPUT, system_template=recipe.system_template, user_template=recipe.user_template))
    return cols + list(recipe.columns)


def output_column(recipe: Recipe) -> str | None:
    """Which column a sample's ``output`` row (its text in Explore, curation and exports) copies;
    None when a real column is called ``output``."""
    cols = effective_columns(recipe)
    if any(c.name == OUTPUT for c in cols):
        return None
    if recipe.output_column:
        return recipe.output_column
    texts = [c.name for c in cols if c.kind in ("text", "candidates", "expression")]
    return texts[-1] if texts else (cols[-1].name if cols else None)


def templates_of(col: Column, recipe: Recipe) -> dict[str, str]:
    """Its templates by field name (the ones that render, with the recipe's system as fallback)."""
    if col.kind == "expression":
        return {"expression": col.expression}
    out = {"user_template": col.user_template or default_user_template(col)}
    if col.system_template:
        out["system_template"] = col.system_template
    return out


def default_user_template(col: Column) -> str:
    if col.kind == "pairwise" and col.of:
        return (f"{{{{ prompts.{col.of} }}}}\n\nAnswer A:\n{{{{ {col.of}[0] }}}}\n\n"
                f"Answer B:\n{{{{ {col.of}[1] }}}}\n\nWhich answer is better? Give the winner (A or B) and the reason.")
    return ""


def referenced(col: Column, recipe: Recipe) -> dict[str, set[str]]:
    """Per template field, the top-level names it reads (raises TemplateProblem if it does not parse)."""
    out = {}
    for fld, src in templates_of(col, recipe).items():
        out[fld] = set(compile_template(src, f"column {col.name} {fld}").variables)
    if col.kind == "pairwise" and col.of:
        out.setdefault("of", set()).add(col.of)
    return out


def schema_field_problems(schema: dict[str, Any], path: str = "") -> list[tuple[str, str]]:
    """(field, message) for enums that cannot label anything (fewer than two values)."""
    out: list[tuple[str, str]] = []
    if not isinstance(schema, dict):
        return out
    enum = schema.get("enum")
    if isinstance(enum, list) and len(enum) < 2:
        out.append((path or "(root)", f"an enum needs at least two values, got {enum!r}"))
    for key, sub in (schema.get("properties") or {}).items():
        out.extend(schema_field_problems(sub, f"{path}.{key}" if path else key))
    if isinstance(schema.get("items"), dict):
        out.extend(schema_field_problems(schema["items"], f"{path}[]"))
    return out


def column_problems(recipe: Recipe, provided: set[str] | None, reserved: frozenset[str]) -> list[tuple[str, str]]:
    """Every problem of the recipe's columns, as (where, message), found before anything is sent.
    ``provided`` is what templates may read besides columns (dimensions, task, demos...), None when
    it is not known yet (a dataset's fields: see ``unknown_variables``); ``reserved`` the names a
    column may not take."""
    cols = effective_columns(recipe)
    problems: list[tuple[str, str]] = []
    names = [c.name for c in cols]
    position = {}
    for i, n in enumerate(names):
        position.setdefault(n, i)
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append((f"column '{dup}'", "two columns (or steps) have this name"))
    dims = {d.name for d in recipe.dimensions}
    refs: dict[str, set[str]] = {}
    for i, col in enumerate(cols):
        where = f"column '{col.name}'"
        if not _NAME.match(col.name):
            problems.append((where, "use letters, digits and _ for column names (not starting with a digit)"))
        elif col.name in reserved or col.name == "columns" or col.name in dims:
            problems.append((where, f"'{col.name}' is {'a dimension' if col.name in dims else 'reserved in templates'}; pick another name"))
        if col.kind in CALLING - {"pairwise"} and not col.user_template.strip():
            problems.append((f"{where}, field user_template", "is empty: write what the model is asked"))
        if col.kind == "expression" and not col.expression.strip():
            problems.append((f"{where}, field expression", "is empty"))
        if col.kind == "structured":
            try:
                schema = parse_schema(col.output_schema)
                jsonschema.validators.validator_for(schema).check_schema(schema)
                problems.extend((f"{where}, field '{f}'", m) for f, m in schema_field_problems(schema))
                if col.n > 1 and not col.vote_field():
                    problems.append((f"{where}, field vote", "self-consistency (n > 1) needs a field to vote on: give an enum or set vote"))
            except json.JSONDecodeError as exc:
                problems.append((f"{where}, field output_schema", f"the schema is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"))
            except jsonschema.SchemaError as exc:
                loc = ".".join(str(p) for p in exc.path) or "(root)"
                problems.append((f"{where}, field output_schema", f"not a valid JSON schema at {loc}: {exc.message}"))
            except ValueError as exc:
                problems.append((f"{where}, field output_schema", str(exc)))
        if col.kind == "judge":
            if col.scale is None:
                problems.append((f"{where}, field scale", "a judge needs a scale: the lowest and highest score, e.g. [1, 5]"))
            elif col.scale[0] >= col.scale[1]:
                problems.append((f"{where}, field scale", f"the lowest score must be below the highest, got {list(col.scale)}"))
            if not col.rubric.strip():
                problems.append((f"{where}, field rubric", "a judge needs a rubric: what a good answer is"))
        if col.kind == "pairwise":
            target = next((c for c in cols[:i] if c.name == col.of), None)
            if not col.of:
                problems.append((f"{where}, field of", "a pairwise judge needs the candidates column it compares"))
            elif target is None:
                later = col.of in names[i + 1:]
                problems.append((f"{where}, field of", f"'{col.of}' {'comes after it' if later else 'is not a column'}"))
            elif target.kind != "candidates" or target.n != 2:
                problems.append((f"{where}, field of", f"'{col.of}' must be a candidates column with n = 2"))
        if not 1 <= col.n <= MAX_VOTES:
            problems.append((f"{where}, field n", f"must be between 1 and {MAX_VOTES}"))
        if col.kind == "candidates" and col.n < 2:
            problems.append((f"{where}, field n", "candidates needs at least 2 answers"))
        if col.temperatures and len(col.temperatures) != col.n:
            problems.append((f"{where}, field temperatures", f"give one per answer ({col.n}), got {len(col.temperatures)}"))
        if not 0 <= col.retries <= MAX_RETRIES:
            problems.append((f"{where}, field retries", f"must be between 0 and {MAX_RETRIES}"))
        try:
            fields = referenced(col, recipe)
        except TemplateProblem as exc:
            problems.append((where, str(exc)))
            continue
        refs[col.name] = set().union(*fields.values()) & set(names)
        for fld, used in fields.items():
            for var in sorted(used - (provided if provided is not None else set(used)) - {"columns", "steps", "prompts"}):
                if var in position and position[var] >= i:
                    if var == col.name:
                        problems.append((f"{where}, field {fld}", "refers to itself"))
                    # later references are reported below, as a cycle when there is one
                elif var not in position:
                    problems.append((f"{where}, field {fld}", f"refers to '{var}', which is not a column, dimension or template variable"))
    cycle = _cycle(refs)
    if cycle:
        problems.append(("columns", "cycle: " + " → ".join(cycle)))
    for col in cols:
        for var in sorted(refs.get(col.name, set())):
            if col.kind == "pairwise" and var == col.of:
                continue  # reported on its field 'of'
            if var != col.name and position[var] > position[col.name] and not (cycle and var in cycle and col.name in cycle):
                problems.append((f"column '{col.name}'", f"refers to '{var}', which comes after it: move '{var}' above '{col.name}'"))
    out = recipe.output_column
    if out and out not in names:
        problems.append(("output_column", f"'{out}' is not a column"))
    return problems


def unknown_variables(recipe: Recipe, provided: set[str], what: str) -> list[tuple[str, str]]:
    """(where, message) for each template variable that is neither a column nor in ``provided``
    (e.g. the fields of the dataset a recipe annotates, named in ``what``)."""
    out = []
    cols = effective_columns(recipe)
    names = {c.name for c in cols}
    extra = {"columns", "steps", "prompts"}
    templates = [("system_template", recipe.system_template)] if recipe.system_template.strip() else []
    for where, src in templates:
        used = set(compile_template(src, where).variables) - provided - names - extra
        out += [(f"recipe, field {where}", f"refers to '{v}', which is not {what}") for v in sorted(used)]
    for col in cols:
        for fld, used in referenced(col, recipe).items():
            for v in sorted(used - provided - names - extra):
                out.append((f"column '{col.name}', field {fld}", f"refers to '{v}', which is not {what}"))
    return out


def _cycle(refs: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(refs.get(n, set())):
            if m == n:
                continue
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in refs:
        if n not in state and (found := visit(n)):
            return found
    return None


# -- answers ------------------------------------------------------------------------------
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def parse_json_answer(text: str) -> Any:
    """The JSON in a model's answer: the whole text, a fenced block, or the first {...} in it."""
    text = text.strip()
    candidates = [text]
    candidates += _FENCE.findall(text)
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    err: json.JSONDecodeError | None = None
    for c in candidates:
        try:
            return json.loads(c)
        except json.JSONDecodeError as exc:
            err = err or exc
    raise ValueError(f"the answer is not JSON ({err.msg if err else 'empty'}): {text[:120]!r}")


def answer_validator(col: Column) -> Any:
    """A jsonschema validator of the column's answers (None for kinds without a schema)."""
    schema = col.answer_schema() if col.kind in SCHEMA_KINDS else None
    return None if schema is None else jsonschema.validators.validator_for(schema)(schema)


def validate_answer(col: Column, text: str, validator: Any = None) -> Any:
    """The answer as a value, or ValueError naming what does not match the schema (``validator``:
    ``answer_validator(col)``, built once per column by callers that validate many answers)."""
    value = parse_json_answer(text)
    validator = validator or answer_validator(col)
    if validator is not None:
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            loc = ".".join(str(p) for p in e.path) or "(root)"
            raise ValueError(f"does not match the schema at {loc}: {e.message}")
    return value


def schema_instruction(col: Column) -> str:
    """What the system message adds so that any backend (with or without a JSON mode) answers JSON."""
    schema = col.answer_schema() or {}
    head = ""
    if col.kind == "judge" and col.scale:
        head = f"Rubric: {col.rubric}\nScore from {col.scale[0]} (worst) to {col.scale[1]} (best). "
    elif col.kind == "pairwise":
        head = f"Rubric: {col.rubric}\n" if col.rubric else ""
    return head + "Answer with one JSON object only, matching this JSON schema: " + json.dumps(schema, ensure_ascii=False)


def vote(col: Column, values: list[Any]) -> dict[str, Any]:
    """Self-consistency over valid answers: the first answer with the majority value of the vote
    field, with ``agreement`` (share of votes for it) and ``votes`` (valid answers counted)."""
    fld = col.vote_field()
    keyed = [(json.dumps(v.get(fld) if isinstance(v, dict) else v, sort_keys=True), v) for v in values]
    counts = Counter(k for k, _ in keyed)
    top = max(counts.values())
    winner = next(k for k, _ in keyed if counts[k] == top)  # ties: the value seen first
    chosen = next(v for k, v in keyed if k == winner)
    out = dict(chosen) if isinstance(chosen, dict) else {"value": chosen}
    out["agreement"] = round(top / len(values), 4)
    out["votes"] = len(values)
    return out


def pairwise_value(col: Column, answers: list[dict[str, Any]], candidates: list[Any], prompt: str) -> dict[str, Any]:
    """A pairwise judge's value from its answers: one (order A/B), or two (A/B, then B/A with the
    candidates swapped). ``winner`` is in the first order's letters; with two orders the pair is
    ``chosen``/``rejected`` only where both picked the same candidate, else ``winner`` is ``tie``
    (``consistent`` false, both reasons kept, no chosen/rejected: exports leave it out)."""
    first = answers[0]
    win = 0 if first.get("winner") == "A" else 1
    if len(answers) == 1:
        return {**first, "prompt": prompt, "chosen": candidates[win], "rejected": candidates[1 - win]}
    second = answers[1]
    win2 = 1 if second.get("winner") == "A" else 0  # B/A: its A is the first order's B
    orders = [{"order": "A/B", "winner": first.get("winner"), "reason": first.get("reason", "")},
              {"order": "B/A", "winner": second.get("winner"), "reason": second.get("reason", "")}]
    if win == win2:
        return {"winner": "AB"[win], "reason": first.get("reason", ""), "consistent": True, "orders": orders,
                "prompt": prompt, "chosen": candidates[win], "rejected": candidates[1 - win]}
    return {"winner": "tie", "reason": " | ".join(o["reason"] for o in orders), "consistent": False, "orders": orders,
            "prompt": prompt, "candidates": list(candidates)}


def value_text(value: Any) -> str:
    """The text a column's value is shown and exported as."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def flat_fields(value: Any) -> dict[str, Any]:
    """A structured value as flat fields (nested objects joined with '_')."""
    out: dict[str, Any] = {}
    if not isinstance(value, dict):
        return out
    for k, v in value.items():
        if isinstance(v, dict):
            out.update({f"{k}_{kk}": vv for kk, vv in flat_fields(v).items()})
        else:
            out[k] = v
    return out


def graph_dot(recipe: Recipe) -> str:
    """The recipe as a Graphviz graph: dimensions (or the dataset's fields) → columns → judges.
    Names are identifiers (checked), so they are safe inside DOT; labels are quoted anyway."""
    cols = effective_columns(recipe)
    names = {c.name for c in cols}
    shape = {"judge": "diamond", "pairwise": "diamond", "structured": "component", "candidates": "box3d",
             "expression": "note", "text": "ellipse"}
    lines = ["digraph recipe {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=11];']
    dims = [d.name for d in recipe.dimensions]
    source = recipe.source.dataset if recipe.source else None
    if source:
        source = source.replace('"', "'").replace("\\", "/")
        lines.append(f'  "dataset" [label="dataset: {source}", shape=cylinder, style=filled, fillcolor="#eef3fb"];')
    for d in dims:
        lines.append(f'  "dim:{d}" [label="{d}", shape=box, style="rounded,filled", fillcolor="#f1f1f1"];')
    for c in cols:
        extra = f" ×{c.n}" if c.n > 1 else ""
        fill = "#fff4e5" if c.kind in ("judge", "pairwise") else "#e8f5e9"
        lines.append(f'  "col:{c.name}" [label="{c.name}\\n{c.kind}{extra}", shape={shape[c.kind]}, style=filled, fillcolor="{fill}"];')
    for c in cols:
        try:
            used = set().union(*referenced(c, recipe).values())
        except TemplateProblem:
            continue
        for d in dims:
            if d in used:
                lines.append(f'  "dim:{d}" -> "col:{c.name}";')
        for other in sorted(used & names - {c.name}):
            lines.append(f'  "col:{other}" -> "col:{c.name}";')
        if source and used - names - set(dims) - {"task", "demos", "index", "columns", "steps", "prompts"}:
            lines.append(f'  "dataset" -> "col:{c.name}";')
    lines.append("}")
    return "\n".join(lines)
