"""Studio start-up: time from starting the process to the first page rendered in a headless browser.

Compared in the same run with a one-line Streamlit app started the same way (the floor set
by Streamlit itself). The environment must already be installed. Warm-up is on, as in
`make run`, so this also shows it does not delay the first page.
Last line: ``startup_ratio: <studio / one-line app>`` (target at most 2.0), after the absolute times.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402


def time_to_first_page(cmd: list[str], env: dict[str, str], ready_text: str) -> tuple[float, float]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        t0 = time.perf_counter()
        proc = subprocess.Popen([*cmd, "--server.port", str(port), "--server.headless", "true"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            while True:
                try:
                    with urllib.request.urlopen(url + "/_stcore/health", timeout=1):
                        break
                except OSError:
                    time.sleep(0.05)
            healthy = time.perf_counter() - t0
            page.goto(url)
            page.get_by_text(ready_text).first.wait_for(timeout=60_000)
            rendered = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            browser.close()
    return healthy, rendered


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    env = {**os.environ, "STUDIO_DB": str(tmp / "startup.duckdb")}
    hello = tmp / "hello.py"
    hello.write_text("import streamlit as st\nst.title('hello')\n")
    # Alternate the two, best of three each: the machine's load drifts during the run.
    base_runs, runs = [], []
    for _ in range(3):
        base_runs.append(time_to_first_page([sys.executable, "-m", "streamlit", "run", str(hello)], env, "hello"))
        runs.append(time_to_first_page([sys.executable, str(ROOT / "app.py")], env, "Guided tour"))
    base_h, base_r = min(base_runs, key=lambda r: r[1])
    healthy, rendered = min(runs, key=lambda r: r[1])
    print(f"one-line Streamlit app: healthy after {base_h:.2f} s, first page rendered after {base_r:.2f} s")
    print(f"studio: healthy after {healthy:.2f} s, home page rendered after {rendered:.2f} s "
          f"({rendered - healthy:.2f} s after the server was up)")
    print(f"startup: {rendered:.2f}")
    print(f"startup_ratio: {rendered / base_r:.2f}")


if __name__ == "__main__":
    main()
