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

    def context(self, item: PlanItem, values: dict[str, Any], prompts: dict[str, str] | None = None) -> dict[str, Any]:
        demos = [self._demos[i] for i in item.demo_ids if i in self._demos]
        ctx = self._base.context(item.condition, demos, item.index)
        ctx.update(values)
        ctx["columns"] = ctx["steps"] = dict(values)
        ctx["prompts"] = dict(prompts or {})
        return ctx

    def messages(self, col: Column, item: PlanItem, values: dict[str, Any], prompts: dict[str, str] | None = None) -> list[dict[str, str]]:
        """The messages a column is asked with for one item (raises TemplateProblem)."""
        if self._plain and col.name == OUTPUT:
            return item.messages
        ctx = self.context(item, values, prompts)
        tpls = self._compiled[col.name]
        system = render(tpls["system_template"], ctx) if "system_template" in tpls else (render(self._system, ctx) if self._system else "")
        if col.kind in SCHEMA_KINDS:
            system = (system + "\n\n" if system.strip() else "") + self._instructions[col.name]
        out = [{"role": "system", "content": system}] if system.strip() else []
        out.append({"role": "user", "content": render(tpls["user_template"], ctx)})
        return out

    def schema(self, col: Column) -> dict[str, Any] | None:
        return self._schemas[col.name]

    def validator(self, col: Column) -> Any:
        return self._validators[col.name]

    def expression(self, col: Column, item: PlanItem, values: dict[str, Any]) -> str:
        return render(self._compiled[col.name]["expression"], self.context(item, values)).strip()


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
