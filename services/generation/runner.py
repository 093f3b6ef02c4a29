"""Executing a run: a background worker owned by the process, asyncio inside.

One retry layer (``retry.RetryPolicy``, with the backend's budget; every attempt is counted in the
sample's ``attempts``), an explicit timeout per request and a deadline per item, an adaptive
concurrency limit (``pacing``: halved on 429s, raised again on successes, up to the configured
one), RPM/TPM throttling and a budget cap.
Samples are written as they arrive, in batches (the first after 0.1 s, then spaced so that writing
takes about a twentieth of the time, at most 1 s apart, sooner when many rows wait) under
deterministic keys, so a resume generates only what is missing. A quota error (HTTP 429
``insufficient_quota``) or a wrong key/path/model stops the run instead of failing every item.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import openai

from services.core.clock import utc_now
from services.core.errors import StudioError
from services.core.store import Store
from services.generation.backends import ChatBackend, Completion, describe_error, is_quota_error
from services.generation.pacing import AdaptiveConcurrency, LiveState
from services.generation.retry import RetryPolicy, Tally
from services.generation.run_store import (
    Price,
    add_event,
    delete_failed,
    existing_values,
    get_price,
    get_run,
    insert_samples,
    mark_interrupted,
    sample_key,
    set_status,
)
from services.generation.steps import ColumnRenderer
from services.recipes.columns import Column, output_column, pairwise_value, validate_answer, value_text, vote
from services.recipes.plan import PlanItem
from services.recipes.plan_store import load_plan_items
from services.recipes.templating import TemplateProblem
from services.recipes.version_store import load_version

# Each write costs DuckDB a fixed ~10-20 ms of CPU whatever its size (measured on 2 cores), which at
# a few dozen items a second was the runner's largest cost per item. So rows are written in batches
# spaced FLUSH_SPACING times the last write's duration, between FLUSH_EVERY_S and FLUSH_MAX_S (what
# a kill -9 can lose at most), or as soon as FLUSH_ROWS are waiting.
FLUSH_EVERY_S = 0.1
FLUSH_MAX_S = 1.0
FLUSH_SPACING = 20
FLUSH_ROWS = 256
CANCEL_POLL_S = 0.05
_dumps = json.JSONEncoder(ensure_ascii=False).encode  # built once: json.dumps(..., ensure_ascii=False) builds one per call


@dataclass
class RunSettings:
    concurrency: int = 4  # the ceiling: the pacer lowers it on 429s and raises it back
    rpm: int | None = None  # requests per window
    tpm: int | None = None  # tokens per window (estimated before, as the provider does)
    timeout_s: float = 60.0  # per request, enforced by the client
    max_retries: int = 2  # retries per request (the backend's own budget wins when it has one)
    item_deadline_s: float | None = None  # per unit of work (one request incl. its retries)
    window_s: float = 60.0  # throttle window (60 s = per minute; tests shorten it)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RunSettings:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


class Throttle:
    """Requests and tokens per sliding window; ``acquire`` waits until one more fits."""

    def __init__(self, rpm: int | None, tpm: int | None, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.rpm, self.tpm, self.window_s, self.clock = rpm, tpm, window_s, clock
        self._events: deque[tuple[float, int]] = deque()
        self._tokens = 0

    def _prune(self, t: float) -> None:
        while self._events and self._events[0][0] <= t - self.window_s:
            self._tokens -= self._events.popleft()[1]

    def try_acquire(self, tokens: int) -> float:
        """Record the request and return 0, or return how long to wait before trying again."""
        if self.rpm is None and self.tpm is None:
            return 0.0
        t = self.clock()
        self._prune(t)
        fits_r = self.rpm is None or len(self._events) < self.rpm
        fits_t = self.tpm is None or not self._events or self._tokens + tokens <= self.tpm
        if fits_r and fits_t:
            self._events.append((t, tokens))
            self._tokens += tokens
            return 0.0
        return max(0.005, self._events[0][0] + self.window_s - t)

    async def acquire(self, tokens: int) -> None:
        while (wait := self.try_acquire(tokens)) > 0:
            await asyncio.sleep(min(wait, 0.25))


class RunStop(StudioError):
    """Stop the whole run (quota, unauthorised, wrong path or model)."""

    title = "The run was stopped"


@dataclass
class Outcome:
    status: str
    message: str | None = None
    generated: int = 0
    failed: int = 0
    cost_usd: float = 0.0


def structured_format(backend: str, name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The ``response_format`` that makes a backend answer JSON of this schema. The built-in server
    (llama-cpp-python) refuses ``json_schema`` with HTTP 500 and constrains decoding to the schema
    given as ``{"type": "json_object", "schema": ...}``; OpenAI and most servers take ``json_schema``.
    The answer is validated either way (the schema is also in the system message)."""
    if backend in ("local", "llamacpp"):
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


