"""Sampling conditions from a recipe's dimensions.

Strategies: the full grid (Cartesian product respecting dependencies), weighted random
(each dimension drawn independently, children from their parent's values), balanced (every
cell equally often) and pairwise coverage (every compatible pair of values of any two
dimensions at least once). Exclusion rules are sandboxed Jinja expressions over a condition.
Enormous grids are counted, never materialised.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from services.recipes.recipe import Dimension, Recipe, RecipeError
from services.recipes.templating import TemplateProblem, compile_expression, template_variables

Condition = dict[str, str]

# Above this many cells the grid is never enumerated.
MAX_MATERIALISED_CELLS = 1_000_000
# A plan never holds more items than this.
MAX_PLAN_ITEMS = 2_000_000


@dataclass(frozen=True)
class PlanSize:
    cells: int  # cells in the grid before exclusions
    items: int | None  # items the plan will have (None when it cannot be known cheaply)
    excluded_cells: int | None  # cells removed by exclusion rules (None when not counted)
    materialisable: bool
    note: str = ""


class Design:
    """A recipe's dimensions prepared for sampling: topological order, options, rules."""

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        cat = [d for d in recipe.dimensions if d.kind == "categorical"]
        self.random_words = [d for d in recipe.dimensions if d.kind == "random_words"]
        self.dims = _topological(cat)
        self.children: dict[str, list[Dimension]] = {d.name: [] for d in self.dims}
        for d in self.dims:
            if d.depends_on:
                self.children[d.depends_on].append(d)
        self.roots = [d for d in self.dims if not d.depends_on]
        self.rules = _compile_rules(recipe)
        self._subtree_cache: dict[tuple[str, str | None], int] = {}
        self._cum_cache: dict[tuple[str, str | None], tuple[list[str], list[float], float]] = {}

    # -- counting ----------------------------------------------------------------------
    def subtree_count(self, dim: Dimension, parent_value: str | None) -> int:
        """Number of assignments of ``dim`` and its descendants given its parent's value."""
        key = (dim.name, parent_value)
        if key not in self._subtree_cache:
            total = 0
            for v in dim.options(parent_value):
                total += _prod(self.subtree_count(c, v.key) for c in self.children[dim.name])
            self._subtree_cache[key] = total
        return self._subtree_cache[key]

    def cell_count(self) -> int:
        return _prod(self.subtree_count(r, None) for r in self.roots) if self.dims else 1

    def excluded(self, cond: Condition) -> bool:
        return any(rule(cond) for rule in self.rules)

    # -- enumeration -------------------------------------------------------------------
    def iter_cells(self) -> Iterator[Condition]:
        """Every cell of the grid in order, exclusions removed."""

        def rec(i: int, cond: Condition) -> Iterator[Condition]:
            if i == len(self.dims):
                if not self.excluded(cond):
                    yield dict(cond)
                return
            d = self.dims[i]
            for v in d.options(cond.get(d.depends_on) if d.depends_on else None):
                cond[d.name] = v.key
                yield from rec(i + 1, cond)
            cond.pop(d.name, None)

        yield from rec(0, {})

    # -- random draws ------------------------------------------------------------------
    def _cumulative(self, d: Dimension, parent_value: str | None) -> tuple[list[str], list[float], float]:
        key = (d.name, parent_value)
        if key not in self._cum_cache:
            opts = d.options(parent_value)
            cum = list(itertools.accumulate(v.weight for v in opts))
            self._cum_cache[key] = ([v.key for v in opts], cum, cum[-1] if cum else 0.0)
        return self._cum_cache[key]

    def draw_weighted(self, rng: random.Random) -> Condition:
        # Same draw as rng.choices(cum_weights=...), with the cumulative weights computed once.
        cond: Condition = {}
        rand = rng.random
        for d in self.dims:
            texts, cum, total = self._cumulative(d, cond.get(d.depends_on) if d.depends_on else None)
            cond[d.name] = texts[bisect.bisect(cum, rand() * total, 0, len(cum) - 1)]
        return cond

    def draw_uniform_cell(self, rng: random.Random) -> Condition:
        """A cell drawn uniformly from the grid (before exclusions), without enumerating it."""
        cond: Condition = {}

        def assign(d: Dimension, parent_value: str | None) -> None:
            opts = d.options(parent_value)
            weights = [_prod(self.subtree_count(c, v.key) for c in self.children[d.name]) for v in opts]
            v = rng.choices(opts, weights=weights)[0]
            cond[d.name] = v.key
            for c in self.children[d.name]:
                assign(c, v.key)

        for r in self.roots:
            assign(r, None)
        return cond

    def draw_words(self, rng: random.Random, cond: Condition) -> Condition:
        for d in self.random_words:
            words = list(dict.fromkeys(w.strip() for w in d.words if w.strip()))
            cond[d.name] = ", ".join(rng.sample(words, d.k))
        return cond


