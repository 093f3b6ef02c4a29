"""Plans: the list of items to generate, each with its condition, demos, rendered messages and key.

A plan is deterministic in its recipe version (the recipe includes its sampling seed), so the
same recipe always gives the same items and keys: reruns and resumes never duplicate work.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from services.recipes.columns import CALLING, SCHEMA_KINDS, schema_instruction, unknown_variables
from services.recipes.demonstrations import DemoPicker, Embed
from services.recipes.recipe import RESERVED_NAMES, Demo, Recipe, RecipeError
from services.recipes.sampling import Condition, plan_size, sample_conditions
from services.recipes.templating import CompiledTemplate, TemplateProblem, compile_template, render

# Bump when the planner's output for a given recipe changes.
PLANNER_VERSION = 1
_PER_ITEM_VARS = frozenset({"demos", "index", "condition", "steps"})


@dataclass(frozen=True)
class PlanItem:
    index: int
    key: str
    condition: Condition
    demo_ids: list[str]
    messages: list[dict[str, str]]


@dataclass
class Plan:
    plan_id: str
    recipe_hash: str
    strategy: str
    seed: int
    n_cells: int
    items: list[PlanItem] = field(default_factory=list)


def item_key(recipe_hash: str, index: int, condition: Condition, demo_ids: list[str]) -> str:
    """Deterministic key of a plan item: recipe version (incl. seed), index, condition, demos."""
    # Control characters as separators: unambiguous for any text, cheaper than JSON.
    cond = "\x1f".join(f"{k}\x1d{v}" for k, v in sorted(condition.items()))
    payload = f"{recipe_hash}\x1e{index}\x1e{cond}\x1e" + "\x1f".join(demo_ids)
    return hashlib.blake2b(payload.encode(), digest_size=10).hexdigest()


def plan_id_for(recipe_hash: str) -> str:
    return f"{recipe_hash}-v{PLANNER_VERSION}"


class LabelledText(str):
    """A labelled value in templates: renders as its full text; ``.label`` is its short label."""

    label: str

    def __new__(cls, text: str, label: str) -> LabelledText:
        obj = super().__new__(cls, text)
        obj.label = label
        return obj


def value_texts(recipe: Recipe) -> dict[str, dict[tuple[str | None, str], str]]:
    """Per categorical dimension: (parent value or None, stored key) -> the value's full text."""
    out: dict[str, dict[tuple[str | None, str], str]] = {}
    for d in recipe.dimensions:
        if d.kind != "categorical":
            continue
        groups = d.values_by_parent.items() if d.depends_on else [(None, d.values)]
        out[d.name] = {(p, v.key): v.text for p, vals in groups for v in vals}
    return out


def template_condition(recipe: Recipe, condition: Condition,
                       texts: dict[str, dict[tuple[str | None, str], str]] | None = None) -> Condition:
    """The condition as templates see it: each value (stored by its label) renders as its full
    text, with the label as ``.label``; a recipe without labels renders exactly as before."""
    texts = value_texts(recipe) if texts is None else texts
    parents = {d.name: d.depends_on for d in recipe.dimensions}
    out: dict[str, Any] = dict(condition)
    for name, table in texts.items():
        key = condition.get(name)
        if key is not None:
            parent = parents[name]
            out[name] = LabelledText(table.get((condition.get(parent) if parent else None, key), key), key)
    return out


