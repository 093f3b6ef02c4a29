"""Starting the real studio and driving it with headless Chromium (Debian's, via Playwright)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "tests" / "artifacts"
# The full-loop test saves the README's screenshots here (committed).
README_SCREENSHOTS = ROOT / "tests" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def run_studio(db_path: Path, extra_env: dict[str, str] | None = None, timeout: float = 90) -> Iterator[str]:
    """Start `streamlit run app.py` on a free loopback port; stop it by PID on exit."""
    port = free_port()
    # Warm-up compiles UMAP in the background: off unless a test asks for it (it costs CPU, not correctness).
    env = {**os.environ, "STUDIO_DB": str(db_path), "STUDIO_WARMUP": "0", **(extra_env or {})}
    log = open(db_path.parent / "streamlit.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"studio exited early: {(db_path.parent / 'streamlit.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("studio did not become healthy in time")
            time.sleep(0.3)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport={"width": width, "height": height})
            pg = ctx.new_page()
            pg.set_default_timeout(30_000)
            yield pg
        finally:
            browser.close()


def wait_for_app(pg, timeout: float = 60_000, ready: str = "h1") -> None:
    """Wait until the page shows ``ready`` (a selector) and Streamlit has finished running the script."""
    pg.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    pg.wait_for_selector(ready, timeout=timeout)
    # The app's own run state: the frontend marks a rerun as requested the moment a widget asks
    # for one, so a wait right after a click cannot pass before that click's run has ended.
    pg.wait_for_function(
        "() => { const app = document.querySelector('[data-testid=\"stApp\"]');"
        " const state = app && app.getAttribute('data-test-script-state');"
        " return state && !['initial', 'running', 'rerunRequested', 'stopRequested'].includes(state); }",
        timeout=timeout,
    )
    pg.wait_for_timeout(300)


def scroll_to(locator, tries: int = 5) -> None:
    """Scroll an element into view, again if a Streamlit rerun replaced it meanwhile (Playwright
    does not retry a scroll whose element left the page)."""
    from playwright.sync_api import Error

    for attempt in range(tries):
        try:
            locator.scroll_into_view_if_needed()
            return
        except Error as e:
            if "not attached" not in str(e) or attempt == tries - 1:
                raise
            locator.page.wait_for_timeout(500)


def screenshot(pg, name: str, full_page: bool = True, directory: Path = SCREENSHOTS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    pg.screenshot(path=str(path), full_page=full_page)
    return path