def stored_value(col: Column, text: str | None, value: str | None) -> Any:
    """A column's value as it was written before an interruption."""
    return json.loads(value) if value is not None else text


def estimate_tokens(messages: list[dict[str, str]], max_tokens: int) -> int:
    return sum(len(m.get("content", "")) for m in messages) // 4 + max_tokens


def prompt_token_bound(messages: list[dict[str, str]]) -> int:
    """An upper bound on a prompt's tokens: a byte-level BPE token covers at least one byte, plus the
    chat format's few tokens per message. Loose on purpose: the budget must hold whatever the tokenizer."""
    return sum(len(m.get("content", "").encode("utf-8")) + 8 for m in messages) + 8


def worst_case_cost(price: Price, messages: list[dict[str, str]], max_tokens: int) -> float:
    """The most one request can cost: every byte a prompt token and the completion at max_tokens."""
    return price.cost(prompt_token_bound(messages), max_tokens)


class _OverBudget(StudioError):
    """Inside a unit: the budget cap leaves no room for its next request (the run is stopping)."""

    title = "Stopped at the budget cap"


@dataclass
class _State:
    generated: int = 0
    failed: int = 0
    spent: float = 0.0
    reserved: float = 0.0  # worst-case cost of the requests in flight
    stop: str | None = None  # why no new work is started
    stop_status: str = "failed"
    buffer: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # run events waiting for the next flush


def _retry_path(backend: ChatBackend) -> tuple[Callable[..., Any], RetryPolicy]:
    """One attempt and the policy that repeats it: the backend's own when it offers them; a backend
    that does not (a fake, a wrapper) is one attempt as far as the run can tell."""
    attempt, policy = getattr(backend, "attempt", None), getattr(backend, "retry", None)
    if attempt is not None and isinstance(policy, RetryPolicy):
        return attempt, policy
    return backend.complete, RetryPolicy(0)