class MessageRenderer:
    """Renders a recipe's system and user templates for a condition, caching pure renders.

    A template that reads only dimensions (not demos or the index) gives the same text for
    the same values, so its renders are memoised by those values.
    """

    def __init__(self, recipe: Recipe, system_template: str | None = None, user_template: str | None = None):
        self.recipe = recipe
        self.templates: list[tuple[str, CompiledTemplate]] = []
        for role, src, name in (
            ("system", recipe.system_template if system_template is None else system_template, "system"),
            ("user", recipe.user_template if user_template is None else user_template, "user"),
        ):
            if src.strip():
                self.templates.append((role, compile_template(src, name)))
        self._caches: list[dict[tuple, str] | None] = [
            None if (t.variables & _PER_ITEM_VARS or "random" in t.source) else {} for _, t in self.templates
        ]
        self._keys = [tuple(sorted(t.variables)) for _, t in self.templates]
        self._texts = value_texts(recipe)
        if any(d.kind == "categorical" and d.has_labels() for d in recipe.dimensions):
            # A label is unique only under its parent's value: key the cache by the ancestors too.
            parent = {d.name: d.depends_on for d in recipe.dimensions}

            def with_ancestors(names: tuple[str, ...]) -> tuple[str, ...]:
                out, todo = set(names), list(names)
                while todo:
                    p = parent.get(todo.pop())
                    if p and p not in out:
                        out.add(p)
                        todo.append(p)
                return tuple(sorted(out))

            self._keys = [with_ancestors(k) for k in self._keys]

    def context(self, condition: Condition, demos: list[Demo], index: int, steps: dict[str, str] | None = None) -> dict[str, Any]:
        if self._texts:
            condition = template_condition(self.recipe, condition, self._texts)
        ctx: dict[str, Any] = {"task": self.recipe.task, **condition, "condition": condition, "index": index}
        ctx["demos"] = [{"id": d.id, "text": d.text, **d.attributes} for d in demos]
        if steps is not None:
            ctx["steps"] = steps
        return ctx

    def messages(self, condition: Condition, demos: list[Demo], index: int, steps: dict[str, str] | None = None) -> list[dict[str, str]]:
        ctx = None
        out = []
        for n, (role, tpl) in enumerate(self.templates):
            cache = self._caches[n]
            if cache is not None:
                key = tuple(condition.get(v, "\0" if v != "task" else "") for v in self._keys[n])
                text = cache.get(key)
                if text is None:
                    ctx = ctx or self.context(condition, demos, index, steps)
                    text = cache[key] = render(tpl, ctx)
            else:
                ctx = ctx or self.context(condition, demos, index, steps)
                text = render(tpl, ctx)
            out.append({"role": role, "content": text})
        return out


def source_conditions(recipe: Recipe, rows: list[dict[str, str]] | None, limit: int | None) -> list[Condition]:
    """An annotation recipe's items: the dataset's rows (checked against its templates first)."""
    src = recipe.source
    assert src is not None
    if rows is None:
        raise RecipeError([("source", f"the recipe annotates dataset '{src.dataset}': its rows must be read first")])
    if not rows:
        raise RecipeError([("source", f"dataset '{src.dataset}' has no rows")])
    fields = sorted(set().union(*(r.keys() for r in rows)))
    dims = {d.name for d in recipe.dimensions}
    problems = unknown_variables(recipe, set(fields) | dims | RESERVED_NAMES,
                                 f"a field of dataset '{src.dataset}' (it has: {', '.join(fields)})")
    if problems:
        raise RecipeError(problems)
    n = min(x for x in (len(rows), src.limit, limit) if x is not None)
    return [dict(r) for r in rows[:n]]


def make_plan(recipe: Recipe, limit: int | None = None, rows: list[dict[str, str]] | None = None,
              embed: Embed | None = None) -> Plan:
    """Sample conditions (or take a dataset's ``rows`` for an annotation recipe), pick demos and
    render messages; the first ``limit`` items if given. ``embed`` (texts -> vectors) serves the
    nearest and diverse demo strategies (default: TF-IDF over the demonstrations)."""
    rhash = recipe.content_hash()
    conditions = source_conditions(recipe, rows, limit) if recipe.source else sample_conditions(recipe, limit)
    items = _render_items(recipe, rhash, conditions, embed, f"demos:{recipe.sampling.seed}")
    if recipe.source:
        # The same recipe over a re-imported dataset is another plan: its id carries the rows' keys.
        digest = hashlib.blake2b("".join(it.key for it in items).encode(), digest_size=6).hexdigest()
        return Plan(f"{plan_id_for(rhash)}-{digest}", rhash, "dataset", recipe.sampling.seed, len(items), items)
    size = plan_size(recipe)
    return Plan(plan_id_for(rhash), rhash, recipe.sampling.strategy, recipe.sampling.seed, size.cells, items)


