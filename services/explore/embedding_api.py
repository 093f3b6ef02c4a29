"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint: the embedding backend.

Presets name the common servers (OpenAI, vLLM, TEI, Infinity, Ollama) with their default URLs; the
key comes from the environment (or ``st.secrets``, passed in by the page), and is never stored or
logged. ``ApiEmbedder`` is an ``Embedder``: ``embed_texts`` caches its vectors by (``api:<model>``,
text hash) and writes every ``write_batch`` texts, so a crash loses at most one write batch and a
restart sends only the texts still missing. Inside one ``encode`` the texts go out in requests of
``batch_size`` texts, ``concurrency`` requests at a time (asyncio + the openai client), each under
the studio's one retry policy (``generation.retry``): 429 with Retry-After, 5xx and truncated
bodies are retried within one budget; quota errors and 4xx fail at once with a clear message.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.core.errors import StudioError
from services.generation.presets import Preset, key_from
from services.generation.retry import RetryPolicy, is_quota_error

# Rule of thumb for English with OpenAI's tokenizers; the forecast says it is an estimate, and the
# server's own usage figures replace it once a run has sent anything.
CHARS_PER_TOKEN = 4.0

EMBEDDING_PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("openai", "OpenAI", "https://api.openai.com/v1", "text-embedding-3-small", "OPENAI_API_KEY", True),
        Preset("vllm", "vLLM", "http://127.0.0.1:8000/v1", "", "VLLM_API_KEY",
               note="vllm serve <model> --task embed"),
        Preset("tei", "Text Embeddings Inference", "http://127.0.0.1:8080/v1", "", "TEI_API_KEY",
               note="TEI's OpenAI-compatible route; the model is the one the server loaded"),
        Preset("infinity", "Infinity", "http://127.0.0.1:7997", "", "INFINITY_API_KEY",
               note="infinity_emb v2 serves /embeddings at the root"),
        Preset("ollama", "Ollama", "http://127.0.0.1:11434/v1", "nomic-embed-text"),
        Preset("custom", "Custom (any base_url)", "http://127.0.0.1:8000/v1", "", "OPENAI_API_KEY"),
    ]
}


def embedder_from_spec(spec: str, secrets: dict | None = None) -> ApiEmbedder:
    """``api:PRESET:MODEL`` or ``api:PRESET:MODEL@BASE_URL`` (the embedder choice as one string,
    as the Explore page and ``STUDIO_EMBEDDER`` give it); an empty MODEL takes the preset's."""
    body = spec.removeprefix("api:")
    preset, _, rest = body.partition(":")
    model, _, base_url = rest.partition("@")
    if preset not in EMBEDDING_PRESETS:
        raise EmbeddingBackendError(f"Unknown embedding backend {preset!r} in {spec!r}: choose one of "
                                    f"{', '.join(EMBEDDING_PRESETS)} (api:PRESET:MODEL[@BASE_URL]).")
    return ApiEmbedder.from_preset(preset, model=model.strip(), base_url=base_url.strip(), secrets=secrets)


class EmbeddingBackendError(StudioError):
    """The embedding endpoint refused or kept failing; the vectors written so far are kept."""

    title = "The embedding endpoint failed"


@dataclass(frozen=True)
class EmbeddingForecast:
    texts: int              # distinct texts still to embed (cached ones cost nothing)
    est_tokens: int         # estimated: characters / CHARS_PER_TOKEN
    cost_usd: float | None  # None without a price for the model
    requests: int


def forecast(texts: Sequence[str], price_per_mtok: float | None, batch_size: int) -> EmbeddingForecast:
    """Tokens (estimated from characters), cost and requests to embed ``texts`` (those not cached)."""
    tokens = int(math.ceil(sum(len(t) for t in texts) / CHARS_PER_TOKEN))
    cost = None if price_per_mtok is None else tokens * price_per_mtok / 1e6
    return EmbeddingForecast(len(texts), tokens, cost, math.ceil(len(texts) / max(1, batch_size)))