async def execute_run(store: Store, run_id: str, backend: ChatBackend, cancel: threading.Event | None = None,
                      live: LiveState | None = None) -> Outcome:
    """Generate every missing sample of a run; returns how it ended (also written to the run).
    ``live`` (optional) is kept up to date with the concurrency allowed now and the 429s seen."""
    cancel = cancel or threading.Event()
    run = get_run(store, run_id)
    settings = RunSettings.from_json(run.settings)
    recipe = load_version(store, run.recipe_hash)
    items = load_plan_items(store, run.plan_id, limit=run.item_limit)
    renderer = ColumnRenderer(recipe)
    out_name = output_column(recipe)  # None: a real column is the output
    final = [c.name for c in renderer.columns] + (["output"] if out_name is not None else [])
    price = get_price(store, run.model) or Price()
    retried = delete_failed(store, run_id)
    have = existing_values(store, run_id)
    state = _State(spent=float(store.scalar("SELECT coalesce(sum(cost_usd), 0) FROM samples WHERE run_id = ?", [run_id])))
    units = [(it, s) for it in items for s in range(run.samples_per_item)
             if any(sample_key(run_id, it.key, s, c) not in have for c in final)]
    set_status(store, run_id, "running", started=True)
    add_event(store, run_id, "started", f"{len(units)} sample(s) to generate" + (f", retrying {retried} failed" if retried else "")
              + f"; concurrency {settings.concurrency}")
    throttle = Throttle(settings.rpm, settings.tpm, settings.window_s)
    throttled = settings.rpm is not None or settings.tpm is not None
    per_request = estimate_tokens(units[0][0].messages, int(run.params.get("max_tokens", 256))) if units else 0
    pacer = AdaptiveConcurrency(settings.concurrency, tokens_per_request=per_request, live=live, on_change=state.notes.append)
    attempt_once, policy = _retry_path(backend)
    budget = run.budget_usd
    if budget is not None and state.spent >= budget:
        state.stop, state.stop_status = f"The budget cap (${budget:.4f}) was already reached.", "cancelled"
    queue = iter(units)

    flush_now = asyncio.Event()  # set when FLUSH_ROWS rows are waiting

    def keep(r: dict[str, Any]) -> None:
        state.buffer.append(r)
        if len(state.buffer) >= FLUSH_ROWS:
            flush_now.set()

    constant = {"run_id": run_id, "plan_id": run.plan_id, "recipe_hash": run.recipe_hash, "model": run.model}

    def row(item: PlanItem, s: int, step: str, msgs: list[dict[str, str]], params: dict[str, Any], res: Completion | None,
            error: str | None, latency_ms: float | None, attempts: int = 0, kind: str = "text", value: Any = None) -> dict[str, Any]:
        return {**constant, "column_kind": kind, "value": None if value is None else _dumps(value),
            "sample_key": sample_key(run_id, item.key, s, step), "item_idx": item.index, "item_key": item.key, "sample_idx": s,
            "step": step, "condition": item.condition, "demo_ids": item.demo_ids, "messages": _dumps(msgs),
            "text": res.text if res else None, "params": json.dumps(params),
            "prompt_tokens": res.prompt_tokens if res else None, "completion_tokens": res.completion_tokens if res else None,
            "latency_ms": latency_ms, "cost_usd": price.cost(res.prompt_tokens, res.completion_tokens) if res else None,
            "finish_reason": res.finish_reason if res else None, "error": error, "attempts": attempts, "created_at": utc_now(),
        }

    async def call(msgs: list[dict[str, str]], params: dict[str, Any]) -> tuple[Completion | None, str | None, float, int]:
        """(completion or None, error, latency of the last attempt, attempts made)."""
        tokens = estimate_tokens(msgs, params.get("max_tokens", 256)) if throttled else 0
        tally = Tally()
        t0 = time.perf_counter()

        async def once() -> Completion:
            nonlocal t0
            if throttled:
                await throttle.acquire(tokens)  # every attempt is a request the provider counts
            t0 = time.perf_counter()
            return await attempt_once(msgs, params)

        try:
            coro = policy.run(once, pacer=pacer, tally=tally)
            res = await (asyncio.wait_for(coro, settings.item_deadline_s) if settings.item_deadline_s else coro)
            return res, None, res.latency_ms, tally.attempts
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_quota_error(exc) or isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError | openai.NotFoundError):
                raise RunStop(describe_error(exc, run.base_url or "")) from exc
            return None, describe_error(exc, run.base_url or ""), (time.perf_counter() - t0) * 1000, tally.attempts

    released = asyncio.Condition()  # signalled when a reservation ends or the run stops

    async def paid_call(msgs: list[dict[str, str]], params: dict[str, Any]
                        ) -> tuple[Completion | None, str | None, float, int] | None:
        """``call`` under the budget: a request starts only if what is spent, what is in flight and
        its own worst case all fit under the cap; None (and the run stops) when it does not."""
        if budget is None:  # nothing to reserve: no lock and no wake-ups per request
            answer = await call(msgs, params)
            if answer[0] is not None:
                state.spent += price.cost(answer[0].prompt_tokens, answer[0].completion_tokens)
            return answer
        hold = worst_case_cost(price, msgs, int(params.get("max_tokens") or 256))
        async with released:
            # Wait while requests in flight might use the room; stop once even an idle run would not fit.
            await released.wait_for(lambda: budget is None or state.spent + state.reserved + hold <= budget
                                    or state.spent + hold > budget or state.stop is not None)
            if budget is not None and (state.stop is not None or state.spent + hold > budget):
                if state.stop is None:
                    state.stop = (f"Stopped at the budget cap: ${state.spent:.4f} spent of ${budget:.4f}; "
                                  f"the next request could cost up to ${hold:.4f}.")
                    state.stop_status = "cancelled"
                released.notify_all()
                return None
            state.reserved += hold
        answer = None
        try:
            answer = await call(msgs, params)
            return answer
        finally:
            # The cost is booked in the same step as the reservation ends, so no waiter sees neither.
            if answer is not None and answer[0] is not None:
                state.spent += price.cost(answer[0].prompt_tokens, answer[0].completion_tokens)
            state.reserved -= hold
            async with released:
                released.notify_all()

    def fail_unit(item: PlanItem, s: int, params: dict[str, Any], message: str, written: bool = False) -> None:
        """The sample's output row says why it has no text (``written``: the failed call was the
        output column's own, whose row with its error is buffered already)."""
        if not written:
            keep(row(item, s, "output", item.messages, params, None, message, None))
        state.failed += 1

    async def ask(col: Column, sub: str, j: int, item: PlanItem, s: int, msgs: list[dict[str, str]],
                  params: dict[str, Any]) -> tuple[Any, str | None, dict[str, Any]]:
        """One call of a column (with its validation retries), its row buffered; (value, error, row).
        Raises ``_OverBudget`` when the budget cap leaves no room for the next request."""
        p = dict(params)
        if col.temperature is not None:
            p["temperature"] = col.temperature
        if col.temperatures:
            p["temperature"] = col.temperatures[j]
        if col.max_tokens is not None:
            p["max_tokens"] = col.max_tokens
        if j and p.get("seed") is not None:
            p["seed"] = int(p["seed"]) + 1000 * j  # votes and candidates must not repeat each other
        schema = renderer.schema(col)
        if schema is not None:
            p["response_format"] = structured_format(run.backend, col.name, schema)
        tries_total, tokens_in, tokens_out, spent = 0, 0, 0, 0.0
        value: Any = None
        err: str | None = None
        res: Completion | None = None
        for k in range(1 + (col.retries if schema is not None else 0)):
            if k and p.get("seed") is not None:
                p["seed"] = int(p["seed"]) + 1  # the same seed would give the same invalid answer
            # Sent as a raw body field: the client's typed transform of a nested schema cost more
            # CPU than the rest of a request (bench/columns.py); the provider reads the same JSON.
            sent = {k: v for k, v in p.items() if k != "response_format"}
            if "response_format" in p:
                sent["extra_body"] = {"response_format": p["response_format"]}
            if (answer := await paid_call(msgs, sent)) is None:
                raise _OverBudget  # this answer was not asked: the sample is left missing
            res, err, lat, tries = answer
            tries_total += tries
            if res is None:
                break
            tokens_in += res.prompt_tokens or 0
            tokens_out += res.completion_tokens or 0
            spent += price.cost(res.prompt_tokens, res.completion_tokens)  # paid_call booked it on the run
            if schema is None:
                value, err = res.text, None
                break
            try:
                value, err = validate_answer(col, res.text, renderer.validator(col)), None
                break
            except ValueError as exc:
                err = f"answer {k + 1} of {1 + col.retries} is invalid: {exc}"
        r = row(item, s, sub, msgs, p, res, err, lat, tries_total, kind=col.kind,
                value=value if (err is None and schema is not None) else None)
        if res is not None:  # every paid attempt is on the row
            r.update(prompt_tokens=tokens_in, completion_tokens=tokens_out, cost_usd=spent)
        keep(r)
        return (value, None, r) if err is None else (None, err, r)

    async def do_unit(item: PlanItem, s: int) -> None:
        params = dict(run.params)
        if params.get("seed") is not None and s:
            params["seed"] = int(params["seed"]) + s  # same seed would repeat the first sample
        values: dict[str, Any] = {}
        prompts: dict[str, str] = {}
        shown: dict[str, list[dict[str, str]]] = {}
        base: dict[str, Any] | None = None  # the item's template context, built once for all its columns
        for col in renderer.columns:
            key = sample_key(run_id, item.key, s, col.name)
            if key in have:  # generated before an interruption: never paid twice
                values[col.name] = stored_value(col, *have[key])
                continue
            try:
                base = base if base is not None else renderer.base_context(item)
                if col.kind == "expression":
                    text = renderer.expression(col, item, values, base)
                    keep(row(item, s, col.name, [], params, Completion(text, None, None, None, 0.0), None, None,
                                            kind=col.kind))
                    values[col.name] = text
                    continue
                msgs = renderer.messages(col, item, values, prompts, base)
            except TemplateProblem as exc:
                fail_unit(item, s, params, f"column '{col.name}': {exc}")
                return
            prompts[col.name] = msgs[-1]["content"]
            shown[col.name] = msgs
            got: list[Any] = []
            errors: list[str] = []
            subs = col.sub_names()
            all_needed = col.kind in ("candidates", "pairwise")  # every answer, not a vote of those that came
            for j, sub in enumerate(subs):
                sub_key = sample_key(run_id, item.key, s, sub)
                if sub != col.name and sub_key in have:
                    got.append(stored_value(col, *have[sub_key]))
                    continue
                asked = msgs
                if col.kind == "pairwise" and j == 1:  # the same judge with the candidates swapped (B/A)
                    try:
                        asked = renderer.messages(col, item, {**values, col.of or "": values[col.of or ""][::-1]}, prompts, base)
                    except TemplateProblem as exc:
                        fail_unit(item, s, params, f"column '{col.name}': {exc}")
                        return
                try:
                    value, err, last = await ask(col, sub, j, item, s, asked, params)
                except _OverBudget:
                    return  # over the budget: left missing, a resume with a larger cap generates it
                if err is None:
                    got.append(value)
                else:
                    errors.append(err)
                    if all_needed or len(subs) == 1:
                        break
            if not got or (all_needed and errors):
                fail_unit(item, s, params, f"column '{col.name}' failed: {errors[0] if errors else 'no answer'}",
                          written=col.name == "output" and len(subs) == 1)
                return
            if col.kind == "pairwise":
                value = pairwise_value(col, got, values[col.of or ""], prompts.get(col.of or "", ""))
            elif len(subs) > 1:
                value = got if col.kind == "candidates" else vote(col, got)
            else:
                value = got[0]
            if len(subs) > 1:  # the column's own row: the candidates, the vote of its answers, or both orders' verdict
                keep(row(item, s, col.name, msgs, params, Completion(value_text(value), None, None, None, 0.0), None, None,
                         kind=col.kind, value=value))
            elif col.kind == "pairwise":
                last["value"] = _dumps(value)
            values[col.name] = value
        if out_name is not None:
            text = value_text(values[out_name])
            keep(row(item, s, "output", shown.get(out_name, item.messages), params,
                                    Completion(text, None, None, None, 0.0), None, None, kind="output"))
        state.generated += 1

    async def worker() -> None:
        while state.stop is None:
            unit = next(queue, None)
            if unit is None:
                return
            try:
                await do_unit(*unit)
            except RunStop as exc:
                if state.stop is None:
                    state.stop, state.stop_status = str(exc), "failed"

    def write(batch: list[dict[str, Any]], notes: list[str]) -> None:
        insert_samples(store, batch, new_keys=True)  # each key is generated once per execution
        for note in notes:
            add_event(store, run_id, "paced", note)

    async def flush() -> bool:
        batch, state.buffer = state.buffer, []
        notes = list(state.notes)
        state.notes.clear()  # the same list: the pacer appends to it
        if batch or notes:
            await asyncio.to_thread(write, batch, notes)
        return bool(batch)

    writer_stop = asyncio.Event()

    async def flusher() -> None:
        # Never cancelled mid-write: it stops when asked, after its current flush.
        wait_s = FLUSH_EVERY_S
        while not writer_stop.is_set():
            woken = asyncio.ensure_future(flush_now.wait())
            await asyncio.wait([woken, stopping], timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()
            flush_now.clear()
            t0 = time.perf_counter()
            if await flush():
                wait_s = min(FLUSH_MAX_S, max(FLUSH_EVERY_S, FLUSH_SPACING * (time.perf_counter() - t0)))

    stopping = asyncio.ensure_future(writer_stop.wait())
    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, settings.concurrency))]
    writer = asyncio.ensure_future(flusher())
    all_done = asyncio.ensure_future(asyncio.gather(*workers, return_exceptions=True))
    cancelled = False
    try:
        while not all_done.done():
            if cancel.is_set():
                cancelled = True
                for w in workers:
                    w.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await all_done
                break
            await asyncio.wait([all_done], timeout=CANCEL_POLL_S)
        errors = [r for r in (all_done.result() if not cancelled else []) if isinstance(r, BaseException)]
    finally:
        writer_stop.set()
        await writer
        await flush()
    if errors:
        raise errors[0]
    if cancelled:
        outcome = Outcome("cancelled", "Cancelled by the user. Resume to generate what is missing.")
    elif state.stop is not None:
        outcome = Outcome(state.stop_status, state.stop)
    else:
        outcome = Outcome("finished", None)
    outcome.generated, outcome.failed, outcome.cost_usd = state.generated, state.failed, state.spent
    set_status(store, run_id, outcome.status, outcome.message, finished=True)
    summary = f"{state.generated} generated, {state.failed} failed"
    if pacer.live.rate_limited:
        summary += f"; {pacer.live.rate_limited} rate-limit answer(s) (429), concurrency went down to {pacer.live.lowest}"
    add_event(store, run_id, outcome.status, outcome.message or summary)
    with contextlib.suppress(Exception):  # best effort: DuckDB refuses while other transactions are open
        store.checkpoint()
    return outcome


