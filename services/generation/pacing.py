"""Adaptive concurrency for a run: additive increase, multiplicative decrease (AIMD), as TCP does.

A 429, or headers saying the provider's window cannot take another round of requests, halves the
number of requests allowed in flight (floor 1); each success without such a sign adds 1/n of a
slot, so the limit climbs back by one per round of successes up to the configured concurrency.
Only one halving per round: the 429s of requests sent before the last halving were answers to the
old load and are not counted twice. A ``Retry-After`` pauses every new request until it passes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from services.generation.rate_signals import RateSignal
from services.generation.retry import MAX_RETRY_AFTER_S


@dataclass
class LiveState:
    """A run's pacing right now: written by its worker, read by the page (plain fields, no lock)."""

    limit: int = 0  # the configured concurrency: the ceiling
    concurrency: int = 0  # requests allowed in flight now
    lowest: int = 0  # the lowest it went during this attempt
    rate_limited: int = 0  # 429 answers so far (quota errors aside: they stop the run)
    paused_until: float = 0.0  # time.monotonic() before which no request is sent

    def paused_s(self, now: float | None = None) -> float:
        return max(0.0, self.paused_until - (time.monotonic() if now is None else now))


class AdaptiveConcurrency:
    """Admits attempts (``enter``/``leave``, the retry policy's ``Pacer``) under an AIMD limit."""

    def __init__(self, limit: int, *, tokens_per_request: int = 0, live: LiveState | None = None,
                 on_change: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self.max = max(1, int(limit))
        self.window = float(self.max)
        self.tokens_per_request = tokens_per_request
        self.live = live if live is not None else LiveState()
        self.live.limit = self.live.concurrency = self.live.lowest = self.max
        self.on_change = on_change
        self.clock = clock
        self.in_flight = 0
        self.epoch = 0  # bumped at each halving; a ticket carries the epoch it was admitted in
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def allowed(self) -> int:
        return max(1, int(self.window))

    async def enter(self) -> int:
        while True:
            wait = self.live.paused_until - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if self.in_flight < self.allowed:  # the common path: no await, no allocation
                self.in_flight += 1
                return self.epoch
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            finally:
                if not fut.done():
                    fut.cancel()

    def leave(self, ticket: int, *, ok: bool, rate_limited: bool, signal: RateSignal) -> None:
        self.in_flight -= 1
        before = self.allowed
        if rate_limited:
            self.live.rate_limited += 1
            self._halve(ticket, "HTTP 429")
            if signal.retry_after_s:
                self._pause(signal.retry_after_s)
        elif signal.pressed(self.allowed, self.tokens_per_request):
            self._halve(ticket, _pressure_words(signal))
            if (reset := signal.reset_s()) is not None:
                self._pause(reset)
        elif ok and self.window < self.max:
            self.window = min(float(self.max), self.window + 1.0 / self.window)
            if self.allowed == self.max and self.on_change:
                self.on_change(f"concurrency back to {self.max}")
        if self.allowed != before:
            self.live.concurrency = self.allowed
            self.live.lowest = min(self.live.lowest, self.allowed)
        self._wake()

    def _halve(self, ticket: int, why: str) -> None:
        if ticket != self.epoch:  # sent before the last halving: that load is already answered for
            return
        before = self.allowed
        self.window = float(max(1, before // 2))
        self.epoch += 1
        if self.on_change and self.allowed != before:
            self.on_change(f"concurrency {before} → {self.allowed} ({why})")

    def _pause(self, seconds: float) -> None:
        until = self.clock() + min(seconds, MAX_RETRY_AFTER_S)
        self.live.paused_until = max(self.live.paused_until, until)

    def _wake(self) -> None:
        free = self.allowed - self.in_flight
        while free > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                free -= 1


def _pressure_words(signal: RateSignal) -> str:
    if signal.remaining_requests is not None and signal.remaining_tokens is not None:
        return f"{signal.remaining_requests} requests and {signal.remaining_tokens} tokens left in the provider's window"
    if signal.remaining_requests is not None:
        return f"{signal.remaining_requests} requests left in the provider's window"
    return f"{signal.remaining_tokens} tokens left in the provider's window"
