"""Grow toward a target: the pure part of the loop (target, distance, allocation, conditions).

A *cell* is one combination of values of the target's dimensions (all the recipe's categorical
dimensions by default, or those the user names). The *target* is a distribution over the cells
the recipe can produce: uniform by default, or shaped by shares per value. Each round of the loop
(``grow_loop``) counts what the runs hold per cell, asks ``allocate`` where the next batch should
go, and plans one full condition per pick with ``draw_condition``.

The allocation is *largest deficit first*: a cell's deficit is its target share of the total after
the batch, less its effective count, less what this batch already gave it; the batch is handed
out one sample at a time to the largest deficit. Effective counts discount what does not really
cover a cell: a collapsed cell's samples count ``COLLAPSE_WEIGHT`` each (they are near-copies), and
samples a faithfulness judge found unfaithful count nothing. So collapsed and unfaithful cells are
served first, but no pick takes a cell's raw count past its target share (rounded up): the
realised distribution, which is what the loop shows, still converges. Cells the recipe cannot
produce have no target share and are never planned.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.core.errors import StudioError
from services.recipes.recipe import Recipe
from services.recipes.sampling import Condition, Design

Cell = tuple[str, ...]  # values of the target's dimensions, in the target's order

MAX_ENUMERATED_CELLS = 200_000  # above this the grid is never listed (cells come from the values)
MAX_TARGET_CELLS = 20_000  # a loop of small batches cannot move a distribution over more cells
SHARE_TOLERANCE = 1e-3
COLLAPSE_WEIGHT = 0.5
OFF_TARGET = "(other)"  # a sample whose value the target does not know


class GrowError(StudioError, ValueError):
    """A grow loop that cannot be set up (the message names what and where)."""

    title = "The grow loop cannot start"


@dataclass(frozen=True)
class Target:
    """Target shares of the cells the recipe can produce (summing to 1)."""

    dimensions: tuple[str, ...]
    shares: dict[Cell, float]
    impossible: int = 0  # combinations of the dimensions' values the recipe cannot produce
    notes: list[str] = field(default_factory=list)

    def label(self, cell: Cell) -> str:
        return ", ".join(f"{d}={v}" for d, v in zip(self.dimensions, cell, strict=True))

    def cell_of(self, condition: Mapping[str, str]) -> Cell:
        return tuple(str(condition.get(d, OFF_TARGET)) for d in self.dimensions)


def target_dimensions(recipe: Recipe, dimensions: Sequence[str] | None = None,
                      shares: Mapping[str, Mapping[str, float]] | None = None) -> tuple[str, ...]:
    """The dimensions that define the cells: those named (in the recipe's order), plus any that
    the shares name; default every categorical dimension."""
    categorical = [d.name for d in recipe.dimensions if d.kind == "categorical"]
    if not categorical:
        raise GrowError(f"Recipe '{recipe.name}' has no categorical dimension, so it has no cells to grow toward. "
                        "Add a dimension with values in the Prompt Builder.")
    wanted = list(dimensions or []) + list((shares or {}).keys())
    for name in wanted:
        if name not in categorical:
            kind = next((d.kind for d in recipe.dimensions if d.name == name), None)
            why = f"is a {kind} dimension" if kind else "is not one of its dimensions"
            raise GrowError(f"The target names dimension '{name}', which {why} in recipe '{recipe.name}' "
                            f"(its categorical dimensions: {', '.join(categorical)}).")
    if not wanted:
        return tuple(categorical)
    return tuple(d for d in categorical if d in set(wanted))


def check_shares(recipe: Recipe, shares: Mapping[str, Mapping[str, float]]) -> None:
    """Every share names a value of its dimension, none is negative, and each dimension's sum to 1."""
    for dim, per_value in shares.items():
        known = list(dict.fromkeys(v.key for v in recipe.dimension(dim).all_values()))
        unknown = [v for v in per_value if v not in known]
        if unknown:
            raise GrowError(f"The target's shares for '{dim}' name {', '.join(repr(v) for v in unknown)}, which "
                            f"'{dim}' does not have (its values: {', '.join(known)}).")
        bad = [f"{v}={s}" for v, s in per_value.items() if not (isinstance(s, int | float) and math.isfinite(s) and s >= 0)]
        if bad:
            raise GrowError(f"The target's shares for '{dim}' must be numbers of at least 0: {', '.join(bad)}.")
        total = float(sum(per_value.values()))
        if abs(total - 1.0) > SHARE_TOLERANCE:
            listed = ", ".join(f"{v} {s:g}" for v, s in per_value.items())
            raise GrowError(f"The target's shares for '{dim}' sum to {total:.4g}, not 1 ({listed}). "
                            "Values left out get a share of 0.")


def possible_cells(recipe: Recipe, dims: Sequence[str]) -> tuple[list[Cell], int]:
    """The cells of ``dims`` the recipe can produce (dependencies and exclusion rules honoured),
    in grid order, and how many combinations of the dimensions' values it cannot produce."""
    design = Design(recipe)
    values = {d: list(dict.fromkeys(v.key for v in recipe.dimension(d).all_values())) for d in dims}
    combos = math.prod(len(v) for v in values.values())
    if design.cell_count() <= MAX_ENUMERATED_CELLS:
        cells = list(dict.fromkeys(tuple(c[d] for d in dims) for c in design.iter_cells()))
    else:
        # Too many to list: direct dependencies among these dimensions decide; a draw that breaks
        # an exclusion rule later makes the cell impossible there (``draw_condition`` says None).
        if combos > MAX_TARGET_CELLS:
            raise _too_many(dims, combos)
        parents = {d: recipe.dimension(d).depends_on for d in dims}
        cells = []
        for combo in itertools.product(*(values[d] for d in dims)):
            c = dict(zip(dims, combo, strict=True))
            if all(parents[d] not in c or c[d] in {v.key for v in recipe.dimension(d).options(c[parents[d]])} for d in dims):
                cells.append(tuple(combo))
    if len(cells) > MAX_TARGET_CELLS:
        raise _too_many(dims, len(cells))
    return cells, combos - len(cells)


def _too_many(dims: Sequence[str], n: int) -> GrowError:
    return GrowError(f"The target's dimensions ({', '.join(dims)}) make {n:,} cells, more than the {MAX_TARGET_CELLS:,} "
                     "a grow loop can steer: name fewer dimensions for the cells.")


def make_target(recipe: Recipe, dimensions: Sequence[str] | None = None,
                shares: Mapping[str, Mapping[str, float]] | None = None) -> Target:
    """Uniform over the recipe's possible cells, or, with ``shares`` ({dimension: {value: share}}),
    each combination of the shared dimensions' values at the product of its shares, spread evenly
    over its possible cells. Combinations the recipe cannot produce lose their share (said in notes)."""
    shares = {d: dict(v) for d, v in (shares or {}).items()}
    dims = target_dimensions(recipe, dimensions, shares)
    check_shares(recipe, shares)
    cells, impossible = possible_cells(recipe, dims)
    if not cells:
        raise GrowError(f"Recipe '{recipe.name}' can produce no cell of {', '.join(dims)}: its exclusion rules forbid them all.")
    notes = []
    shared = [i for i, d in enumerate(dims) if d in shares]
    if not shared:
        q = 1.0 / len(cells)
        weights = dict.fromkeys(cells, q)
    else:
        groups: dict[Cell, list[Cell]] = {}
        for c in cells:
            groups.setdefault(tuple(c[i] for i in shared), []).append(c)
        weights = {}
        for key, members in groups.items():
            w = math.prod(shares[dims[i]].get(v, 0.0) for i, v in zip(shared, key, strict=True))
            for c in members:
                weights[c] = w / len(members)
        asked = math.prod(sum(shares[dims[i]].values()) for i in shared)
        total = sum(weights.values())
        if total <= 0:
            raise GrowError("No cell the recipe can produce has a share above 0 in the target.")
        if asked - total > SHARE_TOLERANCE:
            notes.append(f"{asked - total:.0%} of the target's shares fall on combinations the recipe cannot produce; "
                         "the rest is scaled up to 1.")
        weights = {c: w / total for c, w in weights.items() if w > 0}
    if impossible:
        notes.append(f"{impossible:,} combination(s) of {', '.join(dims)} cannot be produced by the recipe "
                     "(a dependency or an exclusion rule): they are never planned.")
    return Target(dims, weights, impossible, notes)


def total_variation(counts: Mapping[Cell, int], target: Mapping[Cell, float]) -> float | None:
    """Total variation distance between the counts' distribution and the target (0: equal, 1:
    disjoint); cells outside the target count as mass the target puts nowhere. None without samples."""
    n = sum(counts.values())
    if n <= 0:
        return None
    cells = set(counts) | set(target)
    return 0.5 * sum(abs(counts.get(c, 0) / n - target.get(c, 0.0)) for c in cells)


def effective_count(n: int, collapsed: bool, unfaithful: float | None) -> float:
    """How much ``n`` samples really cover a cell (see the module doc)."""
    return n * (1.0 - (unfaithful or 0.0)) * (COLLAPSE_WEIGHT if collapsed else 1.0)


def allocate(target: Mapping[Cell, float], counts: Mapping[Cell, int], batch: int, *,
             collapsed: set[Cell] | frozenset[Cell] = frozenset(),
             unfaithful: Mapping[Cell, float] | None = None) -> list[Cell]:
    """The next batch, as a list of ``batch`` cells in the order they were picked (the neediest
    first): largest deficit first, recomputed after every pick. Ties go to the larger target share,
    then to the cell listed first. Only cells with a target share above 0 are ever picked.

    Deficits use effective counts (collapsed and unfaithful cells are needier), but a pick never
    takes a cell's raw count past its target share of the new total, rounded up, so the realised
    distribution still converges on the target; only when every cell is at that bound does the
    rest of the batch go by raw deficit."""
    if batch <= 0:
        return []
    unfaithful = unfaithful or {}
    after = sum(counts.values()) + batch
    heap, room = [], {}
    for order, (cell, q) in enumerate(target.items()):
        if q <= 0:
            continue
        n = counts.get(cell, 0)
        room[cell] = math.ceil(q * after - 1e-9) - n
        deficit = q * after - effective_count(n, cell in collapsed, unfaithful.get(cell))
        if room[cell] > 0:
            heap.append((-deficit, -q, order, cell))
    heapq.heapify(heap)
    picks: list[Cell] = []
    while heap and len(picks) < batch:
        neg, negq, order, cell = heapq.heappop(heap)
        picks.append(cell)
        room[cell] -= 1
        if room[cell] > 0:
            heapq.heappush(heap, (neg + 1.0, negq, order, cell))
    if len(picks) < batch and room:
        # Every cell is at its bound (rounding): the rest by raw deficit.
        given = dict.fromkeys(room, 0)
        for c in picks:
            given[c] += 1
        rest = [(-(q * after - counts.get(c, 0) - given[c]), -q, i, c) for i, (c, q) in enumerate(target.items()) if q > 0]
        heapq.heapify(rest)
        while len(picks) < batch:
            neg, negq, order, cell = heapq.heappop(rest)
            picks.append(cell)
            heapq.heappush(rest, (neg + 1.0, negq, order, cell))
    return picks


def draw_condition(design: Design, dims: Sequence[str], cell: Cell, rng: random.Random, tries: int = 500) -> Condition | None:
    """A full condition in ``cell``: the cell's values fixed, every other dimension drawn by its
    weights (given its parent), random words drawn; None when no draw satisfies the recipe."""
    fixed = dict(zip(dims, cell, strict=True))
    for _ in range(tries):
        cond: Condition = {}
        for d in design.dims:
            opts = d.options(cond.get(d.depends_on) if d.depends_on else None)
            if d.name in fixed:
                if fixed[d.name] not in {v.key for v in opts}:
                    break
                cond[d.name] = fixed[d.name]
                continue
            allowed = [v for v in opts if _can_reach(design, d.name, v.key, fixed)]
            if not allowed:
                break
            cum = list(itertools.accumulate(v.weight for v in allowed))
            cond[d.name] = allowed[min(bisect.bisect(cum, rng.random() * cum[-1]), len(allowed) - 1)].key
        else:
            if not design.excluded(cond):
                return design.draw_words(rng, cond)
    return None


def _can_reach(design: Design, name: str, value: str, fixed: Mapping[str, str]) -> bool:
    """Whether ``value`` of ``name`` leaves every fixed child a value it allows (one level down is
    enough for the usual parent/child recipes; deeper mismatches are retried by the caller)."""
    for child in design.children.get(name, []):
        if child.name in fixed and fixed[child.name] not in {v.key for v in child.options(value)}:
            return False
    return True


def plan_conditions(recipe: Recipe, target: Target, picks: Sequence[Cell], seed: str) -> tuple[list[Condition], list[Cell]]:
    """One condition per pick, drawn reproducibly from ``seed``; returns the conditions and the
    cells no draw could satisfy (left out)."""
    design = Design(recipe)
    rng = random.Random(seed)
    conds, failed = [], []
    for cell in picks:
        c = draw_condition(design, target.dimensions, cell, rng)
        if c is None:
            failed.append(cell)
        else:
            conds.append(c)
    return conds, failed


def parse_shares(text: str) -> dict[str, dict[str, float]]:
    """``label=positive:0.7,negative:0.3; cuisine=Thai:0.5,Italian:0.5`` -> shares per value; a
    line or ``;`` per dimension. Raises ``GrowError`` naming the part it cannot read."""
    out: dict[str, dict[str, float]] = {}
    for part in (p.strip() for p in text.replace("\n", ";").split(";")):
        if not part:
            continue
        dim, sep, rest = part.partition("=")
        if not sep or not dim.strip() or not rest.strip():
            raise GrowError(f"Cannot read the target '{part}': write it as dimension=value:share,value:share.")
        values: dict[str, float] = {}
        for pair in rest.split(","):
            value, sep, share = pair.strip().rpartition(":")
            if not sep or not value.strip():
                raise GrowError(f"Cannot read '{pair.strip()}' in the target for '{dim.strip()}': write value:share, e.g. positive:0.7.")
            try:
                values[value.strip()] = float(share)
            except ValueError:
                raise GrowError(f"The share of '{value.strip()}' in the target for '{dim.strip()}' is '{share}', not a number.") from None
        out[dim.strip()] = values
    return out