def run_blocking(store: Store, run_id: str, backend_factory: Callable[[], ChatBackend], cancel: threading.Event | None = None,
                 live: LiveState | None = None) -> Outcome:
    """Run to the end in this thread (the CLI and the worker thread use it)."""

    async def main() -> Outcome:
        backend = await asyncio.to_thread(backend_factory)
        try:
            return await execute_run(store, run_id, backend, cancel, live)
        finally:
            await backend.aclose()

    try:
        return asyncio.run(main())
    except Exception as exc:  # the worker must leave the run in a truthful state
        message = describe_error(exc)
        with contextlib.suppress(Exception):
            set_status(store, run_id, "failed", message, finished=True)
            add_event(store, run_id, "failed", message)
        return Outcome("failed", message)


@dataclass
class Job:
    run_id: str
    thread: threading.Thread
    cancel: threading.Event
    outcome: Outcome | None = None
    live: LiveState = field(default_factory=LiveState)  # concurrency now and 429s, while it runs


class JobManager:
    """The process's background workers: one thread per active run, survives page reruns."""

    def __init__(self, store: Store):
        self.store = store
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        # Only this process opens the file, so any run still 'running' has lost its worker.
        self.interrupted_at_start = mark_interrupted(store)

    def start(self, run_id: str, backend_factory: Callable[[], ChatBackend]) -> Job:
        with self._lock:
            job = self._jobs.get(run_id)
            if job and job.thread.is_alive():
                raise RuntimeError(f"run {run_id} is already running")
            set_status(self.store, run_id, "running", started=True)
            cancel = threading.Event()
            job = Job(run_id, threading.Thread(target=lambda: None, daemon=True), cancel)

            def target() -> None:
                job.outcome = run_blocking(self.store, run_id, backend_factory, cancel, job.live)

            job.thread = threading.Thread(target=target, name=f"run-{run_id}", daemon=True)
            self._jobs[run_id] = job
            job.thread.start()
            return job

    def cancel(self, run_id: str) -> bool:
        job = self._jobs.get(run_id)
        if job is None or not job.thread.is_alive():
            return False
        job.cancel.set()
        return True

    def live(self, run_id: str) -> LiveState | None:
        """The pacing of this run's worker (the last one's once it ended), or None if none ran here."""
        job = self._jobs.get(run_id)
        return job.live if job else None

    def is_active(self, run_id: str) -> bool:
        job = self._jobs.get(run_id)
        return bool(job and job.thread.is_alive())

    def wait(self, run_id: str, timeout: float | None = None) -> Outcome | None:
        job = self._jobs.get(run_id)
        if job is None:
            return None
        job.thread.join(timeout)
        return job.outcome

    def shutdown(self, timeout: float = 5.0) -> None:
        for job in list(self._jobs.values()):
            job.cancel.set()
        for job in list(self._jobs.values()):
            job.thread.join(timeout)
