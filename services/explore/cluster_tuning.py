"""The default clustering, tuned to the data and able to say why.

HDBSCAN on the 2-D map found three clusters on the demo's 400 texts for every minimum size from
5 to 15 (three islands, one holding most points), and leaf selection there left 21–41% noise. So
the default also clusters in a 10-D UMAP of the embeddings (same neighbours and seed as the map,
``min_dist`` 0, as BERTopic does): it tries a small grid there (minimum cluster size ×
``min_samples`` × selection method) and a few sizes on the 2-D map itself (the old rule's among
them), and keeps the candidate with the best silhouette in the embedding space (cosine, on the
clustered points) among those that leave at most ``NOISE_CAP`` of the points as noise; when none
does, the one with the least noise. ``bench/clustering.py`` measures it against
the old rule.

Cost stays bounded at any size: above ``TUNE_SAMPLE`` points the 10-D layout and the grid run on a
fixed random sample of that many points (below ``EXACT_KNN_MAX``, so UMAP takes the warmed
exact-neighbour path) and every other point takes the label most of its ``VOTE_K`` nearest
sampled neighbours on the 2-D map carry, noise included (at 10^5 points 33 s on a contended run
here, where the old rule's HDBSCAN on the same 2-D layout took 15 s; bench/clustering.py --large). Fewer than ``AUTO_MIN`` points: the old rule
on the 2-D layout. A choice is cached with the clustering (its candidates and reasons in the
``clusterings.params`` JSON), so a rerun shows the same words without recomputing.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from services.core.hashing import digest
from services.core.store import Store
from services.explore import projection
from services.explore.projection import ClusterParams, LayoutParams, default_min_cluster_size

TUNING_VERSION = 1  # part of the cache key: a change to the grid or the rule recomputes
SPACE_DIMS = 10
NOISE_CAP = 0.25
TUNE_SAMPLE = 2_000
AUTO_MIN = 30
VOTE_K = 5
SILHOUETTE_MAX = 2_000  # silhouette on at most this many clustered points (a fixed sample)
SIZES = 5  # minimum cluster sizes tried, spaced geometrically from 5 to n/15


@dataclass(frozen=True)
class Candidate:
    min_cluster_size: int
    min_samples: int | None
    selection: str
    n_clusters: int
    noise: float
    silhouette: float | None
    space: str = ""


@dataclass(frozen=True)
class ClusterChoice:
    """What produced a map's clusters, and why, in words a caption can show."""

    params: ClusterParams
    rule: str  # "tuned", "user" or "size rule"
    space: str  # "10-D UMAP" or "2-D layout"
    n_clusters: int
    noise: float
    reason: str = ""
    silhouette: float | None = None
    candidates: tuple[Candidate, ...] = ()
    sample: int | None = None  # tuned on this many points; the others took their neighbours' labels

    def caption(self) -> str:
        p = self.params
        what = (f"HDBSCAN ({'leaf' if p.selection == 'leaf' else 'excess of mass'}) on the {self.space}, "
                f"min cluster size {p.min_cluster_size}" + (f", min samples {p.min_samples}" if p.min_samples else ""))
        found = f"{self.n_clusters} cluster(s), {self.noise:.0%} noise"
        if self.rule == "user":
            return f"Clusters: {what} (set by you): {found}."
        if self.rule == "size rule":
            return f"Clusters: {what} (chosen from the number of points): {found}. {self.reason}".strip()
        sil = f", silhouette {self.silhouette:.2f}" if self.silhouette is not None else ""
        tried = f"{len(self.candidates)} settings tried"
        sampled = (f" The grid ran on a sample of {self.sample:,} points; every other point took the label of most "
                   f"of its {VOTE_K} nearest sampled neighbours on the map.") if self.sample else ""
        return f"Clusters: {what}: {found}{sil}, chosen automatically ({tried}): {self.reason}.{sampled}"

    def candidate_table(self) -> pd.DataFrame:
        """Every setting tried, the chosen one marked, best silhouette first."""
        rows = [{"chosen": (c.min_cluster_size, c.min_samples, c.selection, c.space)
                 == (self.params.min_cluster_size, self.params.min_samples, self.params.selection, self.space),
                 "space": c.space, "min cluster size": c.min_cluster_size, "min samples": c.min_samples or c.min_cluster_size,
                 "selection": c.selection, "clusters": c.n_clusters, "noise": round(c.noise, 3),
                 "silhouette": None if c.silhouette is None else round(c.silhouette, 3)} for c in self.candidates]
        frame = pd.DataFrame(rows)
        return frame.sort_values("silhouette", ascending=False, na_position="last").reset_index(drop=True) if rows else frame

    def to_json(self) -> dict:
        return {"choice": asdict(self)}

    @staticmethod
    def from_json(body: dict) -> ClusterChoice | None:
        c = body.get("choice") if isinstance(body, dict) else None
        if not c:
            return None
        return ClusterChoice(params=ClusterParams(**c["params"]), rule=c["rule"], space=c["space"], n_clusters=int(c["n_clusters"]),
                             noise=float(c["noise"]), reason=c.get("reason", ""), silhouette=c.get("silhouette"),
                             candidates=tuple(Candidate(**k) for k in c.get("candidates", [])), sample=c.get("sample"))