def plan_for_conditions(recipe: Recipe, conditions: list[Condition], tag: str, embed: Embed | None = None) -> Plan:
    """A plan of the given conditions (e.g. one round of a grow loop), rendered exactly as
    ``make_plan`` renders its own; its id is the recipe's plan id plus ``tag``, and its demos are
    drawn from a stream of their own for that tag."""
    rhash = recipe.content_hash()
    items = _render_items(recipe, rhash, conditions, embed, f"demos:{recipe.sampling.seed}:{tag}")
    return Plan(f"{plan_id_for(rhash)}-{tag}", rhash, "explicit", recipe.sampling.seed, len(items), items)


def _render_items(recipe: Recipe, rhash: str, conditions: list[Condition], embed: Embed | None, demo_stream: str) -> list[PlanItem]:
    picker = DemoPicker(recipe.demos, embed)
    renderer = MessageRenderer(recipe)
    first = recipe.columns[0] if recipe.columns and not recipe.user_template.strip() and not recipe.steps else None
    if first is not None and first.kind in CALLING - {"pairwise"}:
        # No template of its own: an item's messages are those of its first column (it can read
        # only the condition and demos), as the runner sends them: preview and forecast are true.
        renderer = MessageRenderer(recipe, system_template=first.system_template or recipe.system_template,
                                   user_template=first.user_template)
    else:
        first = None
    # Demos use their own stream so changing k never changes the sampled conditions.
    rng = random.Random(demo_stream)
    items = []
    # Multi-step recipes: the final template may read steps.<name>; the plan shows placeholders
    # (the runner renders the real messages once the earlier steps have answered).
    placeholders = {s.name: f"<output of step {s.name}>" for s in recipe.steps} or None
    for i, cond in enumerate(conditions):
        demos = picker.pick(rng, cond, cond.get("text") if recipe.source else None)
        ids = [d.id for d in demos]
        try:
            msgs = renderer.messages(cond, demos, i, placeholders)
            if first is not None:
                msgs = _as_column(msgs, first)
        except TemplateProblem as exc:
            raise TemplateProblem(exc.template_name, f"{exc.message} (item {i}, condition {cond})", exc.line) from None
        items.append(PlanItem(i, item_key(rhash, i, cond, ids), cond, ids, msgs))
    return items


def _as_column(msgs: list[dict[str, str]], col: Any) -> list[dict[str, str]]:
    """The messages as the runner sends a column: the schema instruction after the system
    message of a structured kind, and no system message when it is empty."""
    system = next((m["content"] for m in msgs if m["role"] == "system"), "")
    if col.kind in SCHEMA_KINDS:
        system = (system + "\n\n" if system.strip() else "") + schema_instruction(col)
    user = [m for m in msgs if m["role"] == "user"]
    return ([{"role": "system", "content": system}] if system.strip() else []) + user


def template_report(recipe: Recipe) -> dict[str, dict[str, Any]]:
    """Per template: the variables it uses and which of them nothing provides."""
    provided = {d.name for d in recipe.dimensions} | {"task", "demos", "condition", "index"}
    if recipe.steps:
        provided.add("steps")
    report = {}
    templates = {"system": recipe.system_template, "user": recipe.user_template}
    templates.update({f"step {s.name} (system)": s.system_template for s in recipe.steps if s.system_template})
    templates.update({f"step {s.name} (user)": s.user_template for s in recipe.steps})
    for name, src in templates.items():
        try:
            used = sorted(compile_template(src, name).variables)
            report[name] = {"variables": used, "unprovided": [v for v in used if v not in provided], "error": None}
        except TemplateProblem as exc:
            report[name] = {"variables": [], "unprovided": [], "error": str(exc)}
    return report