def plan_size(recipe: Recipe) -> PlanSize:
    """How many cells and items a recipe's sampling gives, computed without materialising."""
    design = Design(recipe)
    s = recipe.sampling
    cells = design.cell_count()
    materialisable = cells <= MAX_MATERIALISED_CELLS
    excluded = None
    if design.rules and materialisable:
        excluded = cells - sum(1 for _ in design.iter_cells())
    live = cells - (excluded or 0)
    note = ""
    if s.strategy == "grid":
        items = live * s.per_cell if materialisable else None
        if not materialisable:
            note = (f"The full grid has {cells:,} cells: too many to materialise. "
                    "Use random or balanced sampling to draw items from it.")
    elif s.strategy == "pairwise":
        items = None
        if not materialisable:
            note = f"The grid has {cells:,} cells; pairwise coverage needs far fewer items (computed on preview)."
    else:
        items = s.n_items
        if s.strategy == "balanced" and materialisable and live:
            per, extra = divmod(s.n_items, live)
            note = f"Each of the {live:,} cells gets {per} or {per + 1} items." if extra else f"Each of the {live:,} cells gets {per} items."
        elif s.strategy == "balanced":
            note = f"{cells:,} cells: {s.n_items:,} distinct cells are drawn uniformly, one item each."
    if items is not None and items > MAX_PLAN_ITEMS:
        note = f"{items:,} items is more than the {MAX_PLAN_ITEMS:,} a plan may hold."
    return PlanSize(cells, items, excluded, materialisable, note)


def sample_conditions(recipe: Recipe, limit: int | None = None) -> list[Condition]:
    """The conditions of a recipe's plan, in plan order (the first ``limit`` of them if given).

    Random-word dimensions are drawn per item after the cell is chosen. The same recipe
    (including its seed) always gives the same list.
    """
    design = Design(recipe)
    s = recipe.sampling
    rng = random.Random(s.seed)
    size = plan_size(recipe)
    if size.items is not None and size.items > MAX_PLAN_ITEMS:
        raise RecipeError([("sampling", size.note)])
    want = limit if limit is not None else math.inf
    conds: list[Condition]
    if s.strategy == "grid":
        if not size.materialisable:
            raise RecipeError([("sampling", size.note)])
        conds = []
        for cell in design.iter_cells():
            for _ in range(s.per_cell):
                conds.append(dict(cell))
            if len(conds) >= want:
                break
    elif s.strategy == "random":
        conds = _draw_until(design, rng, min(s.n_items, want), design.draw_weighted)
    elif s.strategy == "balanced":
        conds = _balanced(design, rng, s.n_items, size.materialisable)
    else:
        if not size.materialisable and design.cell_count() > 10**12:
            raise RecipeError([("sampling", "pairwise coverage over more than 10^12 cells is not supported; use random sampling")])
        cells = pairwise_cover(design, rng)
        conds = [dict(c) for c in cells for _ in range(s.per_cell)]
    if limit is not None:
        conds = conds[:limit]
    if not conds and design.dims:
        raise RecipeError([("sampling", "every cell is excluded by the exclusion rules")])
    if not design.dims and not conds:
        conds = [{} for _ in range(min(s.n_items if s.strategy in ("random", "balanced") else s.per_cell, want))]
    # Words use their own stream so a preview's first items equal the full plan's.
    words_rng = random.Random(f"words:{s.seed}")
    return [design.draw_words(words_rng, c) for c in conds]


