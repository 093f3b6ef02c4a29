"""Columns: checks before anything is sent, and every kind run against the mock OpenAI server."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.generation.backends import BackendConfig, OpenAIBackend
from services.generation.run_store import get_run, progress
from services.generation.runner import execute_run, structured_format
from services.recipes.columns import effective_columns, output_column, parse_json_answer, validate_answer, vote
from services.recipes.recipe import Recipe, RecipeError
from services.sql.views import refresh_views
from tests.mock_openai import MockServer
from tests.run_helpers import plan_run, recipe

LABEL_SCHEMA = {"type": "object", "properties": {"label": {"type": "string", "enum": ["positive", "negative", "mixed"]},
                                                 "rationale": {"type": "string"}}, "required": ["label", "rationale"]}


def _recipe(columns: list[dict], n_items: int = 4, **extra) -> Recipe:
    return Recipe.parse({"name": "cols", "task": "You write data.", "dimensions": [{"name": "topic", "values": ["rain", "cats"]}],
                         "sampling": {"strategy": "random", "n_items": n_items, "seed": 3},
                         "model": {"temperature": 0.7, "max_tokens": 32, "seed": 5}, "columns": columns, **extra})


def _problems(columns: list[dict]) -> list[tuple[str, str]]:
    with pytest.raises(RecipeError) as err:
        _recipe(columns)
    return err.value.problems


@pytest.fixture
def mock():
    server = MockServer().start()
    yield server
    server.stop()


def _run(store, run_id, url):
    backend = OpenAIBackend(BackendConfig("custom", url, "mock-model", "sk-test", timeout_s=5, max_retries=1))

    async def go():
        try:
            return await execute_run(store, run_id, backend)
        finally:
            await backend.aclose()
    return asyncio.run(go())


# -- checks before anything is sent -----------------------------------------------------
def test_bad_columns_are_reported_naming_the_column_and_field():
    assert _problems([{"name": "a", "user_template": "{{ b }}"}, {"name": "b", "user_template": "{{ a }}"}]) == [
        ("columns", "cycle: a → b → a")]
    assert _problems([{"name": "a", "user_template": "{{ b }} {{ topic }}"}, {"name": "b", "user_template": "x"}]) == [
        ("column 'a'", "refers to 'b', which comes after it: move 'b' above 'a'")]
    (where, msg), = _problems([{"name": "a", "user_template": "{{ nothing }}"}])
    assert where == "column 'a', field user_template" and "'nothing'" in msg
    (where, msg), = _problems([{"name": "a", "kind": "structured", "user_template": "x", "output_schema": '{"type": "object",'}])
    assert where == "column 'a', field output_schema" and "not valid JSON" in msg
    (where, msg), = _problems([{"name": "a", "kind": "structured", "user_template": "x", "output_schema": {"type": "objekt"}}])
    assert where == "column 'a', field output_schema" and "not a valid JSON schema" in msg
    one = {"type": "object", "properties": {"label": {"type": "string", "enum": ["yes"]}}}
    assert _problems([{"name": "a", "kind": "structured", "user_template": "x", "output_schema": one}]) == [
        ("column 'a', field 'label'", "an enum needs at least two values, got ['yes']")]
    (where, msg), = _problems([{"name": "j", "kind": "judge", "rubric": "is it kind", "user_template": "x"}])
    assert where == "column 'j', field scale" and "needs a scale" in msg
    (where, msg), = _problems([{"name": "p", "kind": "pairwise", "of": "c"}, {"name": "c", "kind": "candidates", "n": 2, "user_template": "x"}])
    assert where == "column 'p', field of" and "comes after it" in msg
    (where, _), = _problems([{"name": "topic", "user_template": "x"}])
    assert where == "column 'topic'"


def test_legacy_steps_are_columns_and_keep_their_hash():
    legacy = recipe(steps=[{"name": "draft", "user_template": "Draft {{ topic }}"}])
    assert [(c.name, c.kind) for c in effective_columns(legacy)] == [("draft", "text"), ("output", "text")]
    assert output_column(legacy) is None  # the recipe's own template is the output
    assert "columns" not in legacy.canonical()  # no columns: the hash of a recipe written before is unchanged
    with_cols = Recipe.parse({**legacy.canonical(), "columns": [{"name": "extra", "user_template": "{{ output }}"}]})
    assert with_cols.content_hash() != legacy.content_hash()


def test_answers_are_parsed_validated_and_voted():
    col = _recipe([{"name": "c", "kind": "structured", "user_template": "x", "output_schema": LABEL_SCHEMA, "n": 3}]).columns[0]
    assert parse_json_answer('Here:\n```json\n{"label": "mixed", "rationale": "r"}\n```') == {"label": "mixed", "rationale": "r"}
    with pytest.raises(ValueError, match="at label"):
        validate_answer(col, '{"label": "great", "rationale": "r"}')
    with pytest.raises(ValueError, match="not JSON"):
        validate_answer(col, "label: great")
    v = vote(col, [{"label": "negative", "rationale": "a"}, {"label": "positive", "rationale": "b"}, {"label": "positive", "rationale": "c"}])
    assert v == {"label": "positive", "rationale": "b", "agreement": 0.6667, "votes": 3}
    assert structured_format("local", "c", LABEL_SCHEMA) == {"type": "json_object", "schema": LABEL_SCHEMA}
    assert structured_format("openai", "c", LABEL_SCHEMA)["json_schema"]["schema"] == LABEL_SCHEMA


# -- runs against the mock server ------------------------------------------------------
def test_every_kind_runs_and_lands_as_one_row_per_sample_in_sql(store, mock):
    rec = _recipe([
        {"name": "instruction", "user_template": "Write an instruction about {{ topic }} (item {{ index }})."},
        {"name": "classify", "kind": "structured", "user_template": "Label: {{ instruction }}", "output_schema": LABEL_SCHEMA, "n": 3},
        {"name": "quality", "kind": "judge", "rubric": "Is it clear?", "scale": [1, 5], "user_template": "Judge: {{ instruction }}"},
        {"name": "answers", "kind": "candidates", "n": 2, "temperatures": [0.2, 1.0], "user_template": "Answer: {{ instruction }}"},
        {"name": "pref", "kind": "pairwise", "of": "answers", "rubric": "helpful"},
        {"name": "tag", "kind": "expression", "expression": "{{ classify.label | upper }}-{{ quality.score }}"},
    ], output_column="instruction")
    run_id = plan_run(store, rec, base_url=mock.url, concurrency=4)
    out = _run(store, run_id, mock.url)
    assert (out.status, out.generated, out.failed) == ("finished", 4, 0)
    # calls: instruction 1 + classify 3 + judge 1 + candidates 2 + pairwise 2 (both orders) = 9 per item
    assert mock.state.completions_ok == 4 * 9
    p = progress(store, get_run(store, run_id))
    assert (p.done, p.failed) == (4, 0)

    refresh_views(store)
    rows = store.query("SELECT label, agreement, votes, score, quality_rationale, winner, chosen, rejected, tag, instruction, output"
                       " FROM samples_columns WHERE run_id = ? ORDER BY item_idx", [run_id])
    assert len(rows) == 4
    for label, agreement, votes, score, rationale, winner, chosen, rejected, tag, instruction, output in rows:
        assert label in ("positive", "negative", "mixed") and votes == 3 and 0 < agreement <= 1
        assert isinstance(score, int) and 1 <= score <= 5  # typed from the values: integers compare as numbers
        assert tag == f"{label.upper()}-{score}" and rationale.startswith("mock")
        assert winner in ("A", "B", "tie")
        if winner != "tie":  # a tie (the two orders disagreed) has no chosen/rejected
            assert {chosen, rejected} <= {r[0] for r in store.query(
                "SELECT text FROM samples WHERE run_id = ? AND step LIKE 'answers#%'", [run_id])}
        assert output == instruction and instruction.startswith("Sample for: Write an instruction")
    # a structured column (judge and label) share a field name only with a prefix
    assert "classify_rationale" in {r[0] for r in store.query("DESCRIBE samples_columns")}
    counts = store.query("SELECT label, count(*) FROM samples_columns WHERE run_id = ? GROUP BY ALL", [run_id])
    assert sum(n for _, n in counts) == 4
    # provenance per column: prompt, params (the schema asked for), tokens, attempts
    msgs, params, tokens, attempts = store.query(
        "SELECT messages, params, completion_tokens, attempts FROM samples WHERE run_id = ? AND step = 'quality' LIMIT 1", [run_id])[0]
    assert "Rubric: Is it clear?" in json.loads(msgs)[0]["content"]
    assert json.loads(params)["response_format"]["type"] == "json_schema" and tokens == 5 and attempts == 1
    # the plan shows each item's first column exactly as it was sent
    plan_msgs, sent = store.query("SELECT p.messages, s.messages FROM plan_items p JOIN samples s ON s.item_key = p.item_key"
                                  " WHERE s.run_id = ? AND s.step = 'instruction' AND p.idx = 0", [run_id])[0]
    assert json.loads(plan_msgs) == json.loads(sent)
    # candidates got their own temperatures
    temps = {json.loads(p)["temperature"] for (p,) in store.query("SELECT params FROM samples WHERE run_id = ? AND step LIKE 'answers#%'", [run_id])}
    assert temps == {0.2, 1.0}


def test_invalid_answers_are_retried_then_stored_as_failures_with_the_error(store, mock):
    rec = _recipe([
        {"name": "text", "user_template": "Write about {{ topic }} {{ index }}"},
        {"name": "label", "kind": "structured", "output_schema": LABEL_SCHEMA, "retries": 2,
         "user_template": "{% if index == 0 %}[[badjson:2]]{% elif index == 1 %}[[badjson]]{% endif %} Label {{ text }}"},
    ], n_items=3)
    run_id = plan_run(store, rec, base_url=mock.url, concurrency=2)
    out = _run(store, run_id, mock.url)
    assert (out.generated, out.failed) == (2, 1)
    rows = {i: (err, tokens, value) for i, err, tokens, value in store.query(
        "SELECT item_idx, error, completion_tokens, value FROM samples WHERE run_id = ? AND step = 'label'", [run_id])}
    assert rows[0][0] is None and rows[0][1] == 15 and json.loads(rows[0][2])["label"]  # valid on the third answer, all paid
    assert "answer 3 of 3 is invalid" in rows[1][0] and "not JSON" in rows[1][0] and rows[1][2] is None
    assert "column 'label' failed" in store.scalar(
        "SELECT error FROM samples WHERE run_id = ? AND step = 'output' AND item_idx = 1", [run_id])
    # a resume asks again only for the failed column: the text column was paid once
    before = mock.state.completions_ok
    out = _run(store, run_id, mock.url)
    assert out.failed == 1 and mock.state.completions_ok - before == 3  # three answers for 'label' of item 1, nothing else


def test_a_preview_forecast_counts_the_requests_of_every_column(store, mock):
    from services.generation.forecast import preview_forecast

    rec = _recipe([
        {"name": "q", "user_template": "Ask about {{ topic }} {{ index }}"},
        {"name": "v", "kind": "structured", "n": 3, "output_schema": LABEL_SCHEMA, "user_template": "Label {{ q }}"},
        {"name": "e", "kind": "expression", "expression": "{{ v.label }}"},
    ])
    run_id = plan_run(store, rec, base_url=mock.url, item_limit=2)
    _run(store, run_id, mock.url)
    f = preview_forecast(store, run_id, n_items=10, concurrency=4, price=None)
    assert f.requests == 10 * 4  # 1 + 3 votes per item; the expression, the tally and the output row are not requests


def test_a_budget_cap_leaves_columns_missing_and_a_resume_pays_only_for_them(store, mock):
    from services.generation.run_store import Price, set_price

    set_price(store, "mock-model", Price(1000.0, 1000.0))  # $0.001 per token: a few requests fit
    rec = _recipe([{"name": "q", "user_template": "Ask about {{ topic }} {{ index }}"},
                   {"name": "v", "kind": "structured", "output_schema": LABEL_SCHEMA, "user_template": "Label {{ q }}"}], n_items=6)
    run_id = plan_run(store, rec, base_url=mock.url, concurrency=1, budget_usd=0.5)
    out = _run(store, run_id, mock.url)
    assert out.status == "cancelled" and "budget cap" in out.message and out.failed == 0
    spent = store.scalar("SELECT sum(cost_usd) FROM samples WHERE run_id = ?", [run_id])
    assert spent <= 0.5  # the worst case of every request was reserved before it was sent
    assert 0 < out.generated < 6
    before = mock.state.completions_ok
    paid_rows = store.scalar("SELECT count(*) FROM samples WHERE run_id = ? AND attempts > 0", [run_id])
    with store.write() as cur:  # the cap lifted, as a resume with a larger budget would
        cur.execute("UPDATE runs SET budget_usd = NULL WHERE run_id = ?", [run_id])
    out = _run(store, run_id, mock.url)
    assert out.status == "finished" and store.scalar(
        "SELECT count(*) FROM samples WHERE run_id = ? AND step = 'output' AND error IS NULL", [run_id]) == 6
    assert mock.state.completions_ok - before == 6 * 2 - paid_rows  # nothing written before is asked again


def test_a_failed_step_of_a_legacy_recipe_marks_its_sample_failed(store):
    from tests.run_helpers import FakeBackend

    rec = recipe(n_items=6, modes=["ok", "bad"], steps=[{"name": "draft", "user_template": "Draft {{ topic }} {{ mode }} {{ index }}"}])
    run_id = plan_run(store, rec)
    out = asyncio.run(execute_run(store, run_id, FakeBackend(fail="bad")))
    p = progress(store, get_run(store, run_id))
    assert p.done + p.failed == 6 and p.failed == out.failed > 0
    errors = [e for (e,) in store.query("SELECT error FROM samples WHERE run_id = ? AND step = 'output' AND error IS NOT NULL", [run_id])]
    assert len(errors) == p.failed and all(e.startswith("column 'draft' failed") for e in errors)
