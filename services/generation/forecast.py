"""Forecasts of tokens, cost and time for a whole plan: rough from the prompts, or measured from a preview."""

from __future__ import annotations

from dataclasses import dataclass

from services.core.store import Store
from services.generation.run_store import Price, get_run, run_samples
from services.recipes.plan import PlanItem


@dataclass(frozen=True)
class Forecast:
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None when the model has no price
    seconds: float | None
    basis: str


def rough_forecast(items: list[PlanItem], n_items: int, samples_per_item: int, n_steps: int, max_tokens: int,
                   price: Price | None) -> Forecast:
    """Upper bound before anything is sent: ~4 characters per prompt token, every answer at max_tokens."""
    chars = sum(len(m["content"]) for it in items for m in it.messages) / max(1, len(items))
    requests = n_items * samples_per_item * n_steps
    pt, ct = int(chars / 4 * requests), max_tokens * requests
    return Forecast(requests, pt, ct, price.cost(pt, ct) if price else None, None,
                    f"estimate from {len(items)} rendered prompt(s), answers at max_tokens")


def preview_forecast(store: Store, preview_run_id: str, n_items: int, concurrency: int, price: Price | None) -> Forecast | None:
    """Scale a finished preview's measured usage and latency to the whole plan."""
    run = get_run(store, preview_run_id)
    rows = [r for r in run_samples(store, preview_run_id, step=None) if r["error"] is None]
    outputs = [r for r in rows if r["step"] == "output"]
    if not outputs:
        return None
    per_output = len(rows) / len(outputs)  # requests per output (multi-step recipes make several)
    units = n_items * run.samples_per_item
    requests = int(units * per_output)
    pt = sum(r["prompt_tokens"] or 0 for r in rows) / len(outputs) * units
    ct = sum(r["completion_tokens"] or 0 for r in rows) / len(outputs) * units
    latency_s = sum(r["latency_ms"] or 0 for r in rows) / len(outputs) / 1000
    seconds = units * latency_s / max(1, concurrency)
    return Forecast(requests, int(pt), int(ct), price.cost(int(pt), int(ct)) if price else None, seconds,
                    f"measured on {len(outputs)} preview sample(s) of run {preview_run_id}")
