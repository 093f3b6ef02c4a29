"""Prompt Builder rerun time with a 1,000-value dimension, measured with AppTest.

Loads a recipe whose `topic` dimension has 1,000 values, then changes a widget (the seed)
and times the rerun: the server-side script time a user waits for after each edit. The
baseline is a rerun of a minimal Streamlit script in the same process (AppTest overhead).
Last line: ``builder_rerun: <median ms>`` (target under 300).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("STUDIO_DB", str(Path(tempfile.mkdtemp()) / "bench.duckdb"))

from streamlit.testing.v1 import AppTest  # noqa: E402

from services.core.store import Store  # noqa: E402
from services.recipes.recipe import Dimension, Recipe, Sampling  # noqa: E402
from services.recipes.version_store import save_version  # noqa: E402

RECIPE = Recipe(
    name="bench-1000",
    task="You write questions.",
    user_template="Ask a {{ difficulty }} question about {{ topic }} in {{ language }}.",
    dimensions=[
        Dimension(name="topic", values=[f"topic number {i}" for i in range(1000)]),
        Dimension(name="difficulty", values=["easy", "medium", "hard"]),
        Dimension(name="language", values=["English", "French", "Swahili"]),
    ],
    sampling=Sampling(strategy="random", n_items=5000),
)


def timed_reruns(at: AppTest, key: str, n: int) -> list[float]:
    out = []
    for i in range(n):
        at.number_input(key=key).set_value(i + 1)
        t0 = time.perf_counter()
        at.run()
        out.append((time.perf_counter() - t0) * 1000)
        assert not at.exception, at.exception
    return out


def main() -> None:
    # Save the recipe as a version, then open it the way a user does.
    store = Store()
    version = save_version(store, RECIPE)
    store.close()
    at = AppTest.from_file(str(ROOT / "app_pages" / "prompt_builder.py"), default_timeout=120)
    at.run()
    at.selectbox(key="builder_pick_saved").select(version.recipe_hash).run()
    next(b for b in at.button if b.label == "Open version").click().run()
    assert not at.exception, at.exception
    uid = at.session_state["builder_dims"][0]
    assert len(at.session_state[f"builder_dim_{uid}_values"].splitlines()) == 1000
    timed_reruns(at, "builder_seed", 2)  # warm
    studio = timed_reruns(at, "builder_seed", 10)

    base = AppTest.from_string("import streamlit as st\nst.number_input('n', key='n')\n")
    base.run()
    baseline = timed_reruns(base, "n", 10)
    med, bmed = statistics.median(studio), statistics.median(baseline)
    print(f"Prompt Builder rerun with a 1,000-value dimension: median {med:.0f} ms (min {min(studio):.0f}, max {max(studio):.0f})")
    print(f"minimal one-widget script rerun (AppTest overhead): median {bmed:.0f} ms")
    print(f"ratio to the minimal script: {med / bmed:.1f}x")
    print(f"builder_rerun: {med:.0f}")


if __name__ == "__main__":
    main()
