"""Backends: everything speaks the OpenAI protocol through one async client code path.

A backend is a base_url + model (+ a key taken from the environment or st.secrets by the
caller). Keys live only in memory: ``BackendConfig`` never serialises its key and its repr
hides it, so it cannot leak into the database, logs or exports by accident.

Retries are not the client's (it is built with ``max_retries=0``) but ``retry.RetryPolicy``'s,
with the config's ``max_retries`` as budget: ``attempt`` sends one request, ``complete`` retries it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import httpx2
import openai
from openai import AsyncOpenAI

from services.generation.rate_signals import RateSignal, read_headers
from services.generation.retry import IncompleteResponse, RetryPolicy, is_quota_body, is_quota_error  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class BackendConfig:
    """Where to send requests. ``api_key`` is held in memory only (excluded from repr)."""

    preset: str
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    max_retries: int = 2  # the retry policy's budget: attempts = 1 + max_retries at most
    stream: bool = False  # stream completions (a long answer then never idles a proxy into a timeout)

    def public(self) -> dict[str, Any]:
        """What may be stored or shown: everything except the key."""
        return {"preset": self.preset, "base_url": self.base_url, "model": self.model,
                "timeout_s": self.timeout_s, "max_retries": self.max_retries, "stream": self.stream}

    def with_base_url(self, base_url: str) -> BackendConfig:
        return replace(self, base_url=base_url)


@dataclass
class Completion:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None
    latency_ms: float
    rate: RateSignal | None = None  # what the provider's headers said about its rate limits


class ChatBackend(Protocol):
    """A chat backend: one request, one completion. Retries and timeouts are its own.

    A backend may also offer ``attempt`` (one try, no retry) and ``retry`` (its ``RetryPolicy``):
    the runner then runs the retries itself, so that it counts and paces every attempt."""

    model: str

    async def complete(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Completion: ...

    async def aclose(self) -> None: ...


def make_client(cfg: BackendConfig, *, max_connections: int = 100) -> AsyncOpenAI:
    # Local servers want no key, but the client insists on one: send a placeholder.
    return AsyncOpenAI(
        base_url=cfg.base_url,
        api_key=cfg.api_key or "not-needed",
        timeout=httpx2.Timeout(cfg.timeout_s, connect=min(10.0, cfg.timeout_s)),
        max_retries=0,  # every retry is retry.RetryPolicy's: one budget, every attempt counted
        http_client=httpx2.AsyncClient(limits=httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)),
    )


class OpenAIBackend:
    """The one code path: AsyncOpenAI chat completions against any base_url."""

    def __init__(self, cfg: BackendConfig, *, max_connections: int = 100):
        self.cfg = cfg
        self.model = cfg.model
        self.retry = RetryPolicy(cfg.max_retries)
        self.client = make_client(cfg, max_connections=max_connections)

    async def complete(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Completion:
        return await self.retry.run(lambda: self.attempt(messages, params))

    async def attempt(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Completion:
        """One request, no retry; a truncated body raises ``json.JSONDecodeError``, a cut stream
        ``IncompleteResponse`` (both transient for the retry policy)."""
        t0 = time.perf_counter()
        if self.cfg.stream:
            return await self._streamed(messages, params, t0)
        raw = await self.client.chat.completions.with_raw_response.create(model=self.model, messages=messages, **params)
        resp = raw.parse()
        latency = (time.perf_counter() - t0) * 1000
        if not getattr(resp, "choices", None):
            raise ValueError(f"the backend returned no choices: {str(resp)[:200]!r}")
        choice = resp.choices[0]
        usage = getattr(resp, "usage", None)
        return Completion(
            text=choice.message.content or "",
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            finish_reason=choice.finish_reason,
            latency_ms=latency,
            rate=read_headers(raw.headers),
        )

    async def _streamed(self, messages: list[dict[str, str]], params: dict[str, Any], t0: float) -> Completion:
        stream = await self.client.chat.completions.create(model=self.model, messages=messages, stream=True,
                                                           stream_options={"include_usage": True}, **params)
        parts: list[str] = []
        finish: str | None = None
        usage = None
        try:
            async for chunk in stream:
                usage = getattr(chunk, "usage", None) or usage
                if chunk.choices:
                    parts.append(chunk.choices[0].delta.content or "")
                    finish = chunk.choices[0].finish_reason or finish
        except (httpx2.TransportError, openai.APIConnectionError) as exc:
            raise IncompleteResponse(f"the stream was cut off after {len(parts)} chunk(s) ({type(exc).__name__})") from exc
        finally:
            await stream.close()
        if finish is None:  # a stream that just stops has no finish reason: the answer is not whole
            raise IncompleteResponse(f"the stream ended after {len(parts)} chunk(s) without a finish reason")
        return Completion("".join(parts), getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None),
                          finish, (time.perf_counter() - t0) * 1000, read_headers(stream.response.headers))

    async def aclose(self) -> None:
        await self.client.close()


def request_params(temperature: float, top_p: float, max_tokens: int, seed: int | None) -> dict[str, Any]:
    """Model parameters for one request. Never ``n``: llama.cpp ignores n > 1, so samples are separate requests."""
    params: dict[str, Any] = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
    if seed is not None:
        params["seed"] = seed
    return params


def describe_error(exc: BaseException, base_url: str = "") -> str:
    """An error in plain words a user can act on."""
    where = f" at {base_url}" if base_url else ""
    if isinstance(exc, openai.APITimeoutError):
        return f"Timed out: the backend{where} did not answer in time."
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        text = f"{cause!r} {exc}".lower()
        if "refused" in text or "connecterror" in text:
            return f"Connection refused: nothing is listening{where}. Is the server running and the port right?"
        return f"Could not connect{where}: {exc} ({type(cause).__name__ if cause else 'no detail'})."
    if isinstance(exc, openai.AuthenticationError):
        return "Unauthorised (HTTP 401): the API key is missing or wrong. Set it in the environment or st.secrets."
    if isinstance(exc, openai.PermissionDeniedError):
        return "Forbidden (HTTP 403): this key may not use this model or endpoint."
    if isinstance(exc, openai.NotFoundError):
        return f"Not found (HTTP 404){where}: wrong path (base_url usually ends in /v1) or unknown model."
    if is_quota_error(exc):
        return "Out of quota (HTTP 429 insufficient_quota): add credit or use another key, then resume."
    if isinstance(exc, openai.RateLimitError):
        return "Rate limited (HTTP 429) even after retries: lower the concurrency or set an RPM/TPM limit."
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code} from the backend: {str(exc)[:300]}"
    if isinstance(exc, IncompleteResponse):
        return f"The answer ended early{where}: {exc}."
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        return f"Malformed response from the backend: {str(exc)[:300]}"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "Timed out: the item's deadline passed."
    return f"{type(exc).__name__}: {str(exc)[:300]}"


@dataclass
class ConnectionResult:
    ok: bool
    message: str
    models: list[str] = field(default_factory=list)


async def _test(cfg: BackendConfig) -> ConnectionResult:
    client = make_client(replace(cfg, max_retries=0, timeout_s=min(cfg.timeout_s, 10.0)), max_connections=2)
    try:
        page = await client.models.list()
        models = sorted(m.id for m in page.data)
        found = not cfg.model or cfg.model in models or not models
        msg = f"Connected: {len(models)} model(s) available."
        if not found:
            msg += f" Note: '{cfg.model}' is not among them."
        return ConnectionResult(True, msg, models)
    except Exception as exc:  # every failure becomes a sentence for the user
        return ConnectionResult(False, describe_error(exc, cfg.base_url))
    finally:
        await client.close()


def check_connection(cfg: BackendConfig) -> ConnectionResult:
    """List the models, or say in plain words what went wrong (refused, unauthorised, wrong path, timeout)."""
    return asyncio.run(_test(cfg))

