"""The one retry policy of every model call: what is worth another attempt, how long to wait, how often.

The openai client's own retries are switched off (``max_retries=0`` on the client) because they
cannot see everything that fails: a 200 whose JSON body is cut short is raised by the parser after
the client's retry loop, and a stream that ends early fails while it is read. Doing every retry
here gives one budget (``max_retries`` of the backend's config, as the client had) for all of them,
an exact count of attempts per sample, and lets the runner's pacer see each 429 as it happens.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import httpx2
import openai

from services.core.errors import StudioError
from services.generation.rate_signals import NO_SIGNAL, RateSignal, read_headers

T = TypeVar("T")

# As the openai client: a Retry-After beyond two minutes is not waited for, and the backoff without
# one starts at 0.5 s and doubles up to 8 s, less up to 25 % jitter.
MAX_RETRY_AFTER_S = 120.0
_RETRY_STATUS = frozenset({408, 409, 429})


class IncompleteResponse(StudioError):
    """The answer ended before it was complete (a stream cut off before its last chunk)."""

    title = "The answer ended early"


def is_quota_body(text: str) -> bool:
    return "insufficient_quota" in (text or "")


def is_quota_error(exc: BaseException) -> bool:
    if not isinstance(exc, openai.RateLimitError):
        return False
    body = exc.body if isinstance(exc.body, dict) else {}
    code = body.get("code") or (body.get("error") or {}).get("code") if isinstance(body, dict) else None
    return code == "insufficient_quota" or is_quota_body(str(exc))


def is_rate_limited(exc: BaseException) -> bool:
    """A 429 that waiting cures (not a quota error, which never does)."""
    return isinstance(exc, openai.RateLimitError) and not is_quota_error(exc)


def signal_of(exc: BaseException) -> RateSignal:
    response = getattr(exc, "response", None) if isinstance(exc, openai.APIStatusError) else None
    return read_headers(response.headers) if response is not None else NO_SIGNAL


def is_transient(exc: BaseException) -> bool:
    """Worth another attempt: dropped connections and timeouts, 408/409/429/5xx (not quota), a
    truncated body, a stream that ended early. Everything else fails the same way again."""
    if is_quota_error(exc):
        return False
    if isinstance(exc, openai.APIStatusError):
        told = exc.response.headers.get("x-should-retry") if exc.response is not None else None
        if told in ("true", "false"):  # the server's word wins, as in the openai client
            return told == "true"
        return exc.status_code in _RETRY_STATUS or exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError | json.JSONDecodeError | IncompleteResponse | httpx2.TransportError)


class Pacer(Protocol):
    """Admits each attempt and hears how it went (the runner's adaptive concurrency)."""

    async def enter(self) -> int: ...

    def leave(self, ticket: int, *, ok: bool, rate_limited: bool, signal: RateSignal) -> None: ...


@dataclass
class Tally:
    """Attempts made so far for one request; read after a failure too."""

    attempts: int = 0


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def delay(self, retry_no: int, signal: RateSignal) -> float:
        if signal.retry_after_s is not None and 0 < signal.retry_after_s <= MAX_RETRY_AFTER_S:
            return signal.retry_after_s
        return min(self.initial_backoff_s * 2 ** (retry_no - 1), self.max_backoff_s) * (1 - 0.25 * random.random())

    async def run(self, attempt: Callable[[], Awaitable[T]], *, pacer: Pacer | None = None, tally: Tally | None = None) -> T:
        """``attempt()`` until it succeeds, fails for good, or the budget (1 + max_retries) is spent."""
        tally = tally if tally is not None else Tally()
        while True:
            ticket = await pacer.enter() if pacer is not None else 0
            tally.attempts += 1  # counted once admitted: a wait for a slot sends nothing
            try:
                result = await attempt()
            except Exception as exc:
                signal = signal_of(exc)
                if pacer is not None:
                    pacer.leave(ticket, ok=False, rate_limited=is_rate_limited(exc), signal=signal)
                too_long = (signal.retry_after_s or 0) > MAX_RETRY_AFTER_S
                if tally.attempts > self.max_retries or too_long or not is_transient(exc):
                    raise
                await asyncio.sleep(self.delay(tally.attempts, signal))
                continue
            except BaseException:  # cancelled mid-attempt: give the slot back, nothing learnt
                if pacer is not None:
                    pacer.leave(ticket, ok=False, rate_limited=False, signal=NO_SIGNAL)
                raise
            if pacer is not None:
                pacer.leave(ticket, ok=True, rate_limited=False, signal=getattr(result, "rate", None) or NO_SIGNAL)
            return result
