"""Background warm-up at studio start: load the embedder and compile UMAP/HDBSCAN's numba code.

The first map would otherwise pay model loading and the one-off JIT in the foreground
(docs/architecture.md, "Measured"). Runs in a daemon thread; the home page reads ``status()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing the embedding module pulls in pandas: not before the first page
    from services.explore.embedders import Embedder


@dataclass
class Stage:
    name: str
    label: str
    state: str = "waiting"  # waiting, running, ready, failed
    seconds: float | None = None
    message: str = ""


class Warmup:
    """Warms the given embedder, then the projection code path, one after the other."""

    def __init__(self, embedder: Embedder, projection_warmup: Callable[[], float] | None = None, delay_s: float = 0.0) -> None:
        self.embedder = embedder
        self.delay_s = delay_s
        if projection_warmup is None:
            from services.explore.projection import warm_up as projection_warmup
        self._projection_warmup = projection_warmup
        self.stages = [Stage("embedder", "Embedding model (all-MiniLM-L6-v2)"), Stage("projection", "UMAP + HDBSCAN (numba JIT)")]
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> Warmup:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="studio-warmup", daemon=True)
                self._thread.start()
        return self

    def _run(self) -> None:
        # Let the first page render before heavy imports compete with it for the GIL.
        time.sleep(self.delay_s)
        steps = {"embedder": lambda: self.embedder.encode(["warming up the embedder"]),
                 "projection": self._projection_warmup}
        for stage in self.stages:
            stage.state = "running"
            t0 = time.perf_counter()
            try:
                steps[stage.name]()
                stage.state = "ready"
            except Exception as exc:  # shown on the home page; the feature still works, just slower at first use
                stage.state, stage.message = "failed", f"{type(exc).__name__}: {exc}"
            stage.seconds = time.perf_counter() - t0

    def status(self) -> list[Stage]:
        return list(self.stages)

    @property
    def done(self) -> bool:
        return all(s.state in ("ready", "failed") for s in self.stages)

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done
