"""Diversity metrics, overall and per group (run, condition value).

Lexical: distinct-n (unique n-grams / all n-grams, over the whole set), vocabulary size,
Self-BLEU (each text scored by sacrebleu against the others; on a random sample of at most
``SELF_BLEU_SAMPLE`` texts, the number used is reported). Semantic: mean pairwise cosine
similarity (exact, from the sum of unit vectors), Vendi score (exp of the entropy of the
eigenvalues of the similarity matrix / n: 1 for identical texts, n for orthogonal ones).
Clusters: number of clusters, noise share, entropy of the cluster sizes (bits).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

SELF_BLEU_SAMPLE = 100
_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (Unicode-aware; scripts without spaces give long tokens)."""
    return _TOKEN.findall((text or "").lower())


def ngrams(toks: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Unique n-grams / total n-grams across all texts (Li et al. 2016); None without n-grams."""
    counts: Counter = Counter()
    for t in texts:
        counts.update(ngrams(tokens(t), n))
    total = sum(counts.values())
    return len(counts) / total if total else None


def vocabulary_size(texts: Sequence[str]) -> int:
    return len({w for t in texts for w in tokens(t)})


def self_bleu(texts: Sequence[str], *, sample: int = SELF_BLEU_SAMPLE, seed: int = 0) -> tuple[float | None, int]:
    """Mean sentence BLEU (sacrebleu, 0-100) of each text against all the others as references.

    Higher means more alike. Computed on a random sample of at most ``sample`` texts (BLEU
    against all others is quadratic); returns (score, number of texts used), score None for < 2.
    """
    from sacrebleu.metrics import BLEU

    texts = [t for t in texts if t and t.strip()]
    if len(texts) > sample:
        rng = np.random.default_rng(seed)
        texts = [texts[i] for i in sorted(rng.choice(len(texts), size=sample, replace=False))]
    if len(texts) < 2:
        return None, len(texts)
    bleu = BLEU(effective_order=True)
    scores = [bleu.sentence_score(h, texts[:i] + texts[i + 1 :]).score for i, h in enumerate(texts)]
    return float(np.mean(scores)), len(texts)


def mean_pairwise_cosine(vectors: np.ndarray) -> float | None:
    """Mean cosine similarity over all pairs i != j of L2-normalised rows (exact, O(n d))."""
    e = np.asarray(vectors, dtype=np.float64)
    n = len(e)
    if n < 2:
        return None
    s = e.sum(axis=0)
    total = float(s @ s) - float(np.einsum("ij,ij->", e, e))
    return total / (n * (n - 1))


def vendi_score(vectors: np.ndarray) -> float | None:
    """Vendi score with the cosine kernel: exp(entropy of eig(K / n)), K = E E^T.

    The non-zero eigenvalues of E E^T / n equal those of E^T E / n (d x d), so this is O(n d^2).
    """
    e = np.asarray(vectors, dtype=np.float64)
    n = len(e)
    if n == 0:
        return None
    eig = np.linalg.eigvalsh(e.T @ e / n)
    eig = eig[eig > 1e-12]
    if not len(eig):
        return None
    eig = eig / eig.sum()
    return float(math.exp(-np.sum(eig * np.log(eig))))


def cluster_stats(labels: Sequence[int] | np.ndarray | None) -> dict[str, float | int | None]:
    """Number of clusters, share of noise points (-1), entropy of cluster sizes in bits."""
    if labels is None:
        return {"clusters": None, "noise_share": None, "cluster_entropy_bits": None}
    lab = np.asarray(labels)
    if not len(lab):
        return {"clusters": 0, "noise_share": None, "cluster_entropy_bits": None}
    clustered = lab[lab >= 0]
    sizes = np.array(list(Counter(clustered.tolist()).values()), dtype=np.float64)
    entropy = float(-(p := sizes / sizes.sum()) @ np.log2(p)) if len(sizes) else None
    return {"clusters": int(len(sizes)), "noise_share": float(np.mean(lab < 0)), "cluster_entropy_bits": entropy}


def metrics(
    texts: Sequence[str],
    vectors: np.ndarray | None = None,
    labels: Sequence[int] | np.ndarray | None = None,
    *,
    bleu_sample: int = SELF_BLEU_SAMPLE,
) -> dict[str, float | int | None]:
    """Every diversity metric for one set of texts (None where it cannot be computed)."""
    out: dict[str, float | int | None] = {"n": len(texts)}
    for n in (1, 2, 3):
        out[f"distinct_{n}"] = distinct_n(texts, n)
    out["vocabulary"] = vocabulary_size(texts)
    out["self_bleu"], out["self_bleu_n"] = self_bleu(texts, sample=bleu_sample)
    out["mean_cosine"] = mean_pairwise_cosine(vectors) if vectors is not None else None
    out["vendi"] = vendi_score(vectors) if vectors is not None else None
    out.update(cluster_stats(labels))
    return out


def diversity_table(
    frame: pd.DataFrame,
    vectors: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    *,
    by: str | None = None,
    bleu_sample: int = SELF_BLEU_SAMPLE,
) -> pd.DataFrame:
    """One row of metrics overall (by=None) or per value of column ``by`` (a run, a dimension).

    ``frame`` has a ``text`` column; ``vectors`` and ``labels`` are aligned with its rows.
    """
    texts = frame["text"].fillna("").tolist()
    if by is None:
        return pd.DataFrame([{"group": "all", **metrics(texts, vectors, labels, bleu_sample=bleu_sample)}])
    rows = []
    keys = frame[by].fillna("(none)").astype(str).to_numpy()
    for value in sorted(set(keys.tolist())):
        mask = keys == value
        rows.append({
            "group": value,
            **metrics(
                [t for t, m in zip(texts, mask, strict=True) if m],
                vectors[mask] if vectors is not None else None,
                labels[mask] if labels is not None else None,
                bleu_sample=bleu_sample,
            ),
        })
    return pd.DataFrame(rows)
