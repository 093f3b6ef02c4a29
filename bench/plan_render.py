"""Planning + rendering 100,000 items from a 5-dimension recipe vs a bare Jinja2 loop.

The baseline renders the same two templates with Jinja2 directly over the same conditions
(the conditions are taken from the plan, so sampling is charged to the studio only).
Last line: ``plan_render: <studio time / bare time>`` (target at most 2).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jinja2  # noqa: E402

from services.core.store import Store  # noqa: E402
from services.recipes.plan import make_plan  # noqa: E402
from services.recipes.plan_store import save_plan  # noqa: E402
from services.recipes.recipe import Demo, DemoSettings, Dimension, Recipe, Sampling  # noqa: E402

USER = ("Write a {{ style }} {{ genre }} story set in {{ place }} for {{ audience }}, "
        "about {{ length|int + 50 }} words.{% for d in demos %}\nExample: {{ d.text }}{% endfor %}")
SYSTEM = "{{ task }}"


def recipe(n_items: int) -> Recipe:
    dims = [Dimension(name=n, values=[f"{n}-{i}" for i in range(10)]) for n in ("style", "genre", "place", "audience")]
    dims.append(Dimension(name="length", values=[str(50 * i) for i in range(1, 11)]))
    demos = DemoSettings(examples=[Demo(id=f"d{i}", text=f"demo text number {i}") for i in range(20)], k=2)
    return Recipe(name="bench", task="You are a storyteller.", system_template=SYSTEM, user_template=USER,
                  dimensions=dims, demos=demos, sampling=Sampling(strategy="random", n_items=n_items, seed=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    args = ap.parse_args()
    r = recipe(args.items)

    t0 = time.perf_counter()
    plan = make_plan(r)
    studio = time.perf_counter() - t0

    env = jinja2.Environment()
    sys_t, user_t = env.from_string(SYSTEM), env.from_string(USER)
    demos = {d.id: d for d in r.demos.examples}
    work = [(it.condition, [{"id": i, "text": demos[i].text} for i in it.demo_ids]) for it in plan.items]
    t0 = time.perf_counter()
    out = []
    for cond, ds in work:
        out.append((sys_t.render(task=r.task), user_t.render(**cond, demos=ds)))
    bare = time.perf_counter() - t0
    assert out[7][1] == plan.items[7].messages[1]["content"], "studio and bare renders differ"

    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "b.duckdb")
        t0 = time.perf_counter()
        save_plan(store, plan)
        saved = time.perf_counter() - t0
        store.close()

    n = len(plan.items)
    print(f"items: {n:,}")
    print(f"studio plan (sample + demos + render + keys): {studio:.2f} s ({n / studio:,.0f} items/s)")
    print(f"bare Jinja2 loop over the same conditions:   {bare:.2f} s ({n / bare:,.0f} items/s)")
    print(f"writing the plan to DuckDB (not in the ratio): {saved:.2f} s")
    print(f"plan_render: {studio / bare:.2f}")


if __name__ == "__main__":
    main()