def _draw_until(design: Design, rng: random.Random, n: float, draw: Callable[[random.Random], Condition]) -> list[Condition]:
    out: list[Condition] = []
    misses = 0
    while len(out) < n:
        c = draw(rng)
        if design.rules and design.excluded(c):
            misses += 1
            if misses > 1000 and misses > 20 * (len(out) + 1):
                raise RecipeError([("sampling", "the exclusion rules forbid almost every condition; loosen them")])
            continue
        out.append(c)
    return out


def _balanced(design: Design, rng: random.Random, n: int, materialisable: bool) -> list[Condition]:
    if materialisable:
        cells = list(design.iter_cells())
        if not cells:
            return []
        per, extra = divmod(n, len(cells))
        bonus = set(rng.sample(range(len(cells)), extra))
        out = [dict(c) for i, c in enumerate(cells) for _ in range(per + (i in bonus))]
        rng.shuffle(out)
        return out
    # Too many cells to list: draw distinct cells uniformly, each once.
    seen: set[tuple] = set()
    out = []
    for c in _draw_until(design, rng, n * 4, design.draw_uniform_cell):
        key = tuple(sorted(c.items()))
        if key not in seen:
            seen.add(key)
            out.append(c)
            if len(out) == n:
                break
    return out


def pairwise_cover(design: Design, rng: random.Random, max_candidates: int = 24) -> list[Condition]:
    """A small set of cells covering every compatible pair of values (greedy, AETG-style)."""
    dims = design.dims
    if len(dims) < 2:
        return list(design.iter_cells()) if design.cell_count() <= MAX_MATERIALISED_CELLS else []
    pos = {d.name: i for i, d in enumerate(dims)}
    # An option is (text, parent_text or None); pairs are between option keys of two dims.
    opts = [[(v.key, p) for p, vals in _groups(d) for v in vals] for d in dims]
    uncovered: set[tuple[int, tuple, int, tuple]] = set()
    for i in range(len(dims)):
        for j in range(i + 1, len(dims)):
            for a in opts[i]:
                for b in opts[j]:
                    if _compatible(dims, pos, i, a, j, b):
                        uncovered.add((i, a, j, b))
    total_opts = sum(len(o) for o in opts)
    n_cand = max(2, min(max_candidates, 40_000 // max(1, total_opts * len(dims))))
    rows: list[Condition] = []
    failures: dict[tuple, int] = {}
    while uncovered:
        seed_pair = min(uncovered, key=lambda p: (failures.get(p, 0), rng.random())) if len(uncovered) < 2000 else rng.choice(tuple(uncovered))
        best, best_gain = None, 0
        for _ in range(n_cand):
            row = _greedy_row(design, dims, pos, opts, uncovered, seed_pair, rng)
            if row is None:
                continue
            gain = _gain(row, dims, uncovered)
            if gain > best_gain:
                best, best_gain = row, gain
        if best is None:
            failures[seed_pair] = failures.get(seed_pair, 0) + 1
            if failures[seed_pair] >= 3:
                uncovered.discard(seed_pair)  # infeasible under the exclusion rules
            continue
        for key in _row_pairs(best, dims):
            uncovered.discard(key)
        rows.append({d.name: best[i][0] for i, d in enumerate(dims)})
    return rows


def _groups(d: Dimension) -> list[tuple[str | None, list]]:
    return list(d.values_by_parent.items()) if d.depends_on else [(None, d.values)]


def _compatible(dims: list[Dimension], pos: dict[str, int], i: int, a: tuple, j: int, b: tuple) -> bool:
    di, dj = dims[i], dims[j]
    if dj.depends_on == di.name:
        return b[1] == a[0]
    if di.depends_on and di.depends_on == dj.depends_on:
        return a[1] == b[1]
    return True


def _greedy_row(design, dims, pos, opts, uncovered, seed_pair, rng) -> list[tuple] | None:
    i, a, j, b = seed_pair
    fixed: dict[int, tuple] = {i: a, j: b}
    required_text: dict[int, str] = {}
    for k, o in ((i, a), (j, b)):
        if o[1] is not None:
            p = pos[dims[k].depends_on]
            if required_text.get(p, o[1]) != o[1]:
                return None
            required_text[p] = o[1]
    row: list[tuple] = []
    for k, d in enumerate(dims):
        parent_text = row[pos[d.depends_on]][0] if d.depends_on else None
        if k in fixed:
            o = fixed[k]
            if o[1] != parent_text or (k in required_text and o[0] != required_text[k]):
                return None
            row.append(o)
            continue
        cand = [o for o in opts[k] if o[1] == parent_text]
        if k in required_text:
            cand = [o for o in cand if o[0] == required_text[k]]
        for c in design.children[d.name]:
            ck = pos[c.name]
            need = fixed.get(ck, (None, None))[1] or required_text.get(ck)
            if need is not None and ck in fixed:
                cand = [o for o in cand if o[0] == fixed[ck][1]]
        if not cand:
            return None
        rng.shuffle(cand)
        best = max(cand, key=lambda o: sum((m, row[m], k, o) in uncovered for m in range(k)))
        row.append(best)
    cond = {d.name: row[k][0] for k, d in enumerate(dims)}
    if design.rules and design.excluded(cond):
        return None
    return row


def _row_pairs(row: list[tuple], dims: list[Dimension]) -> Iterator[tuple]:
    for i in range(len(dims)):
        for j in range(i + 1, len(dims)):
            yield (i, row[i], j, row[j])


def _gain(row: list[tuple], dims: list[Dimension], uncovered: set) -> int:
    return sum(1 for key in _row_pairs(row, dims) if key in uncovered)


def _topological(dims: list[Dimension]) -> list[Dimension]:
    by_name = {d.name: d for d in dims}
    out: list[Dimension] = []
    placed: set[str] = set()

    def place(d: Dimension, stack: tuple[str, ...] = ()) -> None:
        if d.name in placed:
            return
        if d.name in stack:
            raise RecipeError([("dimensions", "dependency cycle: " + " → ".join((*stack, d.name)))])
        if d.depends_on and d.depends_on in by_name:
            place(by_name[d.depends_on], (*stack, d.name))
        placed.add(d.name)
        out.append(d)

    for d in dims:
        place(d)
    return out


def rule_problems(recipe: Recipe) -> list[tuple[str, str]]:
    """Exclusion rules that do not compile or name something that is not a dimension."""
    names = {d.name for d in recipe.dimensions}
    problems = []
    for n, expr in enumerate(recipe.sampling.exclusions, 1):
        if not expr.strip():
            continue
        try:
            compile_expression(expr)
            unknown = sorted(template_variables("{{ " + expr + " }}", "exclusion rule") - names)
        except TemplateProblem as exc:
            problems.append((f"exclusion rule {n}", exc.message))
            continue
        if unknown:
            problems.append((f"exclusion rule {n}", f"{', '.join(unknown)} is not a dimension (have: {', '.join(sorted(names)) or 'none'})"))
    return problems


def _compile_rules(recipe: Recipe) -> list[Callable[[Condition], bool]]:
    problems = rule_problems(recipe)
    if problems:
        raise RecipeError(problems)
    rules = []
    for expr in recipe.sampling.exclusions:
        if expr.strip():
            fn = compile_expression(expr)
            rules.append(lambda cond, fn=fn: bool(fn(**cond)))
    return rules


def _prod(xs) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def value_counts(recipe: Recipe, max_items: int = 50_000) -> dict[str, dict[str, int]] | None:
    """How many plan items each value of each dimension got (random words: not counted), computed
    on the whole plan; None for a plan above ``max_items`` (not drawn just to count)."""
    if recipe.sampling.strategy in ("random", "balanced") and recipe.sampling.n_items > max_items:
        return None
    size = plan_size(recipe)
    if size.items is not None and size.items > max_items:
        return None
    conds = sample_conditions(recipe)
    if len(conds) > max_items:
        return None
    out: dict[str, dict[str, int]] = {}
    for d in recipe.dimensions:
        if d.kind == "random_words":
            continue
        counts = {v.key: 0 for v in d.all_values()}
        for c in conds:
            if d.name in c:
                counts[c[d.name]] = counts.get(c[d.name], 0) + 1
        out[d.name] = counts
    return out
