"""Send a run as a provider batch, poll it, collect its results into the run, resubmit what failed.

The same exactly-once keys as a live run: a line's custom_id is its sample's key, results are
inserted once (a collect run twice adds nothing), a success replaces an earlier error of its unit,
and a line still in an open batch is never sent again. Errors (an unreadable output, an expired
batch) are raised only after every readable line has been imported, so nothing is lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.core.clock import utc_now
from services.core.errors import StudioError
from services.core.store import Store
from services.generation.batch_client import BatchClient, BatchNotReady, BatchProviderError
from services.generation.batch_forecast import batch_price
from services.generation.batch_format import (
    ANTHROPIC_MAX_TOKENS,
    BatchLine,
    BatchOutputMalformed,
    LineResult,
    run_lines,
    split_lines,
)
from services.generation.batch_store import (
    BatchInfo,
    create_batch,
    get_batch,
    list_batches,
    new_batch_id,
    open_custom_ids,
    successful_keys,
    update_batch,
    write_results,
)
from services.generation.forecast import CHARS_PER_TOKEN
from services.generation.run_store import (
    Price,
    RunInfo,
    add_event,
    delete_failed,
    get_price,
    get_run,
    progress,
    sample_key,
    set_status,
)
from services.generation.steps import OUTPUT

CHUNK = 2000  # rows per write while collecting: the progress bar moves, a crash keeps what was written


class BatchRefused(StudioError):
    title = "The batch was not sent"


class BatchExpired(StudioError):
    title = "The batch expired before it was done"


@dataclass
class SubmitReport:
    batches: list[BatchInfo]  # more than one when the run is past a provider's batch limit
    sent: int
    unrenderable: int  # lines whose template failed: written as error rows, like a live run
    cleared: int  # earlier error rows dropped so their lines are sent again
    in_flight: int  # lines left out because an open batch holds them

    @property
    def batch(self) -> BatchInfo | None:
        return self.batches[0] if self.batches else None


@dataclass
class CollectReport:
    batch: BatchInfo
    imported: int
    failed: int
    missing: int  # lines of the batch with no result at all
    problems: list[str] = field(default_factory=list)


def _row(run: RunInfo, line: BatchLine, price: Price | None, res: LineResult | None, error: str | None,
         step: str | None = None, key: str | None = None) -> dict[str, Any]:
    ok = res is not None and error is None
    return {
        "sample_key": key or line.custom_id, "run_id": run.run_id, "plan_id": run.plan_id, "item_idx": line.item.index,
        "item_key": line.item.key, "sample_idx": line.sample_idx, "step": step or line.step, "recipe_hash": run.recipe_hash,
        "condition": line.item.condition, "demo_ids": line.item.demo_ids,
        "messages": json.dumps(line.messages if line.messages is not None else line.item.messages, ensure_ascii=False),
        "text": res.text if ok else None, "model": run.model, "params": json.dumps(line.params),
        "prompt_tokens": res.prompt_tokens if ok else None, "completion_tokens": res.completion_tokens if ok else None,
        "latency_ms": None,  # a batch line has no latency of its own: forecasts never take speed from it
        "cost_usd": price.cost(res.prompt_tokens, res.completion_tokens) if ok and price else None,
        "finish_reason": res.finish_reason if ok else None, "error": error, "attempts": 1, "created_at": utc_now(),
        "_cause": line.custom_id,
    }


def _error_rows(run: RunInfo, line: BatchLine, error: str) -> list[dict[str, Any]]:
    """A failed line's rows: its own, and for an earlier step the unit's failed output (as live)."""
    rows = [_row(run, line, None, None, error)]
    if line.step != OUTPUT:
        rows.append(_row(run, line, None, None, f"step '{line.step}' failed: {error}", OUTPUT,
                         sample_key(run.run_id, line.item.key, line.sample_idx, OUTPUT)))
    return rows


def submit_batch(store: Store, run_id: str, client: BatchClient, *, base_url: str | None = None,
                 max_lines: int | None = None) -> SubmitReport:
    """Send every line of the run that has no output and is in no open batch: on a fresh run its
    whole plan, after a collect only the failed and missing lines (or a multi-step recipe's next step).
    Nothing is recorded when the provider refuses the batch. ``max_lines`` caps a batch below the
    provider's own limit."""
    run = get_run(store, run_id)
    if run.status == "running":
        raise BatchRefused(f"Run {run_id} is running live: cancel it first, then send what is missing as a batch.")
    cleared = delete_failed(store, run_id)  # an error row was never a paid output
    todo, _ = run_lines(store, run)
    held = open_custom_ids(store, run_id)
    in_flight = sum(ln.custom_id in held for ln in todo)
    todo = [ln for ln in todo if ln.custom_id not in held]
    broken = [ln for ln in todo if ln.messages is None]
    good = [ln for ln in todo if ln.messages is not None]
    if broken:
        write_results(store, run_id, [], [r for ln in broken for r in _error_rows(run, ln, ln.problem or "cannot render")])
    if not good:
        return SubmitReport([], 0, len(broken), cleared, in_flight)
    if run.budget_usd is not None:
        _check_budget(store, run, good, client.provider)
    sent: list[BatchInfo] = []
    for part in split_lines(good, client.provider, run.model, max_lines):
        # each part is recorded as soon as the provider has it: a refusal later leaves its lines to send again
        batch_id = new_batch_id()
        try:
            remote_id, remote = client.submit(batch_id, part, run.model)
        except StudioError as exc:
            if not sent:
                raise
            raise type(exc)(f"{exc} ({len(sent)} batch(es) of {sum(b.n_lines for b in sent)} line(s) were sent and recorded "
                            "before this; the rest can be sent again)") from exc
        input_path = output_path = None
        if hasattr(client, "paths"):  # a file for vllm run-batch
            src, dst = client.paths(batch_id)
            input_path, output_path = str(src), str(dst)
        batch = create_batch(store, batch_id=batch_id, run_id=run_id, provider=client.provider, base_url=base_url,
                             remote_id=remote_id, model=run.model, status=remote.status, custom_ids=[ln.custom_id for ln in part],
                             input_path=input_path, output_path=output_path)
        if remote.counts:
            batch = update_batch(store, batch_id, counts=remote.counts)
        sent.append(batch)
        add_event(store, run_id, "batch", f"batch {batch_id}: {len(part)} line(s) sent to {client.provider}"
                  + (f" as {remote_id}" if remote_id else f", file {input_path}"))
    set_status(store, run_id, run.status, run.error, started=True)
    return SubmitReport(sent, len(good), len(broken), cleared, in_flight)


def worst_case_usd(lines: list[BatchLine], price: Price) -> float:
    """What the lines cost at most: prompts at 3 characters per token (the short end of English
    text), every answer at max_tokens."""
    return sum(price.cost(int(sum(len(m["content"]) for m in ln.messages or []) / CHARS_PER_TOKEN[1]),
                          int(ln.params.get("max_tokens") or ANTHROPIC_MAX_TOKENS)) for ln in lines)


def _check_budget(store: Store, run: RunInfo, lines: list[BatchLine], provider: str) -> None:
    """A batch cannot stop at a budget cap once sent: refuse one whose worst case could pass it."""
    price = batch_price(get_price(store, run.model), provider)
    if price is None:
        raise BatchRefused(f"Run {run.run_id} has a budget cap of ${run.budget_usd:.4g} but '{run.model}' has no price, "
                           "so the batch's cost could not be bounded. Set its price, or send it without a budget.")
    spent = float(store.scalar("SELECT coalesce(sum(cost_usd), 0) FROM samples WHERE run_id = ?", [run.run_id]) or 0)
    worst = worst_case_usd(lines, price)
    if spent + worst > run.budget_usd:
        raise BatchRefused(f"A batch cannot stop at a budget cap once sent: these {len(lines)} line(s) could cost up to "
                           f"${worst:.4g} (every answer at max_tokens), and ${spent:.4g} of the ${run.budget_usd:.4g} cap is spent. "
                           "Nothing was sent. Send fewer items, raise the cap, or run it live (a live run stops at the cap).")


def refresh(store: Store, batch_id: str, client: BatchClient) -> BatchInfo:
    """Ask the provider where the batch stands and record it."""
    b = get_batch(store, batch_id)
    if b.collected_at is not None:
        return b
    remote = client.poll(b.remote_id, b.output_path, b.n_lines)
    return update_batch(store, batch_id, status=remote.status, counts=remote.counts or None, error=remote.message)


def collect_batch(store: Store, batch_id: str, client: BatchClient,
                  on_progress: Callable[[int, int], None] | None = None) -> CollectReport:
    """Download a finished batch and import its results into the run, exactly once."""
    b = get_batch(store, batch_id)
    run = get_run(store, b.run_id)
    remote = client.poll(b.remote_id, b.output_path, b.n_lines)
    b = update_batch(store, batch_id, status=remote.status, counts=remote.counts or None, error=remote.message)
    if remote.dead:
        update_batch(store, batch_id, status=remote.status, error=remote.message, collected=True)
        add_event(store, run.run_id, "batch", f"batch {batch_id} {remote.status}: nothing came back")
        raise BatchProviderError(f"Batch {batch_id} {remote.status} at the provider: {remote.message or 'no results'}. "
                                 "Nothing came back and nothing was lost; resubmit to send its lines again.")
    if not remote.done:
        raise BatchNotReady(f"Batch {batch_id} is {remote.status}" + (f" ({_counts(remote.counts)})" if remote.counts else "")
                            + (f": {remote.message}" if remote.message else "") + ". Collect again later.")
    results, bad = client.download(remote, b.output_path)
    if bad and not results:
        update_batch(store, batch_id, error=f"unreadable output: {bad[0]}", collected=True)
        raise BatchOutputMalformed(f"No line of batch {batch_id}'s output could be read ({'; '.join(bad[:3])}). "
                                   "Nothing was imported and nothing already collected was touched; resubmit to send its lines again.")
    ours = set(b.custom_ids)
    _, known = run_lines(store, run)
    before = successful_keys(store, run.run_id)
    price = batch_price(get_price(store, run.model), b.provider)
    ok_rows, err_rows, seen, failed = [], [], set(), 0
    for r in results:
        line = known.get(r.custom_id)
        if r.custom_id not in ours or line is None:
            bad.append(f"custom_id {r.custom_id[:40]!r} is not a line of batch {batch_id}")
            continue
        seen.add(r.custom_id)
        if r.custom_id in before:
            continue  # collected before: adds nothing
        if r.error is None:
            ok_rows.append(_row(run, line, price, r, None))
        else:
            failed += 1
            err_rows += _error_rows(run, line, r.error)
    total, done = len(ok_rows) + len(err_rows), 0
    for rows, errs in [(ok_rows[i:i + CHUNK], []) for i in range(0, len(ok_rows), CHUNK)] + \
            [([], err_rows[i:i + CHUNK]) for i in range(0, len(err_rows), CHUNK)]:
        write_results(store, run.run_id, rows, errs)
        done += len(rows) + len(errs)
        if on_progress:
            on_progress(done, total)
    imported = len(successful_keys(store, run.run_id) - before)
    missing = len(ours - seen)
    summary = f"{imported} imported, {failed} failed" + (f", {missing} with no result" if missing else "")
    problems = list(bad)
    expired = remote.status == "expired" or bool(remote.counts.get("expired"))
    b = update_batch(store, batch_id, imported=b.imported + imported, failed=failed, collected=True,
                     error="; ".join(problems[:3]) or remote.message)
    add_event(store, run.run_id, "batch", f"batch {batch_id} collected: {summary}")
    _settle_run(store, run, batch_id, summary)
    if problems:
        raise BatchOutputMalformed(f"{len(problems)} line(s) of batch {batch_id}'s output could not be read ({'; '.join(problems[:3])}). "
                                   f"The readable lines were imported and are kept ({summary}); resubmit to send the rest again.")
    if expired:
        raise BatchExpired(f"Batch {batch_id} expired: the 24-hour window ended before every line was done. "
                           f"What came back was imported and is kept ({summary}); resubmit to send the rest.")
    return CollectReport(b, imported, failed, missing)


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v is not None)


