"""Multi-step recipes: each step's templates see earlier outputs as ``steps.<name>``.

The steps of ``recipe.steps`` run in order; the recipe's own templates make the final
``output`` step. A single-step recipe sends the plan's rendered messages as they are.
"""

from __future__ import annotations

from services.recipes.plan import MessageRenderer, PlanItem
from services.recipes.recipe import Recipe

OUTPUT = "output"


class StepRenderer:
    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.step_names = [s.name for s in recipe.steps]
        self._demos = {d.id: d for d in recipe.demos.examples}
        self._renderers = {
            # A step without its own system template shares the recipe's (the task specification).
            s.name: MessageRenderer(recipe, system_template=s.system_template or recipe.system_template, user_template=s.user_template)
            for s in recipe.steps
        }
        self._final = MessageRenderer(recipe) if recipe.steps else None

    def messages(self, step: str, item: PlanItem, outputs: dict[str, str]) -> list[dict[str, str]]:
        """The messages of one step of one item, given the outputs of the steps before it."""
        if step == OUTPUT and self._final is None:
            return item.messages
        renderer = self._final if step == OUTPUT else self._renderers[step]
        demos = [self._demos[i] for i in item.demo_ids if i in self._demos]
        return renderer.messages(item.condition, demos, item.index, steps=dict(outputs))
