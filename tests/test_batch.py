"""Provider batches against the local mock of the OpenAI files/batches and Anthropic message-batches
endpoints: submit, poll, collect exactly once, resubmit only what failed, and errors in words."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from services.generation.batch_client import (
    BatchAuthError,
    BatchNotReady,
    BatchProviderError,
    make_client,
    vllm_command,
    vllm_output_refusal,
)
from services.generation.batch_forecast import BATCH_SHARE, compare
from services.generation.batch_format import BatchOutputMalformed, openai_jsonl, run_lines
from services.generation.batch_jobs import BatchExpired, BatchRefused, collect_batch, refresh, submit_batch
from services.generation.batch_store import get_batch, list_batches
from services.generation.forecast import Forecast, Span
from services.generation.run_store import Price, get_run, progress, run_samples, set_price, set_status
from tests.mock_batch import BatchMock
from tests.run_helpers import plan_run, recipe


@pytest.fixture
def mock():
    with BatchMock() as m:
        yield m


def _client(mock: BatchMock, provider: str = "openai", key: str | None = None):
    default = "sk-test" if provider == "openai" else "ak-test"
    return make_client(provider, base_url=mock.url, api_key=key or default)


def _outputs(store, run_id):
    return [r for r in run_samples(store, run_id) if r["error"] is None]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_submit_poll_collect_imports_every_sample_once_at_batch_price(store, mock, provider):
    run_id = plan_run(store, recipe(n_items=5, samples_per_item=2, seed=7))
    set_price(store, "mock-model", Price(1.0, 2.0))
    mock.polls_until_done = 1
    client = _client(mock, provider)
    rep = submit_batch(store, run_id, client, base_url=mock.url)
    assert rep.sent == 10 and rep.batch is not None and rep.batch.remote_id
    # the custom ids are the samples' own keys, unique and valid for Anthropic
    assert len(set(rep.batch.custom_ids)) == 10
    with pytest.raises(BatchNotReady, match="Collect again later"):
        collect_batch(store, rep.batch.batch_id, client)
    report = collect_batch(store, rep.batch.batch_id, client)
    assert (report.imported, report.failed, report.missing) == (10, 0, 0)
    rows = _outputs(store, run_id)
    assert len(rows) == 10 and all(r["text"].startswith("Batch answer for:") for r in rows)
    # half the live price: prompt and completion tokens at 0.5 and 1.0 USD per million
    for r in rows:
        assert r["cost_usd"] == pytest.approx((r["prompt_tokens"] * 0.5 + r["completion_tokens"] * 1.0) / 1e6)
    assert get_run(store, run_id).status == "finished"
    # a collect run twice adds nothing
    again = collect_batch(store, rep.batch.batch_id, client)
    assert again.imported == 0 and len(run_samples(store, run_id)) == 10
    # and a submit now has nothing left to send
    assert submit_batch(store, run_id, client).sent == 0


def test_openai_lines_carry_the_runs_parameters_and_seed_offsets(store, mock):
    run_id = plan_run(store, recipe(n_items=2, samples_per_item=2, seed=7))
    submit_batch(store, run_id, _client(mock))
    lines = [json.loads(x) for x in mock.uploads[0].decode().splitlines()]
    assert {ln["url"] for ln in lines} == {"/v1/chat/completions"} and {ln["method"] for ln in lines} == {"POST"}
    assert sorted(ln["body"]["seed"] for ln in lines) == [7, 7, 8, 8]
    assert all(ln["body"]["model"] == "mock-model" and ln["body"]["max_tokens"] == 16 for ln in lines)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_failed_lines_are_resubmitted_alone_and_replace_their_errors(store, mock, provider):
    run_id = plan_run(store, recipe(n_items=6))
    mock.fail_first = 2
    client = _client(mock, provider)
    first = submit_batch(store, run_id, client)
    rep = collect_batch(store, first.batch.batch_id, client)
    assert (rep.imported, rep.failed) == (4, 2)
    p = progress(store, get_run(store, run_id))
    assert (p.done, p.failed) == (4, 2)
    assert get_run(store, run_id).status == "interrupted" and "resubmit" in get_run(store, run_id).error
    failed_ids = {r["sample_key"] for r in run_samples(store, run_id) if r["error"]}
    second = submit_batch(store, run_id, client)
    assert second.sent == 2 and set(second.batch.custom_ids) == failed_ids and second.cleared == 2
    collect_batch(store, second.batch.batch_id, client)
    # collecting the first batch again brings back no error over a success
    collect_batch(store, first.batch.batch_id, client)
    p = progress(store, get_run(store, run_id))
    assert (p.done, p.failed, p.rows) == (6, 0, 6)
    assert get_run(store, run_id).status == "finished"


def test_lines_in_an_open_batch_are_never_sent_twice(store, mock):
    run_id = plan_run(store, recipe(n_items=4))
    mock.polls_until_done = 5
    client = _client(mock)
    assert submit_batch(store, run_id, client).sent == 4
    rep = submit_batch(store, run_id, client)
    assert rep.sent == 0 and rep.in_flight == 4 and len(mock.uploads) == 1


def test_expired_batch_keeps_what_came_back_and_resubmits_the_rest(store, mock):
    run_id = plan_run(store, recipe(n_items=6))
    mock.expire = True
    client = _client(mock)
    first = submit_batch(store, run_id, client)
    with pytest.raises(BatchExpired, match="expired.*3 imported, 3 failed"):
        collect_batch(store, first.batch.batch_id, client)
    assert len(_outputs(store, run_id)) == 3
    assert get_batch(store, first.batch.batch_id).collected_at is not None
    mock.expire = False
    second = submit_batch(store, run_id, client)
    assert second.sent == 3
    collect_batch(store, second.batch.batch_id, client)
    assert len(_outputs(store, run_id)) == 6


def test_anthropic_expired_requests_are_reported(store, mock):
    run_id = plan_run(store, recipe(n_items=4))
    mock.expire = True
    client = _client(mock, "anthropic")
    b = submit_batch(store, run_id, client).batch
    with pytest.raises(BatchExpired):
        collect_batch(store, b.batch_id, client)
    assert len(_outputs(store, run_id)) == 2


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_malformed_output_line_is_named_and_the_rest_imported(store, mock, provider):
    run_id = plan_run(store, recipe(n_items=5))
    mock.malformed_line = True
    client = _client(mock, provider)
    b = submit_batch(store, run_id, client).batch
    with pytest.raises(BatchOutputMalformed, match=r"line 1.*4 imported"):
        collect_batch(store, b.batch_id, client)
    assert len(_outputs(store, run_id)) == 4
    # the unread line is missing, so a resubmit sends exactly it
    mock.malformed_line = False
    again = submit_batch(store, run_id, client)
    assert again.sent == 1
    collect_batch(store, again.batch.batch_id, client)
    assert len(_outputs(store, run_id)) == 5


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_wrong_key_is_said_in_words_and_records_nothing(store, mock, provider):
    run_id = plan_run(store, recipe(n_items=3))
    with pytest.raises(BatchAuthError, match="Unauthorised") as info:
        submit_batch(store, run_id, _client(mock, provider, key="sk-wrong-secret"))
    assert "sk-wrong-secret" not in str(info.value)
    assert list_batches(store, run_id) == []


def test_the_key_is_never_sent_to_a_results_url_on_another_host(store, mock):
    run_id = plan_run(store, recipe(n_items=2))
    mock.results_base = "http://198.51.100.7:9/v1"
    client = _client(mock, "anthropic")
    b = submit_batch(store, run_id, client).batch
    with pytest.raises(BatchProviderError, match="not on http://127.0.0.1"):
        collect_batch(store, b.batch_id, client)
    assert get_batch(store, b.batch_id).is_open


def test_auth_failure_on_collect_loses_nothing(store, mock):
    run_id = plan_run(store, recipe(n_items=4))
    b = submit_batch(store, run_id, _client(mock)).batch
    with pytest.raises(BatchAuthError):
        collect_batch(store, b.batch_id, _client(mock, key="sk-bad"))
    assert get_batch(store, b.batch_id).is_open  # still collectable with the right key
    assert collect_batch(store, b.batch_id, _client(mock)).imported == 4


def test_a_batch_that_fails_validation_frees_its_lines(store, mock):
    run_id = plan_run(store, recipe(n_items=3))
    mock.fail_validation = True
    client = _client(mock)
    b = submit_batch(store, run_id, client).batch
    with pytest.raises(BatchProviderError, match="failed.*line 1: bad line"):
        collect_batch(store, b.batch_id, client)
    mock.fail_validation = False
    assert submit_batch(store, run_id, client).sent == 3


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_no_key_is_stored_or_logged(store, mock, caplog, provider):
    caplog.set_level(logging.DEBUG)
    key = "sk-test" if provider == "openai" else "ak-test"
    run_id = plan_run(store, recipe(n_items=2))
    client = _client(mock, provider, key=key)
    b = submit_batch(store, run_id, client, base_url=mock.url).batch
    refresh(store, b.batch_id, client)
    collect_batch(store, b.batch_id, client)
    dump = json.dumps([[str(v) for v in row] for t in ("runs", "run_events", "batches", "samples")
                       for row in store.query(f"SELECT * FROM {t}")])
    files = " ".join(p.read_text(errors="replace") for p in store.work_dir.rglob("*") if p.is_file())
    assert key not in dump and key not in files and key not in caplog.text
    # the mock saw the key in its header, so the test would catch a leak
    seen = [h.get("authorization", "") + h.get("x-api-key", "") for _, _, h in mock.requests]
    assert any(key in s for s in seen) and run_id in dump


def test_multi_step_recipes_go_one_step_per_batch(store, mock):
    steps = [{"name": "topic", "user_template": "Item {{ index }}: name a topic about {{ topic }}"}]
    rec = recipe(n_items=3, steps=steps).model_copy(update={"user_template": "Write on {{ steps.topic }}"})
    run_id = plan_run(store, rec)
    client = _client(mock)
    b1 = submit_batch(store, run_id, client).batch
    collect_batch(store, b1.batch_id, client)
    assert get_run(store, run_id).status == "interrupted"
    b2 = submit_batch(store, run_id, client).batch
    lines = [json.loads(x) for x in mock.uploads[1].decode().splitlines()]
    # the output step's prompt contains the topic step's answer
    assert all("Batch answer for: Item" in ln["body"]["messages"][-1]["content"] for ln in lines)
    collect_batch(store, b2.batch_id, client)
    assert progress(store, get_run(store, run_id)).done == 3 and get_run(store, run_id).status == "finished"


def test_vllm_file_round_trip(store, tmp_path: Path):
    run_id = plan_run(store, recipe(n_items=3))
    client = make_client("vllm", folder=tmp_path)
    b = submit_batch(store, run_id, client).batch
    src = Path(b.input_path)
    assert src.is_file() and b.remote_id is None
    assert "vllm run-batch -i" in vllm_command(b.input_path, b.output_path, "m")
    with pytest.raises(BatchNotReady):
        collect_batch(store, b.batch_id, client)
    # what vllm run-batch writes: the OpenAI batch output format, one line per input line
    out = []
    for i, raw in enumerate(src.read_text().splitlines()):
        req = json.loads(raw)
        out.append(json.dumps({"id": f"vllm-{i}", "custom_id": req["custom_id"], "response": {"status_code": 200, "request_id": f"r{i}",
                               "body": {"choices": [{"index": 0, "message": {"role": "assistant", "content": f"vllm {i}"},
                                                     "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}},
                               "error": None}))
    Path(b.output_path).write_text("\n".join(out) + "\n")
    assert collect_batch(store, b.batch_id, client).imported == 3
    assert sorted(r["text"] for r in _outputs(store, run_id)) == ["vllm 0", "vllm 1", "vllm 2"]


def test_the_page_reads_vllm_output_only_from_allowed_folders(store, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_IMPORT_DIRS", str(tmp_path / "imports"))
    assert vllm_output_refusal(store, str(store.work_dir / "batches" / "x.output.jsonl")) is None
    assert vllm_output_refusal(store, str(tmp_path / "imports" / "out.jsonl")) is None
    assert "outside the folders" in vllm_output_refusal(store, "/etc/passwd")


def test_a_running_live_run_is_not_sent_as_a_batch(store, mock):
    run_id = plan_run(store, recipe(n_items=2))
    set_status(store, run_id, "running")
    with pytest.raises(BatchRefused, match="cancel it first"):
        submit_batch(store, run_id, _client(mock))


def test_openai_jsonl_is_one_request_per_line(store):
    run_id = plan_run(store, recipe(n_items=3))
    todo, _ = run_lines(store, get_run(store, run_id))
    body = openai_jsonl(todo, "m").decode()
    assert body.count("\n") == 3 and all(json.loads(x)["body"]["model"] == "m" for x in body.splitlines())


def test_forecast_compares_live_and_batch_cost_and_time():
    f = Forecast(10, Span(1000, 2000), Span(500, 1000), None, Span(600, 900), "b")
    price = Price(10.0, 20.0)  # 1000 prompt + 500 completion tokens: $0.02 live
    c = compare(f, "openai", price)
    assert BATCH_SHARE["openai"] == 0.5
    assert (c.live_cost.low, c.live_cost.high) == pytest.approx((0.02, 0.04))
    assert (c.batch_cost.low, c.batch_cost.high) == pytest.approx((0.01, 0.02))
    assert c.live_seconds == Span(600, 900) and c.window_s == 86400 and "24 h" in c.time_note
    assert compare(f, "vllm", price).batch_cost == c.live_cost
    assert compare(f, "anthropic", price, live_time_applies=False).live_seconds is None
    slow = Forecast(10, Span(1, 1), Span(1, 1), None, Span(90000, 100000), "b")
    assert "longer than" in compare(slow, "anthropic", price).time_note and compare(slow, "anthropic", None).batch_cost is None


def test_a_run_past_the_batch_limit_is_split_and_collected_whole(store, mock):
    run_id = plan_run(store, recipe(n_items=7))
    client = _client(mock)
    rep = submit_batch(store, run_id, client, max_lines=3)
    assert [b.n_lines for b in rep.batches] == [3, 3, 1] and len(mock.uploads) == 3
    for b in rep.batches[:2]:
        collect_batch(store, b.batch_id, client)
        assert get_run(store, run_id).status == "planned"  # a batch is still open
    collect_batch(store, rep.batches[2].batch_id, client)
    assert len(_outputs(store, run_id)) == 7 and get_run(store, run_id).status == "finished"


def test_split_keeps_under_the_byte_limit(store, monkeypatch):
    from services.generation import batch_format

    run_id = plan_run(store, recipe(n_items=6))
    todo, _ = run_lines(store, get_run(store, run_id))
    one = len(openai_jsonl(todo[:1], "m"))
    monkeypatch.setitem(batch_format.LIMITS, "openai", (50_000, int(one * 2.2 / 0.95)))
    parts = batch_format.split_lines(todo, "openai", "m")
    assert sum(map(len, parts)) == 6 and all(len(p) <= 2 for p in parts)


def test_a_budget_the_batch_could_pass_is_refused_before_sending(store, mock):
    set_price(store, "mock-model", Price(1000.0, 1000.0))  # $1 per thousand tokens, $0.5 in a batch
    run_id = plan_run(store, recipe(n_items=4), budget_usd=0.01)
    with pytest.raises(BatchRefused, match=r"could cost up to \$0.0[0-9]+.*Nothing was sent"):
        submit_batch(store, run_id, _client(mock))
    assert not mock.uploads and list_batches(store, run_id) == []
    # a cap the worst case stays under lets it go (4 lines of about 36 tokens at $0.0005 a token in a batch)
    roomy = plan_run(store, recipe(n_items=4), budget_usd=1.0)
    assert submit_batch(store, roomy, _client(mock)).sent == 4