def _settle_run(store: Store, run: RunInfo, batch_id: str, summary: str) -> None:
    """Once no batch of the run is open: finished when every output is there, else resumable."""
    if any(b.is_open for b in list_batches(store, run.run_id)):
        return
    p = progress(store, get_run(store, run.run_id))
    if p.done >= p.total:
        set_status(store, run.run_id, "finished", None, finished=True)
    else:
        left = p.total - p.done
        set_status(store, run.run_id, "interrupted",
                   f"Batch {batch_id} collected ({summary}); {left} output(s) still to make (failed or missing lines, or a "
                   "multi-step recipe's next step): resubmit as a batch, or resume live.", finished=True)



def live_resume_refusal(store: Store, run: RunInfo, *, pay_twice: bool = False) -> str | None:
    """Why the page's live Resume may not run this run now, or None.

    A run with open batches would send their lines live and pay for them twice, unless the user
    said so (``pay_twice``). An Anthropic batch run resumes live on the ``anthropic`` preset (its
    OpenAI-compatible endpoint, with $ANTHROPIC_API_KEY): the run records no base URL, so the
    resume never goes to another endpoint or with another provider's key."""
    held = [b for b in list_batches(store, run.run_id) if b.is_open]
    if held and not pay_twice:
        n = len({cid for b in held for cid in b.custom_ids})
        return (f"{n} line(s) of run {run.run_id} are in open batch(es) {', '.join(b.batch_id for b in held)}, paid for there: "
                "a live resume would send them again and pay twice. Wait for the batch to be collected (it is polled in the "
                "background), collect it now, or tick 'Resume live anyway' in the batch panel below.")
    return None
