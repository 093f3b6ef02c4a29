"""A pairwise judge asked in both orders (A/B, then B/A): a pair is kept only where both agree."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.curation.export import columns_card, shaped_card, shaped_frame
from services.generation.backends import BackendConfig, OpenAIBackend
from services.generation.forecast import preview_forecast
from services.generation.run_store import Price, set_price
from services.generation.runner import execute_run
from services.recipes.columns import Column, pairwise_value
from services.recipes.recipe import Recipe
from tests.mock_openai import MockServer
from tests.run_helpers import plan_run

N = 12


def _recipe(**pairwise) -> Recipe:
    return Recipe.parse({
        "name": "pairs", "task": "You write data.", "dimensions": [{"name": "topic", "values": ["rain", "tea", "maps"]}],
        "sampling": {"strategy": "random", "n_items": N, "seed": 5}, "model": {"temperature": 0.7, "max_tokens": 16, "seed": 1},
        "columns": [
            {"name": "instruction", "user_template": "Item {{ index }}: ask about {{ topic }}"},
            {"name": "answers", "kind": "candidates", "n": 2, "temperatures": [0.2, 1.1], "user_template": "{{ instruction }}"},
            {"name": "pref", "kind": "pairwise", "of": "answers", "rubric": "the more helpful", **pairwise},
        ], "output_column": "instruction"})


@pytest.fixture
def mock():
    with MockServer() as url:
        yield url


def _run(store, run_id, url):
    backend = OpenAIBackend(BackendConfig("custom", url, "mock-model", "sk-test", timeout_s=5))

    async def go():
        try:
            return await execute_run(store, run_id, backend)
        finally:
            await backend.aclose()
    return asyncio.run(go())


def _answers(messages: str) -> tuple[str, str]:
    """(answer A, answer B) as the judge was shown them."""
    user = json.loads(messages)[-1]["content"]
    a = user.split("Answer A:\n", 1)[1].split("\n\nAnswer B:\n", 1)
    return a[0], a[1].split("\n\nWhich answer", 1)[0]


def test_both_orders_are_asked_paid_and_kept_only_where_they_agree(store, mock):
    set_price(store, "mock-model", Price(1.0, 2.0))
    run_id = plan_run(store, _recipe(), base_url=mock, concurrency=4)
    out = _run(store, run_id, mock)
    assert (out.status, out.generated, out.failed) == ("finished", N, 0)

    rows = store.query("SELECT item_idx, step, messages, value, cost_usd, attempts FROM samples WHERE run_id = ? AND step LIKE 'pref%'"
                       " ORDER BY item_idx, step", [run_id])
    by_item: dict[int, dict[str, tuple]] = {}
    for idx, step, msgs, value, cost, attempts in rows:
        by_item.setdefault(idx, {})[step] = (msgs, json.loads(value), cost, attempts)
    assert len(by_item) == N and all(set(r) == {"pref", "pref#1", "pref#2"} for r in by_item.values())
    kept = ties = 0
    for r in by_item.values():
        (m1, v1, c1, a1), (m2, v2, c2, a2) = r["pref#1"], r["pref#2"]
        a, b = _answers(m1)
        assert _answers(m2) == (b, a)  # the second call saw the candidates swapped
        assert c1 > 0 and c2 > 0 and a1 == a2 == 1  # each order is a paid, counted request
        value = r["pref"][1]
        assert [o["winner"] for o in value["orders"]] == [v1["winner"], v2["winner"]]
        assert [o["reason"] for o in value["orders"]] == [v1["reason"], v2["reason"]]
        first = a if v1["winner"] == "A" else b
        second = b if v2["winner"] == "A" else a
        if first == second:
            kept += 1
            assert value["consistent"] is True and value["chosen"] == first and value["rejected"] == (b if first == a else a)
            assert value["winner"] == v1["winner"]
        else:
            ties += 1
            assert value["consistent"] is False and value["winner"] == "tie" and "chosen" not in value
            assert value["candidates"] == [a, b]
    assert kept and ties  # this plan's answers give both outcomes, so both paths are exercised

    keys = [k for (k,) in store.query("SELECT sample_key FROM samples WHERE run_id = ? AND step = 'output' ORDER BY item_idx", [run_id])]
    frame = shaped_frame(store, keys, "preference")
    assert len(frame) == kept and frame.attrs["ties"] == ties and frame.attrs["skipped"] == 0
    card = shaped_card(store, run_id, frame, "preference")
    assert f"{ties} pair(s) are left out as ties" in card
    assert f"both orders agree on {kept} of {N} pairs" in "\n".join(columns_card(store, run_id))
    # the SQL view shows the verdict per sample
    from services.sql.views import refresh_views

    refresh_views(store)
    assert store.scalar("SELECT count(*) FROM samples_columns WHERE run_id = ? AND winner = 'tie'", [run_id]) == ties


def test_one_order_when_switched_off_and_the_forecast_counts_the_second_call(store, mock):
    for both, calls in ((False, 4), (True, 5)):  # instruction 1 + candidates 2 + pairwise 1 or 2
        rec = _recipe(both_orders=both).model_copy(update={"name": f"pairs-{both}"})
        run_id = plan_run(store, Recipe.parse(rec.model_dump(mode="json")), base_url=mock, item_limit=2)
        _run(store, run_id, mock)
        assert preview_forecast(store, run_id, n_items=10, concurrency=4, price=None).requests == 10 * calls
        steps = {s for (s,) in store.query("SELECT DISTINCT step FROM samples WHERE run_id = ? AND step LIKE 'pref%'", [run_id])}
        assert steps == ({"pref", "pref#1", "pref#2"} if both else {"pref"})
        if not both:
            v = json.loads(store.scalar("SELECT value FROM samples WHERE run_id = ? AND step = 'pref' LIMIT 1", [run_id]))
            assert v["winner"] in ("A", "B") and "chosen" in v and "orders" not in v
    assert _recipe().columns[2].calls() == 2 and _recipe(both_orders=False).columns[2].calls() == 1
    # the default is not written into the recipe, so recipes saved before keep their hashes
    assert "both_orders" not in json.dumps(_recipe().canonical())


def test_a_position_biased_judge_gives_ties_not_pairs():
    col = Column(name="p", kind="pairwise", of="c")
    biased = pairwise_value(col, [{"winner": "A", "reason": "first"}, {"winner": "A", "reason": "first again"}], ["x", "y"], "q")
    assert biased["winner"] == "tie" and biased["consistent"] is False and "chosen" not in biased
    assert [o["reason"] for o in biased["orders"]] == ["first", "first again"] and biased["candidates"] == ["x", "y"]
    fair = pairwise_value(col, [{"winner": "B", "reason": "y is right"}, {"winner": "A", "reason": "y still"}], ["x", "y"], "q")
    assert (fair["winner"], fair["chosen"], fair["rejected"], fair["reason"], fair["consistent"]) == ("B", "y", "x", "y is right", True)
    one = pairwise_value(col, [{"winner": "A", "reason": "r"}], ["x", "y"], "q")
    assert (one["chosen"], one["rejected"], one["prompt"]) == ("x", "y", "q") and "consistent" not in one
