"""Live against batch: the same forecast priced at the batch discount, and the 24-hour window.

The discount is the providers' listed one, with its date and source; a provider without one
(your own vLLM) has no discount, and its batch costs what its live run costs.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.generation.forecast import Forecast, Span
from services.generation.run_store import Price

# Batch price as a share of the standard price, per provider.
BATCH_SHARE = {"openai": 0.5, "anthropic": 0.5}
BATCH_SHARE_AS_OF = "2025-08-15"
BATCH_SHARE_SOURCE = ("OpenAI Batch API guide (https://platform.openai.com/docs/guides/batch: 50% discount) and Anthropic "
                      "Message Batches (https://docs.anthropic.com/en/docs/build-with-claude/batch-processing: 50% of standard prices)")
WINDOW_S = 24 * 3600  # both providers' completion window; most batches end sooner, none is promised sooner


def batch_price(price: Price | None, provider: str) -> Price | None:
    """What one request costs in a batch of this provider (the live price where it has no discount)."""
    if price is None:
        return None
    share = BATCH_SHARE.get(provider, 1.0)
    return Price(price.input_per_mtok * share, price.output_per_mtok * share)


@dataclass(frozen=True)
class BatchCompare:
    live_cost: Span | None
    batch_cost: Span | None
    live_seconds: Span | None
    window_s: int
    cost_note: str
    time_note: str


def compare(f: Forecast, provider: str, price: Price | None, *, live_time_applies: bool = True) -> BatchCompare:
    """The forecast's tokens priced live and in a batch with ``price`` (the batch's model's, which
    may not be the one the forecast was priced for); time only as the window's bound, since a
    provider says when a batch must end, not when it will. ``live_time_applies`` is False when the
    forecast's time was measured on another backend than this provider: then no live time is shown."""
    share = BATCH_SHARE.get(provider)
    live_cost = Span(price.cost(int(f.prompt_tokens.low), int(f.completion_tokens.low)),
                     price.cost(int(f.prompt_tokens.high), int(f.completion_tokens.high))) if price else None
    batch_cost = None if live_cost is None else live_cost * (share if share is not None else 1.0)
    if price is None:
        cost_note = "no price set for this model: add it to the price table to compare costs"
    elif share is None:
        cost_note = f"{provider}: no batch discount (your own hardware costs what it costs live)"
    else:
        cost_note = (f"batch at {share:.0%} of the standard price ({provider}'s listed discount as of {BATCH_SHARE_AS_OF}); "
                     "tokens as in the rough forecast")
    seconds = f.seconds if live_time_applies else None
    if provider == "vllm":
        time_note = "vllm run-batch runs on your own server: as long as the run takes there"
    elif seconds is None:
        time_note = ("no live time: " + ("nothing has measured this backend's speed yet" if live_time_applies else
                     "the forecast's time is for the backend chosen above, not this provider") + "; a batch ends within 24 h")
    elif seconds.high > WINDOW_S:
        time_note = "the live run would take longer than the batch's 24-hour window"
    else:
        time_note = "a batch ends within 24 h (usually sooner, never promised): live is faster when you need it now"
    return BatchCompare(live_cost, batch_cost, seconds, WINDOW_S, cost_note, time_note)
