"""What a provider says about its rate limits, read from response headers.

``Retry-After`` (seconds or an HTTP date; ``retry-after-ms`` first, as the openai client reads it),
``x-ratelimit-remaining-requests`` / ``-tokens`` and their ``x-ratelimit-reset-*`` durations
(OpenAI writes them like ``6m0s`` or ``20ms``). Missing or unreadable headers read as None.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class RateSignal:
    retry_after_s: float | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None

    def pressed(self, concurrency: int, tokens_per_request: int) -> bool:
        """True when the window left cannot take another round of ``concurrency`` requests."""
        if self.remaining_requests is not None and self.remaining_requests < concurrency:
            return True
        return self.remaining_tokens is not None and self.remaining_tokens < concurrency * max(1, tokens_per_request)

    def reset_s(self) -> float | None:
        """How long until the exhausted window (requests or tokens) refills, if the provider says."""
        waits = []
        if self.remaining_requests == 0 and self.reset_requests_s:
            waits.append(self.reset_requests_s)
        if self.remaining_tokens == 0 and self.reset_tokens_s:
            waits.append(self.reset_tokens_s)
        return max(waits) if waits else None


NO_SIGNAL = RateSignal()


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    try:
        s = float(value)
        return s if math.isfinite(s) and s >= 0 else None
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if parts and "".join(n + u for n, u in parts) == value.replace(" ", ""):
        return sum(float(n) * _UNIT_S[u] for n, u in parts)
    return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    ms = _seconds(headers.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000
    raw = headers.get("retry-after")
    s = _seconds(raw)
    if s is not None or raw is None:
        return s
    try:  # an HTTP date
        parsed = email.utils.parsedate_tz(raw)
        return max(0.0, email.utils.mktime_tz(parsed) - time.time()) if parsed else None
    except (TypeError, ValueError, OverflowError):
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def read_headers(headers: Mapping[str, str] | None) -> RateSignal:
    """The rate signal in a response's headers (a case-insensitive mapping such as httpx's)."""
    if not headers:
        return NO_SIGNAL
    sig = RateSignal(
        retry_after_s=_retry_after(headers),
        remaining_requests=_int(headers.get("x-ratelimit-remaining-requests")),
        remaining_tokens=_int(headers.get("x-ratelimit-remaining-tokens")),
        reset_requests_s=_seconds(headers.get("x-ratelimit-reset-requests")),
        reset_tokens_s=_seconds(headers.get("x-ratelimit-reset-tokens")),
    )
    return NO_SIGNAL if sig == NO_SIGNAL else sig