def _stats(labels: np.ndarray) -> tuple[int, float]:
    return len(set(labels.tolist()) - {-1}), float(np.mean(labels == -1)) if len(labels) else 0.0


def layout_choice(params: ClusterParams, labels: np.ndarray, *, user: bool = True, reason: str = "") -> ClusterChoice:
    """The words for a clustering of the 2-D layout: the user's parameters, or the size rule."""
    k, noise = _stats(labels)
    return ClusterChoice(params, "user" if user else "size rule", "2-D layout", k, noise, reason)


def size_rule(xy: np.ndarray, *, reason: str = "") -> tuple[np.ndarray, ClusterChoice]:
    """The old rule on the 2-D layout: min cluster size from the number of points."""
    params = ClusterParams(min_cluster_size=default_min_cluster_size(len(xy)))
    labels = projection.hdbscan_labels(xy, params)
    return labels, layout_choice(params, labels, user=False, reason=reason)


def candidate_grid(n: int) -> list[ClusterParams]:
    """Minimum sizes from 5 to n/15 (geometric), each with min_samples = size and = 3, by both
    selection methods: 20 settings at most."""
    sizes = sorted({int(round(s)) for s in np.geomspace(5, max(8, n // 15), SIZES)})
    return [ClusterParams(min_cluster_size=s, min_samples=ms, selection=sel)
            for s in sizes for ms in (None, 3) for sel in ("eom", "leaf")]


def cluster_space(vectors: np.ndarray, layout: LayoutParams = LayoutParams()) -> np.ndarray:
    """The layout clusters are found in: UMAP to SPACE_DIMS dimensions, the map's neighbours and seed."""
    return projection.umap_layout(vectors, replace(layout, n_components=SPACE_DIMS, min_dist=0.0))


def silhouette(vectors: np.ndarray, labels: np.ndarray, seed: int = 0) -> float | None:
    """Cosine silhouette of the clustered points in the embedding space (None: fewer than 2 clusters)."""
    from sklearn.metrics import silhouette_score

    keep = labels >= 0
    if len(set(labels[keep].tolist())) < 2:
        return None
    v, lab = vectors[keep], labels[keep]
    if len(set(lab.tolist())) >= len(lab):
        return None
    size = SILHOUETTE_MAX if len(lab) > SILHOUETTE_MAX else None
    try:
        return float(silhouette_score(v, lab, metric="cosine", sample_size=size, random_state=seed))
    except ValueError:  # a sample that lost every cluster but one
        return None


def layout_grid(n: int) -> list[ClusterParams]:
    """Candidates on the 2-D map itself: the old rule's size and the grid's sizes, excess of mass."""
    sizes = {c.min_cluster_size for c in candidate_grid(n)} | {default_min_cluster_size(n)}
    return [ClusterParams(min_cluster_size=s) for s in sorted(sizes)]


def tune(vectors: np.ndarray, spaces: dict[str, tuple[np.ndarray, list[ClusterParams]]], *,
         noise_cap: float = NOISE_CAP) -> tuple[np.ndarray, Candidate, list[Candidate], str]:
    """Every setting of each space's grid (space name -> (points, grid)); returns (labels, the
    chosen candidate, every candidate, the reason in words)."""
    runs = []
    for name, (points, grid) in spaces.items():
        for params in grid:
            labels = projection.hdbscan_labels(points, params)
            k, noise = _stats(labels)
            runs.append((Candidate(params.min_cluster_size, params.min_samples, params.selection, k, noise,
                                   silhouette(vectors, labels), name), labels))
    ok = [r for r in runs if r[0].noise <= noise_cap and r[0].silhouette is not None]
    if ok:
        best = max(ok, key=lambda r: (r[0].silhouette, -r[0].noise))
        reason = f"the best silhouette among the {len(ok)} that left at most {noise_cap:.0%} noise"
    else:
        with_clusters = [r for r in runs if r[0].n_clusters >= 1] or runs
        best = min(with_clusters, key=lambda r: (r[0].noise, -r[0].n_clusters))
        reason = f"no setting left at most {noise_cap:.0%} noise with two or more clusters, so the one with the least noise"
    return best[1], best[0], [r[0] for r in runs], reason


def nearest_labels(points: np.ndarray, sample: np.ndarray, sample_labels: np.ndarray, k: int = VOTE_K) -> np.ndarray:
    """Each row's label by a vote of its k nearest sampled rows in ``points`` (the 2-D map: a
    KD-tree answers 10^5 queries in about a second, where cosine on the embeddings cost tens);
    noise votes too, and a tie goes to the nearer label."""
    from sklearn.neighbors import NearestNeighbors

    pts = np.asarray(points, dtype=np.float64)
    k = min(k, len(sample))
    _, top = NearestNeighbors(n_neighbors=k).fit(pts[sample]).kneighbors(pts)  # nearest first
    votes = np.asarray(sample_labels)[top]
    counts = (votes[:, :, None] == votes[:, None, :]).sum(axis=2)  # how many votes each vote's label has
    out = votes[np.arange(len(votes)), np.argmax(counts, axis=1)].astype(np.int32)  # first max: the nearer
    out[sample] = sample_labels
    return out


def tuned_labels(vectors: np.ndarray, xy: np.ndarray, layout: LayoutParams = LayoutParams(), *,
                 sample_max: int = TUNE_SAMPLE) -> tuple[np.ndarray, ClusterChoice]:
    """The default clustering (see the module doc) and the choice that made it."""
    n = len(vectors)
    if n < AUTO_MIN:
        return size_rule(xy, reason=f"Fewer than {AUTO_MIN} points: no grid to tune on.")
    sample = None
    if n > sample_max:
        sample = np.sort(np.random.default_rng(layout.seed).choice(n, sample_max, replace=False))
    v = vectors if sample is None else vectors[sample]
    flat = np.asarray(xy if sample is None else xy[sample])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        space = cluster_space(v, layout)
    spaces = {f"{SPACE_DIMS}-D UMAP": (space, candidate_grid(len(v))), "2-D layout": (flat, layout_grid(len(v)))}
    labels, best, candidates, reason = tune(v, spaces)
    if sample is not None:
        labels = nearest_labels(xy, sample, labels)
    k, noise = _stats(labels)
    params = ClusterParams(min_cluster_size=best.min_cluster_size, min_samples=best.min_samples, selection=best.selection)
    return labels, ClusterChoice(params, "tuned", best.space, k, noise, reason, best.silhouette, tuple(candidates),
                                 None if sample is None else len(sample))


def auto_cluster(store: Store, projection_id: str, vectors: np.ndarray, xy: np.ndarray, ids: list[str],
                 layout: LayoutParams = LayoutParams()) -> tuple[str, np.ndarray, ClusterChoice]:
    """The tuned default clustering of a projection (cached with its choice): (clustering_id, labels, choice)."""
    cid = digest("auto-clustering", projection_id, asdict(layout), TUNING_VERSION, TUNE_SAMPLE)
    cached = projection.load_clustering(store, cid, ids)
    if cached is not None:
        choice = ClusterChoice.from_json(cached[1])
        if choice is not None:
            return cid, cached[0], choice
    t0 = time.perf_counter()
    labels, choice = tuned_labels(vectors, xy, layout)
    projection.save_clustering(store, cid, projection_id, ids, labels, choice.to_json(), time.perf_counter() - t0)
    return cid, labels, choice