class ApiEmbedder:
    """An OpenAI-compatible embeddings endpoint as an Embedder (batched, concurrent, retried)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, batch_size: int = 64,
                 concurrency: int = 4, timeout_s: float = 60.0, retry: RetryPolicy | None = None) -> None:
        if not model:
            raise EmbeddingBackendError("Name the embedding model the server serves (for example BAAI/bge-small-en-v1.5).")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"api:{model}"  # the cache key: the same model gives the same vectors behind any URL
        self.batch_size = max(1, batch_size)
        self.concurrency = max(1, concurrency)
        self.write_batch = self.batch_size * self.concurrency * 2  # what embed_texts writes at a time
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._api_key = api_key
        self.tokens_used = 0    # as the server reported them (usage.prompt_tokens)
        self.requests_sent = 0  # attempts, retries included

    def __repr__(self) -> str:  # never the key
        return f"ApiEmbedder({self.base_url!r}, {self.model!r})"

    @classmethod
    def from_preset(cls, preset: str, *, model: str = "", base_url: str = "", secrets: dict | None = None,
                    **kwargs: object) -> ApiEmbedder:
        p = EMBEDDING_PRESETS[preset]
        key = key_from(p, secrets)
        if p.needs_key and not key:
            raise EmbeddingBackendError(f"{p.label} needs a key: set {p.key_env} in the environment.")
        return cls(base_url or p.base_url, model or p.model, key, **kwargs)  # type: ignore[arg-type]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, in order. Runs its own event loop (call it from a worker thread)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return asyncio.run(self._encode(list(texts)))

    async def _encode(self, texts: list[str]) -> np.ndarray:
        import openai

        client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self._api_key or "not-needed",
                                    max_retries=0, timeout=self.timeout_s)
        gate = asyncio.Semaphore(self.concurrency)
        batches = [texts[i:i + self.batch_size] for i in range(0, len(texts), self.batch_size)]

        async def one(batch: list[str]) -> list[list[float]]:
            async def attempt() -> list[list[float]]:
                self.requests_sent += 1
                resp = await client.embeddings.create(model=self.model, input=batch, encoding_format="float")
                rows = sorted(resp.data, key=lambda d: d.index)
                if len(rows) != len(batch):
                    raise EmbeddingBackendError(f"{self.base_url} returned {len(rows)} vectors for {len(batch)} texts.")
                if resp.usage is not None:
                    self.tokens_used += int(resp.usage.prompt_tokens or 0)
                return [r.embedding for r in rows]

            async with gate:
                return await self.retry.run(attempt)

        try:
            parts = await asyncio.gather(*(one(b) for b in batches))
        except EmbeddingBackendError:
            raise
        except openai.APIStatusError as exc:
            raise EmbeddingBackendError(self._wording(exc)) from None
        except (openai.APIConnectionError, ValueError) as exc:
            raise EmbeddingBackendError(f"No usable answer from {self.base_url} ({type(exc).__name__}) after "
                                        f"{self.retry.max_retries + 1} attempts; the vectors written so far are kept.") from None
        finally:
            await client.close()
        vectors = [v for part in parts for v in part]
        dims = {len(v) for v in vectors}
        if len(dims) != 1:
            raise EmbeddingBackendError(f"{self.base_url} returned vectors of different sizes: {sorted(dims)}.")
        return np.asarray(vectors, dtype=np.float32)

    def _wording(self, exc: object) -> str:
        import openai

        status = getattr(exc, "status_code", "?")
        if is_quota_error(exc):  # type: ignore[arg-type]
            return f"{self.base_url}: the account's quota is used up (HTTP 429 insufficient_quota); nothing more is sent."
        if isinstance(exc, openai.AuthenticationError):
            return f"{self.base_url} refused the key (HTTP 401): check the key's environment variable."
        if isinstance(exc, openai.NotFoundError):
            return f"{self.base_url} has no embeddings route or no model {self.model!r} (HTTP 404)."
        return f"{self.base_url} answered HTTP {status} for model {self.model!r}, {self.retry.max_retries + 1} attempts; the vectors written so far are kept."
