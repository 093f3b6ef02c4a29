"""Finding what is missing: condition heatmaps, probes, near-duplicates, coverage, fill the gap.

All vector work runs in numpy on L2-normalised arrays fetched once.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from services.core.errors import StudioError
from services.core.store import Store
from services.explore.diversity import mean_pairwise_cosine
from services.explore.items import NONE
from services.explore.neighbours import similar_pairs
from services.recipes.recipe import Demo, Recipe, Value
from services.recipes.version_store import RecipeVersion, save_version

# -- heatmap -------------------------------------------------------------------------------


MIN_COLLAPSE_CELL = 5  # fewer samples than this say nothing about collapse (two texts may match by chance)


def condition_heatmap(
    frame: pd.DataFrame,
    vectors: np.ndarray,
    dim_a: str,
    dim_b: str,
    *,
    values_a: Sequence[str] | None = None,
    values_b: Sequence[str] | None = None,
    possible: set[tuple[str, str]] | None = None,
    margin: float = 0.15,
    min_collapse: int = MIN_COLLAPSE_CELL,
) -> pd.DataFrame:
    """Per (dim_a value, dim_b value) cell: count, within-cell mean pairwise cosine, flags.

    Cells are the product of ``values_a``/``values_b`` (e.g. a recipe's values, so values no
    sample received show up as empty rows/columns) and the observed values; texts without one
    of the dimensions ("(none)") are left out. ``possible`` (the pairs the recipe can produce)
    marks the other cells ``impossible``: never ``empty`` or ``thin``. ``collapsed`` marks cells
    of at least ``min_collapse`` texts that are much more alike than the typical cell
    (similarity >= median of cells + ``margin``, or >= 0.95); ``empty`` marks possible cells
    with no sample, ``thin`` those with under half the median count.
    """
    a = frame[dim_a].fillna(NONE).astype(str).to_numpy()
    b = frame[dim_b].fillna(NONE).astype(str).to_numpy()
    has_both = (a != NONE) & (b != NONE)
    va = list(dict.fromkeys([*(values_a or []), *sorted(set(a[has_both].tolist()))]))
    vb = list(dict.fromkeys([*(values_b or []), *sorted(set(b[has_both].tolist()))]))
    rows = []
    for x in va:
        for y in vb:
            mask = (a == x) & (b == y)
            count = int(mask.sum())
            sim = mean_pairwise_cosine(vectors[mask]) if count >= 2 else None
            rows.append({dim_a: x, dim_b: y, "count": count, "mean_similarity": sim,
                         "impossible": possible is not None and (x, y) not in possible and count == 0})
    cells = pd.DataFrame(rows, columns=[dim_a, dim_b, "count", "mean_similarity", "impossible"])
    cells["impossible"] = cells["impossible"].astype(bool)
    big = cells["count"] >= min_collapse
    sims = cells.loc[big, "mean_similarity"].dropna()
    median_sim = float(sims.median()) if len(sims) else np.nan
    nonzero = cells.loc[cells["count"] > 0, "count"]
    median_count = float(nonzero.median()) if len(nonzero) else 0.0
    cells["empty"] = (cells["count"] == 0) & ~cells["impossible"]
    cells["thin"] = (cells["count"] > 0) & (cells["count"] < 0.5 * median_count)
    cells["collapsed"] = big & cells["mean_similarity"].notna() & (
        (cells["mean_similarity"] >= median_sim + margin) | (cells["mean_similarity"] >= 0.95)
    )
    cells.attrs["left_out"] = int((~has_both).sum())  # texts without one of the two dimensions
    return cells


# -- linear probes -------------------------------------------------------------------------


def probe_separability(frame: pd.DataFrame, vectors: np.ndarray, dimensions: Sequence[str], *, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Cross-validated accuracy of a logistic-regression probe predicting each dimension's value
    from the embedding, next to chance (the majority-class share). A dimension the generator
    ignored probes near chance; one it obeyed probes well above."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    rows = []
    for dim in dimensions:
        y_all = frame[dim].fillna(NONE).astype(str).to_numpy()
        has = y_all != NONE  # texts without the dimension (another run's) would set a false chance level
        y, vecs = y_all[has], vectors[has]
        counts = pd.Series(y).value_counts()
        row = {"dimension": dim, "values": int(len(counts)), "accuracy": None, "chance": None, "lift": None, "note": ""}
        without = int((~has).sum())
        if len(counts) < 2:
            row["note"] = "only one value: nothing to predict"
        else:
            keep = np.isin(y, counts[counts >= 2].index.to_numpy())
            kept_counts = counts[counts >= 2]
            if len(kept_counts) < 2:
                row["note"] = "too few samples per value (need 2 or more for at least two values)"
            else:
                k = int(min(folds, kept_counts.min()))
                chance = float(kept_counts.max() / kept_counts.sum())
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scores = cross_val_score(
                        LogisticRegression(max_iter=1000),
                        vecs[keep],
                        y[keep],
                        cv=StratifiedKFold(n_splits=k, shuffle=True, random_state=seed),
                    )
                acc = float(scores.mean())
                row.update(accuracy=acc, chance=chance, lift=acc - chance)
                dropped = int((~keep).sum())
                row["note"] = f"{k}-fold" + (f"; {dropped} sample(s) with a one-off value left out" if dropped else "")
        if without:
            row["note"] += f"{'; ' if row['note'] else ''}{without} text(s) without this dimension left out"
        rows.append(row)
    return pd.DataFrame(rows, columns=["dimension", "values", "accuracy", "chance", "lift", "note"])


# -- near duplicates -----------------------------------------------------------------------


def near_duplicate_pairs(vectors: np.ndarray, threshold: float = 0.95) -> np.ndarray:
    """Index pairs (i < j) with cosine similarity >= threshold, as an (m x 2) array (exact for
    small sets, an approximate-neighbour index at scale: services.explore.neighbours)."""
    i, j, _ = similar_pairs(vectors, threshold)
    return np.stack([i, j], axis=1)


def near_duplicate_groups(
    frame: pd.DataFrame, vectors: np.ndarray, dimensions: Sequence[str], threshold: float = 0.95
) -> pd.DataFrame:
    """Groups of near-duplicate texts (connected by pairs above ``threshold``), largest first.

    Columns: group, size, conditions (distinct condition tuples in the group), spans_conditions
    (True when one group holds texts generated for different conditions: the condition did not
    change the output), example (a text), ids.
    """
    pairs = near_duplicate_pairs(vectors, threshold)
    parent = list(range(len(frame)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in pairs.tolist():
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    members: dict[int, list[int]] = {}
    for i in {int(x) for x in pairs.ravel().tolist()}:
        members.setdefault(find(i), []).append(i)
    dims = list(dimensions)
    rows = []
    for idx in members.values():
        idx.sort()
        sub = frame.iloc[idx]
        conds = {tuple(r) for r in sub[dims].astype(str).itertuples(index=False)} if dims else {()}
        runs = sub["run_id"].dropna().nunique() if "run_id" in sub else 0
        rows.append({
            "size": len(idx),
            "conditions": len(conds),
            "spans_conditions": len(conds) > 1,
            "runs": int(runs),
            "example": str(sub["text"].iloc[0])[:300],
            "ids": sub["id"].tolist(),
        })
    out = pd.DataFrame(rows, columns=["size", "conditions", "spans_conditions", "runs", "example", "ids"])
    out = out.sort_values(["spans_conditions", "size"], ascending=False).reset_index(drop=True)
    out.insert(0, "group", range(1, len(out) + 1))
    return out


# -- coverage ------------------------------------------------------------------------------


@dataclass
class Coverage:
    """Reference points with no synthetic neighbour within ``radius`` (cosine distance)."""

    radius: float
    n_reference: int
    n_uncovered: int
    uncovered: np.ndarray  # bool per reference point
    nearest_distance: np.ndarray  # cosine distance to the nearest synthetic point

    @property
    def uncovered_share(self) -> float | None:
        return self.n_uncovered / self.n_reference if self.n_reference else None


def coverage(synthetic: np.ndarray, reference: np.ndarray, radius: float = 0.3, *, chunk: int = 2048) -> Coverage:
    """For each reference vector, the cosine distance to its nearest synthetic vector."""
    ref = np.asarray(reference, dtype=np.float32)
    syn = np.asarray(synthetic, dtype=np.float32)
    nearest = np.full(len(ref), 2.0, dtype=np.float32)
    if len(syn):
        for start in range(0, len(ref), chunk):
            nearest[start : start + chunk] = 1.0 - (ref[start : start + chunk] @ syn.T).max(axis=1)
    uncovered = nearest > radius
    return Coverage(radius, len(ref), int(uncovered.sum()), uncovered, nearest)


# -- fill the gap --------------------------------------------------------------------------


class GapError(StudioError, ValueError):
    """A gap-filling request that cannot make a valid recipe (message says why)."""

    title = "The gap cannot be filled"


def fill_gap_recipe(
    recipe: Recipe,
    *,
    restrict: dict[str, list[str]] | None = None,
    add_values: dict[str, list[str]] | None = None,
    demos: Sequence[tuple[str, dict[str, str]]] = (),
    k_demos: int = 3,
) -> Recipe:
    """A recipe that targets a gap: dimensions restricted to some values (e.g. an empty cell),
    new values added, and/or the given texts (with their attributes) added as demonstrations."""
    data = recipe.model_dump(mode="json")
    dims = {d["name"]: d for d in data["dimensions"]}
    for name, wanted in (restrict or {}).items():
        if name not in dims:
            raise GapError(f"the recipe has no dimension '{name}'")
        d = dims[name]
        if d.get("depends_on"):
            vb = {p: [v for v in vals if _text(v) in wanted] for p, vals in d.get("values_by_parent", {}).items()}
            d["values_by_parent"] = {p: vals for p, vals in vb.items() if vals}
        else:
            kept = [v for v in d.get("values", []) if _text(v) in wanted]
            kept += [w for w in wanted if w not in {_text(v) for v in kept}]  # a value only seen in data
            d["values"] = kept
        # Children of a restricted dimension keep only the parents' remaining values.
        if d.get("depends_on"):
            parents = {_text(v) for vals in d["values_by_parent"].values() for v in vals}
        else:
            parents = {_text(v) for v in d["values"]}
        for child in dims.values():
            if child.get("depends_on") == name:
                child["values_by_parent"] = {p: v for p, v in child.get("values_by_parent", {}).items() if p in parents}
    for name, new in (add_values or {}).items():
        if name not in dims:
            raise GapError(f"the recipe has no dimension '{name}'")
        d = dims[name]
        if d.get("depends_on"):
            raise GapError(f"'{name}' depends on '{d['depends_on']}': add its values in the Prompt Builder")
        have = {_text(v).casefold() for v in d.get("values", [])}
        d["values"] = list(d.get("values", [])) + [v for v in new if v.strip() and v.strip().casefold() not in have]
    if demos:
        ex = data.setdefault("demos", {}).setdefault("examples", [])
        have_ids = {e["id"] for e in ex}
        for text, attrs in demos:
            demo_id = "gap-" + hashlib.sha256(text.encode()).hexdigest()[:10]
            if demo_id not in have_ids:
                ex.append(Demo(id=demo_id, text=text, attributes={str(k): str(v) for k, v in attrs.items()}).model_dump(mode="json"))
                have_ids.add(demo_id)
        dm = data["demos"]
        if not dm.get("k"):
            dm["k"] = min(k_demos, len(ex))
            dm["strategy"] = "random"
    return Recipe.parse(data)


def _text(v) -> str:
    return Value.model_validate(v).key  # the label: what conditions store


def save_gap_version(store: Store, parent_hash: str, recipe: Recipe, note: str) -> RecipeVersion:
    """Save the gap-filling recipe as a new version of its parent."""
    return save_version(store, recipe, parent_hash=parent_hash, note=note)
