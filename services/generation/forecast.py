"""Forecasts of tokens, cost and time for a whole plan, as ranges: rough from the prompts, or
measured from a preview; and the pace of a run while it runs.

Speed is never taken from a run's first request: on the built-in model it carries the model's
load (and on any backend the connection set-up), and it made whole-run forecasts 2-3x too long.
On a backend that serves one request at a time (the built-in llama.cpp server), a request's
latency also includes its wait behind the others, so its service time is the gap since the
previous request ended whenever that is shorter.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from services.core.store import Store
from services.generation.run_store import Price, Progress, get_run, past_request_speeds, request_timings
from services.recipes.plan import PlanItem

SPREAD = 0.15  # the least uncertainty of a measured figure: preview items are the plan's first, not a random draw
CHARS_PER_TOKEN = (5.0, 3.0)  # English text runs about 3 to 5 characters per token, whatever the tokenizer
ANSWER_SHARE = 0.25  # before a preview, an answer is taken to use between a quarter of max_tokens and all of it


@dataclass(frozen=True)
class Span:
    """A range low..high (equal ends when the figure is exact)."""

    low: float
    high: float

    def __mul__(self, k: float) -> Span:
        return Span(self.low * k, self.high * k)

    def __add__(self, other: Span) -> Span:
        return Span(self.low + other.low, self.high + other.high)


@dataclass(frozen=True)
class Forecast:
    requests: int
    prompt_tokens: Span
    completion_tokens: Span
    cost_usd: Span | None  # None when the model has no price
    seconds: Span | None  # None when nothing measured says how fast the backend is
    basis: str  # what the figures were computed from (counts what it actually used)
    time_note: str = ""  # where the time comes from, or why there is none

    @property
    def tokens(self) -> Span:
        return self.prompt_tokens + self.completion_tokens


def _spread(values: list[float], center: float) -> Span:
    """A plausible range for a per-request mean: at least ±SPREAD around ``center``, wider where the
    measured values disagree (their interquartile range)."""
    if len(values) >= 2:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    else:
        q1 = q3 = center
    return Span(max(0.0, min(q1, center * (1 - SPREAD))), max(q3, center * (1 + SPREAD)))


def _cost(price: Price | None, pt: Span, ct: Span) -> Span | None:
    return Span(price.cost(int(pt.low), int(ct.low)), price.cost(int(pt.high), int(ct.high))) if price else None


def _throttled(seconds: Span, requests: int, tokens: Span, rpm: int | None, tpm: int | None) -> Span:
    """A run cannot be faster than its own throttles allow."""
    floor = max(requests / rpm * 60 if rpm else 0.0, tokens.low / tpm * 60 if tpm else 0.0)
    return Span(max(seconds.low, floor), max(seconds.high, floor))


def service_seconds(latency_ms: float, gap_ms: float | None, one_at_a_time: bool) -> float:
    """How long the backend spent on one request (see the module's note)."""
    if one_at_a_time and gap_ms is not None and gap_ms > 0:
        return min(latency_ms, gap_ms) / 1000
    return latency_ms / 1000


@dataclass(frozen=True)
class Speed:
    """Seconds per completion token of earlier requests on the same backend and model."""

    per_token: Span
    requests: int


def past_speed(store: Store, backend: str, model: str, one_at_a_time: bool) -> Speed | None:
    rows = past_request_speeds(store, backend, model)
    per_token = [service_seconds(lat, gap, one_at_a_time) / ct for lat, gap, ct in rows]
    if not per_token:
        return None
    return Speed(_spread(per_token, statistics.median(per_token)), len(per_token))


def rough_forecast(items: list[PlanItem], n_items: int, samples_per_item: int, n_steps: int, max_tokens: int,
                   price: Price | None, *, speed: Speed | None = None, parallel: int = 1, model: str = "this model",
                   rpm: int | None = None, tpm: int | None = None) -> Forecast:
    """Before anything is sent: prompt tokens from the rendered prompts' length, answers between a
    quarter of max_tokens and max_tokens; time only where earlier runs measured this model's speed.
    ``parallel`` is how many requests the backend serves at once (1 for the built-in server)."""
    chars = sum(len(m["content"]) for it in items for m in it.messages) / max(1, len(items))
    requests = n_items * samples_per_item * n_steps
    pt = Span(chars / CHARS_PER_TOKEN[0], chars / CHARS_PER_TOKEN[1]) * requests
    ct = Span(max_tokens * ANSWER_SHARE, max_tokens) * requests
    basis = (f"estimate from the {len(items)} rendered prompt(s) below at 3-5 characters per token, "
             f"answers from a quarter of max_tokens ({max_tokens}) to all of it")
    if speed is None:
        return Forecast(requests, pt, ct, _cost(price, pt, ct), None, basis,
                        f"No time before a preview: no earlier run on {model} measured its speed. Generate a preview.")
    per_token = speed.per_token
    seconds = Span(ct.low * per_token.low, ct.high * per_token.high) * (1 / max(1, min(parallel, requests)))
    return Forecast(requests, pt, ct, _cost(price, pt, ct), _throttled(seconds, requests, pt + ct, rpm, tpm), basis,
                    f"time at the speed of {speed.requests} earlier request(s) on {model} (each run's first left out)")


def preview_forecast(store: Store, preview_run_id: str, n_items: int, concurrency: int, price: Price | None, *,
                     rpm: int | None = None, tpm: int | None = None) -> Forecast | None:
    """Scale a finished preview's measured usage and speed to the whole plan. ``concurrency`` is how
    many requests the backend serves at once (1 for the built-in server)."""
    run = get_run(store, preview_run_id)
    rows = request_timings(store, preview_run_id)
    per_unit: dict[tuple[int, int], list[float]] = {}
    for r in rows:
        acc = per_unit.setdefault((r["item_idx"], r["sample_idx"]), [0.0, 0.0, 0.0])
        acc[0] += r["prompt_tokens"] or 0
        acc[1] += r["completion_tokens"] or 0
        acc[2] += r["step"] == "output"
    done = [acc for acc in per_unit.values() if acc[2]]
    if not done:
        return None
    per_output = sum(1 for r in rows if r["request"]) / len(done)  # requests per output (columns make several)
    units = n_items * run.samples_per_item
    requests = round(units * per_output)
    pts, cts = [a[0] for a in done], [a[1] for a in done]
    pt = _spread(pts, statistics.fmean(pts)) * units
    ct = _spread(cts, statistics.fmean(cts)) * units
    if run.params.get("max_tokens"):  # no answer can be longer than max_tokens
        cap = float(run.params["max_tokens"]) * requests
        ct = Span(min(ct.low, cap), min(ct.high, cap))
    one_at_a_time = concurrency <= 1
    rows = [r for r in rows if r["request"]]
    timed = [service_seconds(r["latency_ms"], r["gap_ms"], one_at_a_time) for r in rows[1:] if r["latency_ms"]]
    if timed:
        note = f"time from the median of {len(timed)} request(s), the first (warm-up: model load, connection) left out"
    else:  # a one-request preview: its only request carries the warm-up
        timed = [r["latency_ms"] / 1000 for r in rows[:1] if r["latency_ms"]]
        note = "time from a single request that includes the warm-up: likely too long; preview 3 or more items"
    seconds = None
    if timed:
        per_request = _spread(timed, statistics.median(timed))
        seconds = _throttled(per_request * (requests / max(1, min(concurrency, units))), requests, pt + ct, rpm, tpm)
    return Forecast(requests, pt, ct, _cost(price, pt, ct), seconds,
                    f"measured on {len(done)} preview sample(s) of run {preview_run_id}", note)


@dataclass(frozen=True)
class Pace:
    elapsed_s: float | None  # of this attempt (a resume starts a new one)
    per_s: float | None  # outputs ended per second in this attempt; None until two have ended
    eta_s: float | None  # seconds left at that rate, while the run runs


def pace(p: Progress, status: str, now: datetime, finished_at: datetime | None = None) -> Pace:
    """Elapsed time and ETA from the run's own rate. While it runs: outputs ended after this
    attempt's first one (which waited for the warm-up) over the time since, so a stalled run's rate
    falls as time passes. Once it has stopped: its outputs over its whole time."""
    if p.attempt_at is None:
        return Pace(None, None, None)
    if status != "running":
        elapsed = max(0.0, ((finished_at or p.attempt_last_at or now) - p.attempt_at).total_seconds())
        return Pace(elapsed, p.attempt_ended / elapsed if elapsed > 0 and p.attempt_ended else None, None)
    elapsed = max(0.0, (now - p.attempt_at).total_seconds())
    per_s = None
    if p.attempt_ended >= 2 and p.attempt_first_at is not None:
        since_first = (now - p.attempt_first_at).total_seconds()
        per_s = (p.attempt_ended - 1) / since_first if since_first > 0 else None
    eta = p.remaining / per_s if per_s else (0.0 if not p.remaining else None)
    return Pace(elapsed, per_s, eta)
