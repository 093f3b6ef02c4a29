"""What a run's recipe says about its condition heatmap: every value it has (so values no sample
received show as empty rows/columns) and which pairs of values it can produce at all (a
dimension that depends on another, or an exclusion rule, makes some cells impossible: those
are not gaps to fill)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.core.store import Store
from services.recipes.recipe import Recipe
from services.recipes.sampling import Design
from services.recipes.version_store import load_version

# Above this many grid cells the pairs come from direct dependencies only (never enumerated).
MAX_ENUMERATED_CELLS = 200_000


@dataclass(frozen=True)
class RecipeCells:
    """The recipe's values of two dimensions and the (a, b) pairs it can produce (None: any)."""

    values_a: list[str]
    values_b: list[str]
    possible: set[tuple[str, str]] | None


def scope_recipe(store: Store, run_ids: Sequence[str]) -> Recipe | None:
    """The recipe the runs share (None when they have several, or it was never saved)."""
    if not run_ids:
        return None
    hashes = {h for (h,) in store.query("SELECT DISTINCT recipe_hash FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                                        [list(run_ids)])}
    if len(hashes) != 1:
        return None
    try:
        return load_version(store, hashes.pop())
    except (KeyError, ValueError):
        return None


def _values(recipe: Recipe, name: str) -> list[str]:
    return list(dict.fromkeys(v.key for v in recipe.dimension(name).all_values()))


def recipe_cells(recipe: Recipe | None, dim_a: str, dim_b: str) -> RecipeCells | None:
    """The heatmap cells the recipe defines for ``dim_a`` x ``dim_b`` (None: not its dimensions)."""
    if recipe is None:
        return None
    names = {d.name for d in recipe.dimensions if d.kind == "categorical"}
    if dim_a not in names or dim_b not in names:
        return None
    design = Design(recipe)
    if design.cell_count() <= MAX_ENUMERATED_CELLS:
        possible = {(c[dim_a], c[dim_b]) for c in design.iter_cells() if dim_a in c and dim_b in c}
    else:
        possible = _direct_pairs(recipe, dim_a, dim_b)
    return RecipeCells(_values(recipe, dim_a), _values(recipe, dim_b), possible)


def _direct_pairs(recipe: Recipe, dim_a: str, dim_b: str) -> set[tuple[str, str]] | None:
    """Pairs allowed when one dimension depends directly on the other; None (any) otherwise."""
    a, b = recipe.dimension(dim_a), recipe.dimension(dim_b)
    if b.depends_on == dim_a:
        return {(p, v.key) for p, vals in b.values_by_parent.items() for v in vals}
    if a.depends_on == dim_b:
        return {(v.key, p) for p, vals in a.values_by_parent.items() for v in vals}
    return None
