"""What a cluster is about: c-TF-IDF keywords, representative samples, dominant condition values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

TOKEN_PATTERN = r"(?u)\b\w\w+\b"


def ctfidf_keywords(texts: Sequence[str], labels: Sequence[int] | np.ndarray, top: int = 8) -> dict[int, list[str]]:
    """Top words per cluster by class-based TF-IDF (BERTopic's c-TF-IDF).

    All texts of a cluster form one document; a word's weight is its frequency in the cluster
    (normalised by the cluster's size) times log(1 + mean words per cluster / its total frequency).
    Noise (-1) gets no keywords. English stop words are dropped; other languages keep theirs.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    lab = np.asarray(labels)
    clusters = sorted(c for c in set(lab.tolist()) if c >= 0)
    if not clusters:
        return {}
    docs = [" ".join(t for t, m in zip(texts, lab == c, strict=True) if m) for c in clusters]
    try:
        vec = CountVectorizer(token_pattern=TOKEN_PATTERN, stop_words="english", lowercase=True)
        counts = vec.fit_transform(docs)
    except ValueError:  # only stop words / no tokens at all
        return {c: [] for c in clusters}
    words = vec.get_feature_names_out()
    tf = counts.toarray().astype(np.float64)
    sizes = tf.sum(axis=1, keepdims=True)
    tf = np.divide(tf, sizes, out=np.zeros_like(tf), where=sizes > 0)
    freq = counts.toarray().sum(axis=0)
    idf = np.log(1 + counts.toarray().sum() / len(clusters) / np.maximum(freq, 1))
    scores = tf * idf
    out = {}
    for row, c in enumerate(clusters):
        order = np.argsort(-scores[row])[:top]
        out[c] = [str(words[i]) for i in order if scores[row, i] > 0]
    return out


def representatives(vectors: np.ndarray, labels: Sequence[int] | np.ndarray, cluster: int, k: int = 3) -> list[int]:
    """Row indices of the k members closest to their cluster's mean direction."""
    lab = np.asarray(labels)
    idx = np.flatnonzero(lab == cluster)
    if not len(idx):
        return []
    centre = vectors[idx].mean(axis=0)
    norm = np.linalg.norm(centre)
    if norm > 0:
        centre = centre / norm
    sims = vectors[idx] @ centre
    return idx[np.argsort(-sims)[:k]].tolist()


def dominant_values(frame: pd.DataFrame, labels: Sequence[int] | np.ndarray, cluster: int, dimensions: Sequence[str]) -> pd.DataFrame:
    """Per dimension: the most common value inside the cluster, its share there and overall, and
    the lift (share in cluster / share overall). A cluster made of one value has share 1."""
    lab = np.asarray(labels)
    mask = lab == cluster
    rows = []
    for dim in dimensions:
        col = frame[dim].fillna("(none)").astype(str)
        inside = col[mask].value_counts(normalize=True)
        if inside.empty:
            continue
        value = str(inside.index[0])
        overall = float((col == value).mean())
        rows.append({
            "dimension": dim,
            "value": value,
            "share_in_cluster": float(inside.iloc[0]),
            "share_overall": overall,
            "lift": float(inside.iloc[0]) / overall if overall else None,
        })
    return pd.DataFrame(rows, columns=["dimension", "value", "share_in_cluster", "share_overall", "lift"])


def cluster_summary(texts: Sequence[str], labels: Sequence[int] | np.ndarray, top: int = 6) -> pd.DataFrame:
    """One row per cluster (noise last): cluster, size, share, keywords."""
    lab = np.asarray(labels)
    kw = ctfidf_keywords(texts, lab, top=top)
    rows = []
    for c in sorted(set(lab.tolist()), key=lambda c: (c < 0, c)):
        size = int((lab == c).sum())
        rows.append({
            "cluster": "noise" if c < 0 else str(c),
            "size": size,
            "share": size / len(lab),
            "keywords": ", ".join(kw.get(c, [])) if c >= 0 else "",
        })
    return pd.DataFrame(rows, columns=["cluster", "size", "share", "keywords"])


# -- names drawn on the map ----------------------------------------------------------------

NAME_CHARS = 40


def safe_label(text: str, limit: int = NAME_CHARS) -> str:
    """Untrusted text fit for a plotly annotation: plotly renders some HTML tags and entities in
    annotation text, so ``<``, ``>`` and ``&`` are dropped (not escaped: an entity could still
    spell a tag), control characters and runs of spaces collapse, and the text is cut."""
    cleaned = "".join(" " if (c in "<>&" or ord(c) < 32 or ord(c) == 127) else c for c in str(text))
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"


def short_names(texts: Sequence[str], labels: Sequence[int] | np.ndarray, top: int = 3) -> dict[int, str]:
    """Each cluster's top c-TF-IDF keywords joined ("pizza · oven · crust"), numbers left out (an
    index or a count names nothing); a cluster without any keeps its number."""
    kw = ctfidf_keywords(texts, labels, top=top + 5)
    words = {c: [w for w in ws if not w.isdigit()][:top] for c, ws in kw.items()}
    return {c: (safe_label(" · ".join(ws)) or f"cluster {c}") for c, ws in words.items()}


def centres(xy: np.ndarray, labels: Sequence[int] | np.ndarray) -> dict[int, tuple[float, float, int]]:
    """Per cluster: the median of its points (robust to a stray member) and its size."""
    lab = np.asarray(labels)
    out = {}
    for c in sorted(set(lab.tolist()) - {-1}):
        pts = np.asarray(xy)[lab == c]
        out[int(c)] = (float(np.median(pts[:, 0])), float(np.median(pts[:, 1])), int(len(pts)))
    return out


CHAR_PX, NAME_PAD_PX, NAME_HEIGHT_PX = 7.0, 10.0, 20.0  # a 12-px font's average character, box padding, line


def name_positions(xy: np.ndarray, labels: Sequence[int] | np.ndarray, names: dict[int, str], *,
                   max_names: int = 12, size_px: tuple[float, float] = (900.0, 520.0)) -> list[tuple[float, float, str]]:
    """(x, y, name) for the largest clusters, at most ``max_names``: a name whose box (its length
    in a 12-px font, on a plot of ``size_px``) would overlap a larger cluster's is left out, and a
    box that would cross the plot's edge is moved inside it."""
    if not len(xy):
        return []
    pts = np.asarray(xy, dtype=np.float64)
    lo, span = pts.min(axis=0), np.ptp(pts, axis=0)
    span = np.where(span > 0, span, 1.0)
    height = NAME_HEIGHT_PX / size_px[1]
    placed: list[tuple[float, float, float, str]] = []  # x, y (shares of the plot), width share, text
    for c, (x, y, _size) in sorted(centres(pts, labels).items(), key=lambda kv: -kv[1][2]):
        if len(placed) >= max_names:
            break
        if c not in names:
            continue
        text = safe_label(names[c])
        width = min(1.0, (len(text) * CHAR_PX + NAME_PAD_PX) / size_px[0])
        sx = float(np.clip((x - lo[0]) / span[0], width / 2, 1 - width / 2))
        sy = float((y - lo[1]) / span[1])
        if any(abs(sx - px) < (width + pw) / 2 and abs(sy - py) < height for px, py, pw, _ in placed):
            continue
        placed.append((sx, sy, width, text))
    return [(float(lo[0] + sx * span[0]), float(lo[1] + sy * span[1]), text) for sx, sy, _, text in placed]
