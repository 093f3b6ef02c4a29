"""Poll open provider batches in the background and collect each one when it ends.

A ``BatchPoller`` (one per process, built by resources.get_batch_poller) owns one daemon thread,
not the script thread, so it survives a browser reload and keeps going with no page open. On
creation it reads the ``batches`` table, so a restarted studio picks up the batches still open.
Every check is ``collect_batch``: one poll that records the provider's status, and when the batch
has ended, the import of its results exactly once (a collect run twice adds nothing). A batch not
yet done is polled again after an interval that grows with its age; a failed check (a refused
key, a provider down) is recorded on the batch in words and backed off, and never ends the thread.

A vLLM file batch is polled the same way: its output file counts as done only when it is whole
(a line per input line, a whole last line, unchanged between two looks) or has a ``.done`` marker
(``batch_client.VllmFile``), so a file ``vllm run-batch`` is still writing is never collected.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from services.core.clock import utc_now
from services.core.errors import StudioError
from services.core.store import Store
from services.generation.batch_client import PROVIDER_INFO, BatchClient, BatchNotReady, client_for, key_for
from services.generation.batch_jobs import collect_batch
from services.generation.batch_store import BatchInfo, get_batch, open_batches, update_batch


@dataclass
class PollState:
    """What the poller knows of one open batch (in memory; the table keeps status and error)."""

    batch_id: str
    doing: str = "waiting for its first check"
    checks: int = 0  # checks that reached the provider and found the batch still running
    failures: int = 0  # consecutive failed checks
    last_polled: datetime | None = None
    next_at: float = 0.0  # monotonic time of the next check
    next_wall: datetime | None = None
    last_error: str | None = None
    outcome: str | None = None  # set once the batch is collected


def _client(b: BatchInfo, secrets: dict[str, Any], folder: Path | None = None) -> BatchClient:
    return client_for(b.provider, base_url=b.base_url, secrets=secrets, folder=folder)


@dataclass
class BatchPoller:
    """``interval_s`` is the first wait; a running batch waits ``growth`` times longer each check, up
    to ``max_interval_s``; a failed check waits ``interval_s * 2**failures``, up to ``error_max_s``."""

    store: Store
    secrets: dict[str, Any] = field(default_factory=dict)
    interval_s: float = 60.0
    max_interval_s: float = 900.0
    error_max_s: float = 1800.0
    growth: float = 1.5
    tick_s: float = 1.0  # how often the thread looks for due batches
    warning: str | None = None  # a setting that could not be used, said on the page

    def __post_init__(self) -> None:
        self._states: dict[str, PollState] = {}
        self._lock = threading.Lock()
        self._batch_locks: dict[str, threading.Lock] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.note: str | None = None  # a problem with the poller itself (the table could not be read)
        self.collected: list[str] = []  # batch ids collected by this poller, oldest first

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> BatchPoller:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="batch-poller", daemon=True)
            self._thread.start()
            # stopped before the interpreter tears down: a daemon thread killed inside a DuckDB call aborts the process
            atexit.register(self.stop)
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        atexit.unregister(self.stop)

    def set_secrets(self, secrets: dict[str, Any]) -> None:
        """Keys from st.secrets, as the page reads them (held in memory only, never written). When
        they changed, batches whose checks failed are tried again now rather than after their backoff."""
        if dict(secrets) == self.secrets:
            return
        self.secrets = dict(secrets)
        with self._lock:
            failed = [s.batch_id for s in self._states.values() if s.failures]
        for bid in failed:
            self.poke(bid)

    def poke(self, batch_id: str | None = None) -> None:
        """Check this batch (or every open one) now, skipping its wait; clears an error backoff."""
        with self._lock:
            for s in self._states.values():
                if batch_id is None or s.batch_id == batch_id:
                    s.next_at, s.next_wall = 0.0, None
        self._wake.set()

    # -- what the page shows --------------------------------------------------------------
    def state(self, batch_id: str) -> PollState | None:
        with self._lock:
            return self._states.get(batch_id)

    @contextmanager
    def holding(self, batch_id: str) -> Iterator[None]:
        """Hold the batch while a page's button collects it, so the poller does not at the same moment."""
        with self._lock:
            lock = self._batch_locks.setdefault(batch_id, threading.Lock())
        with lock:
            yield

    # -- the thread -----------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
                self.note = None
            except duckdb.ConnectionException:  # the store's connection is closed: nothing more to do with it
                return
            except Exception as exc:  # the table could not be read: said on the page, tried again next tick
                self.note = f"The batch poller could not read the batches table: {type(exc).__name__}: {exc}"
            self._wake.wait(self.tick_s)
            self._wake.clear()

    def tick(self) -> int:
        """Check every open batch that is due; returns how many were checked."""
        batches = open_batches(self.store)
        now = time.monotonic()
        with self._lock:
            for b in batches:
                if b.batch_id not in self._states:
                    # first check one interval after its last write: a batch just sent waits, one a restart found is due now
                    age = max(0.0, (utc_now() - b.updated_at).total_seconds())
                    wait = max(0.0, self.interval_s - age)
                    self._states[b.batch_id] = PollState(b.batch_id, next_at=now + wait,
                                                         next_wall=utc_now() + timedelta(seconds=wait))
            ids = {b.batch_id for b in batches}
            for gone in [k for k, s in self._states.items() if k not in ids and s.outcome is None]:
                del self._states[gone]  # collected by a button, or gone from the table
            due = [b for b in batches if self._states[b.batch_id].next_at <= now]
        for b in due:
            if self._stop.is_set():
                break
            try:
                self._check(b)
            except duckdb.ConnectionException:
                raise
            except Exception as exc:  # one batch's trouble (its row unreadable) never stops the others
                self._failed(self._states[b.batch_id], f"{type(exc).__name__}: {exc}")
        return len(due)

    def _check(self, b: BatchInfo) -> None:
        s = self._states[b.batch_id]
        with self.holding(b.batch_id):
            b = get_batch(self.store, b.batch_id)
            if not b.is_open:  # a button collected it while we waited
                return
            env = PROVIDER_INFO[b.provider].key_env
            if env and not key_for(b.provider, secrets=self.secrets):
                self._failed(s, f"No key for {PROVIDER_INFO[b.provider].label}: set ${env} in the environment or st.secrets "
                                "(then restart the studio, or open the Generate page). Nothing was lost.")
                return
            s.doing = "checking with the provider"

            def tick(done: int, total: int) -> None:
                s.doing = f"collecting: {done:,} of {total:,} row(s) written"

            try:
                client = _client(b, self.secrets, self.store.work_dir / "batches")
                rep = collect_batch(self.store, b.batch_id, client, on_progress=tick)
                self._collected(s, f"collected: {rep.imported} imported, {rep.failed} failed"
                                   + (f", {rep.missing} with no result" if rep.missing else ""))
            except BatchNotReady:
                s.checks += 1
                s.failures, s.last_error = 0, None
                self._schedule(s, min(self.max_interval_s, self.interval_s * self.growth ** s.checks), "waiting for the provider")
            except Exception as exc:  # never ends the thread: recorded on the batch, backed off
                msg = f"{exc.title}. {exc}" if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
                try:
                    after = get_batch(self.store, b.batch_id)
                except Exception:
                    after = b
                if after.collected_at is not None:  # ended with a problem: what came back is imported, the rest can be resubmitted
                    self._collected(s, f"collected with a problem: {msg}")
                else:
                    self._failed(s, msg)

    def _schedule(self, s: PollState, wait: float, doing: str) -> None:
        s.last_polled = utc_now()
        s.next_at = time.monotonic() + wait
        s.next_wall = s.last_polled + timedelta(seconds=wait)
        s.doing = doing

    def _collected(self, s: PollState, outcome: str) -> None:
        s.last_polled, s.outcome, s.doing = utc_now(), outcome, outcome
        self.collected.append(s.batch_id)

    def _failed(self, s: PollState, msg: str) -> None:
        s.failures += 1
        wait = min(self.error_max_s, self.interval_s * 2 ** s.failures)
        s.last_error = msg
        self._schedule(s, wait, f"backing off after {s.failures} failed check(s)")
        note = f"Check {s.failures} failed ({s.last_polled:%H:%M:%S} UTC), next try in {_secs(wait)}: {msg}"
        try:
            update_batch(self.store, s.batch_id, error=note[:1000])
        except Exception as exc:  # the store itself failed: kept in memory, shown by the page
            s.last_error = f"{msg} (and it could not be recorded on the batch: {exc})"


def _secs(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def describe(state: PollState | None, poller_alive: bool) -> str:
    """One line for the page on what the poller does with this batch."""
    if not poller_alive:
        return "not polled: the background poller is not running in this process"
    if state is None:
        return "not seen by the background poller yet (it looks for new batches every few seconds)"
    parts = [state.doing]
    if state.last_polled is not None:
        parts.append(f"last checked {state.last_polled:%H:%M:%S} UTC")
    if state.next_wall is not None and state.outcome is None:
        parts.append(f"next check {state.next_wall:%H:%M:%S} UTC")
    return " · ".join(parts)
