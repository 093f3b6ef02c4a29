"""Rendering the columns of a recipe for one plan item, given the values of the columns before.

A column's templates see the condition, ``task``, ``demos``, ``index`` and each earlier column by
name (also as ``columns.<name>`` and, for recipes written with steps, ``steps.<name>``), and
``prompts.<name>``: the user message an earlier column was asked with (a pairwise judge shows
the candidates' prompt). A recipe with only its own templates sends the plan's messages as they are.
"""

from __future__ import annotations

from typing import Any

from services.recipes.columns import (
    OUTPUT,
    SCHEMA_KINDS,
    Column,
    answer_validator,
    effective_columns,
    schema_instruction,
    templates_of,
)
from services.recipes.plan import MessageRenderer, PlanItem
from services.recipes.recipe import Recipe
from services.recipes.templating import CompiledTemplate, TemplateProblem, compile_template, render


class ColumnRenderer:
    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.columns: list[Column] = effective_columns(recipe)
        self._demos = {d.id: d for d in recipe.demos.examples}
        self._base = MessageRenderer(recipe)
        self._system = compile_template(recipe.system_template, "system") if recipe.system_template.strip() else None
        self._compiled: dict[str, dict[str, CompiledTemplate]] = {
            c.name: {f: compile_template(src, f"column {c.name} {f}") for f, src in templates_of(c, recipe).items() if src.strip()}
            for c in self.columns
        }
        # Built once per run, not per answer: schemas, their validators and their instruction text.
        self._schemas = {c.name: c.answer_schema() if c.kind in SCHEMA_KINDS else None for c in self.columns}
        self._validators = {c.name: answer_validator(c) for c in self.columns}
        self._instructions = {c.name: schema_instruction(c) for c in self.columns if c.kind in SCHEMA_KINDS}
        # Only the recipe's own template, with nothing before it: the plan already rendered it.
        self._plain = [c.name for c in self.columns] == [OUTPUT]
        # A system message that reads only the task and the condition is the same for every column
        # and item of that condition: rendered once per (column, condition), not once per call.
        pure = {d.name for d in recipe.dimensions} | {"task", "condition"}
        self._system_memo: dict[str, dict[tuple, str] | None] = {}
        for c in self.columns:
            tpl = self._compiled[c.name].get("system_template") or self._system
            self._system_memo[c.name] = {} if tpl is None or (tpl.variables <= pure and "random" not in tpl.source) else None

    def base_context(self, item: PlanItem) -> dict[str, Any]:
        """What every column of an item sees before any column's value: computed once per item."""
        demos = [self._demos[i] for i in item.demo_ids if i in self._demos]
        return self._base.context(item.condition, demos, item.index)

    def context(self, item: PlanItem, values: dict[str, Any], prompts: dict[str, str] | None = None,
                base: dict[str, Any] | None = None) -> dict[str, Any]:
        ctx = dict(base) if base is not None else self.base_context(item)
        ctx.update(values)
        ctx["columns"] = ctx["steps"] = dict(values)
        ctx["prompts"] = dict(prompts or {})
        return ctx

    def messages(self, col: Column, item: PlanItem, values: dict[str, Any], prompts: dict[str, str] | None = None,
                 base: dict[str, Any] | None = None) -> list[dict[str, str]]:
        """The messages a column is asked with for one item (raises TemplateProblem). ``base``:
        ``base_context(item)``, passed by callers that render several columns of one item."""
        if self._plain and col.name == OUTPUT:
            return item.messages
        ctx = self.context(item, values, prompts, base)
        tpls = self._compiled[col.name]
        memo = self._system_memo[col.name]
        key = tuple(sorted(item.condition.items())) if memo is not None else ()
        system = memo.get(key) if memo is not None else None
        if system is None:
            tpl = tpls.get("system_template") or self._system
            system = render(tpl, ctx) if tpl is not None else ""
            if col.kind in SCHEMA_KINDS:
                system = (system + "\n\n" if system.strip() else "") + self._instructions[col.name]
            if memo is not None and len(memo) < 4096:
                memo[key] = system
        out = [{"role": "system", "content": system}] if system.strip() else []
        out.append({"role": "user", "content": render(tpls["user_template"], ctx)})
        return out

    def schema(self, col: Column) -> dict[str, Any] | None:
        return self._schemas[col.name]

    def validator(self, col: Column) -> Any:
        return self._validators[col.name]

    def expression(self, col: Column, item: PlanItem, values: dict[str, Any], base: dict[str, Any] | None = None) -> str:
        return render(self._compiled[col.name]["expression"], self.context(item, values, base=base)).strip()


class StepRenderer(ColumnRenderer):
    """The multi-step interface of recipes written with ``steps``: messages by step name."""

    def __init__(self, recipe: Recipe):
        super().__init__(recipe)
        self.step_names = [s.name for s in recipe.steps]

    def messages(self, step: str | Column, item: PlanItem, outputs: dict[str, Any], prompts: dict[str, str] | None = None) -> list[dict[str, str]]:  # type: ignore[override]
        col = step if isinstance(step, Column) else next((c for c in self.columns if c.name == step), None)
        if col is None or (self.recipe.columns and not isinstance(step, Column)):
            # Callers by step name (provider batches) know text steps and the output only.
            raise TemplateProblem(str(step), "this recipe has columns (structured, judges, candidates...): "
                                  "only a live run generates them")
        return super().messages(col, item, outputs, prompts)
