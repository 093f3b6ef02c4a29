"""The background batch poller against the mock batch endpoints: a batch is collected without a
click once it ends (exactly once), a restarted studio picks up the open batches of its table,
failed checks are recorded in words and backed off without ending the thread; and the live
resume refusals (an Anthropic batch run, lines still in an open batch)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from services.core.store import Store
from services.generation.batch_client import make_client, run_config
from services.generation.batch_jobs import BatchExpired, collect_batch, live_resume_refusal, submit_batch
from services.generation.batch_poller import BatchPoller, describe
from services.generation.batch_store import get_batch
from services.generation.presets import PRESETS
from services.generation.run_setup import prepare_run, resume_config, run_backend
from services.generation.run_store import get_run, run_samples
from services.generation.runner import RunSettings, run_blocking
from tests.mock_batch import BatchMock
from tests.mock_openai import MockServer
from tests.run_helpers import plan_run, recipe

KEYS = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "ak-test"}


@pytest.fixture
def mock():
    with BatchMock() as m:
        yield m


def _wait(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def _done(poller: BatchPoller, bid: str) -> Callable[[], bool]:
    """The poller has finished with the batch (collected, the run settled)."""
    return lambda: (st := poller.state(bid)) is not None and st.outcome is not None


def _retrieves(mock: BatchMock, remote_id: str) -> int:
    return sum(1 for m, p, _ in mock.requests if m == "GET" and p.rstrip("/").endswith(remote_id))


def _outputs(store: Store, run_id: str) -> list[dict]:
    return [r for r in run_samples(store, run_id) if r["error"] is None]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_batch_that_ends_after_a_few_polls_is_collected_without_a_click(store, mock, provider):
    run_id = plan_run(store, recipe(n_items=4, samples_per_item=2, seed=3))
    mock.polls_until_done = 3
    key = KEYS["OPENAI_API_KEY" if provider == "openai" else "ANTHROPIC_API_KEY"]
    rep = submit_batch(store, run_id, make_client(provider, base_url=mock.url, api_key=key), base_url=mock.url)
    bid, remote = rep.batch.batch_id, rep.batch.remote_id
    poller = BatchPoller(store, secrets=KEYS, interval_s=0.05, max_interval_s=0.1, tick_s=0.02).start()
    try:
        assert _wait(_done(poller, bid)), describe(poller.state(bid), poller.alive)
        b = get_batch(store, bid)
        assert b.collected_at is not None and b.imported == 8 and b.error is None
        assert len(_outputs(store, run_id)) == 8 and get_run(store, run_id).status == "finished"
        # three answers "in progress", the fourth done: one poll each, then no more
        assert _retrieves(mock, remote) == 4
        assert poller.state(bid).outcome == "collected: 8 imported, 0 failed" and poller.collected == [bid]
        time.sleep(0.3)  # several ticks: a collected batch is never polled or imported again
        assert _retrieves(mock, remote) == 4 and len(run_samples(store, run_id)) == 8
    finally:
        poller.stop()
    # and a collect by hand afterwards adds nothing
    again = collect_batch(store, bid, make_client(provider, base_url=mock.url, api_key=key))
    assert again.imported == 0 and len(run_samples(store, run_id)) == 8


def test_a_restarted_studio_picks_up_the_open_batches_of_its_table(tmp_path, mock):
    path = tmp_path / "studio.duckdb"
    first = Store(path)
    run_id = plan_run(first, recipe(n_items=3, samples_per_item=1))
    mock.polls_until_done = 1
    bid = submit_batch(first, run_id, make_client("openai", base_url=mock.url, api_key="sk-test"), base_url=mock.url).batch.batch_id
    first.close()  # the studio stops with the batch open
    store = Store(path)
    poller = BatchPoller(store, secrets=KEYS, interval_s=0.05, tick_s=0.02).start()
    try:
        assert _wait(_done(poller, bid))
        assert get_batch(store, bid).collected_at is not None and get_run(store, run_id).status == "finished"
        assert len(_outputs(store, run_id)) == 3
    finally:
        poller.stop()
        store.close()


def test_a_batch_just_sent_waits_one_interval_before_its_first_check(store, mock):
    run_id = plan_run(store, recipe(n_items=2, samples_per_item=1))
    rep = submit_batch(store, run_id, make_client("openai", base_url=mock.url, api_key="sk-test"), base_url=mock.url)
    poller = BatchPoller(store, secrets=KEYS, interval_s=600)
    assert poller.tick() == 0 and _retrieves(mock, rep.batch.remote_id) == 0
    assert "waiting for its first check" in describe(poller.state(rep.batch.batch_id), True)
    poller.poke(rep.batch.batch_id)  # the page's Check status: due now
    assert poller.tick() == 1 and get_batch(store, rep.batch.batch_id).collected_at is not None


def test_a_refused_key_is_recorded_in_words_and_backed_off_then_recovers(store, mock):
    run_id = plan_run(store, recipe(n_items=2, samples_per_item=1))
    bid = submit_batch(store, run_id, make_client("openai", base_url=mock.url, api_key="sk-test"), base_url=mock.url).batch.batch_id
    poller = BatchPoller(store, secrets={"OPENAI_API_KEY": "sk-wrong"}, interval_s=10, error_max_s=1000)
    poller.tick()
    waits = []
    for _ in range(3):
        poller.poke(bid)
        assert poller.tick() == 1
        waits.append(poller.state(bid).next_at - time.monotonic())
    s = poller.state(bid)
    assert s.failures == 3 and s.outcome is None
    # doubling from the interval: 20 s, 40 s, 80 s
    assert [round(w / 10) * 10 for w in waits] == [20, 40, 80]
    b = get_batch(store, bid)
    assert b.is_open and "Unauthorised (HTTP 401)" in b.error and "$OPENAI_API_KEY" in b.error and "sk-wrong" not in b.error
    assert "Check 3 failed" in b.error and "next try in 80 s" in b.error
    assert "backing off after 3 failed check(s)" in describe(s, True)
    # the right key (added to st.secrets, read by the page): tried again at once, collected, the error cleared
    poller.set_secrets(KEYS)
    assert poller.state(bid).next_at == 0.0
    poller.tick()
    b = get_batch(store, bid)
    assert b.collected_at is not None and b.error is None and len(_outputs(store, run_id)) == 2


def test_a_provider_that_is_down_never_ends_the_thread(store):
    mock = BatchMock().start()
    run_id = plan_run(store, recipe(n_items=2, samples_per_item=1))
    bid = submit_batch(store, run_id, make_client("anthropic", base_url=mock.url, api_key="ak-test"), base_url=mock.url).batch.batch_id
    mock.stop()  # the provider goes away
    poller = BatchPoller(store, secrets=KEYS, interval_s=0.01, error_max_s=0.05, tick_s=0.01).start()
    try:
        assert _wait(lambda: (st := poller.state(bid)) is not None and st.failures >= 3)
        assert poller.alive
        b = get_batch(store, bid)
        assert b.is_open and "Could not connect to" in b.error and mock.url.removesuffix("/v1") in b.error
    finally:
        poller.stop()


def test_a_missing_key_sends_nothing_and_says_which(store, mock, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    run_id = plan_run(store, recipe(n_items=2, samples_per_item=1))
    bid = submit_batch(store, run_id, make_client("anthropic", base_url=mock.url, api_key="ak-test"), base_url=mock.url).batch.batch_id
    before = len(mock.requests)
    poller = BatchPoller(store, secrets={}, interval_s=0)
    poller.tick()
    assert poller.state(bid).failures == 1 and len(mock.requests) == before and "$ANTHROPIC_API_KEY" in get_batch(store, bid).error


def test_an_anthropic_batch_run_resumes_live_on_the_anthropic_preset_with_its_own_key(store, mock, monkeypatch):
    # the Anthropic preset's endpoint, here the OpenAI-compatible mock that takes only the Anthropic key
    with MockServer(api_key="ak-live") as url:
        monkeypatch.setitem(PRESETS, "anthropic", replace(PRESETS["anthropic"], base_url=url))
        cfg = run_config("anthropic", "mock-model", base_url=mock.url)  # the batch went through a test URL
        run_id = prepare_run(store, recipe(n_items=4, samples_per_item=1), cfg, RunSettings())
        assert get_run(store, run_id).backend == "anthropic" and not get_run(store, run_id).base_url
        client = make_client("anthropic", base_url=mock.url, api_key="ak-test")
        bid = submit_batch(store, run_id, client, base_url=mock.url).batch.batch_id
        assert "pay twice" in live_resume_refusal(store, get_run(store, run_id))  # its lines are in an open batch
        mock.expire = True  # only the first half comes back
        with pytest.raises(BatchExpired):
            collect_batch(store, bid, client)
        run = get_run(store, run_id)
        assert run.status == "interrupted" and len(_outputs(store, run_id)) == 2
        assert live_resume_refusal(store, run) is None  # no live backend is missing any more
        own = resume_config(run, secrets={"ANTHROPIC_API_KEY": "ak-live", "OPENAI_API_KEY": "sk-other"})
        assert (own.preset, own.base_url, own.api_key) == ("anthropic", url, "ak-live")  # never the batch's test URL
        outcome = run_blocking(store, run_id, run_backend(store, run_id, own, None))
        assert outcome.status == "finished" and outcome.generated == 2, outcome
        assert len(_outputs(store, run_id)) == 4 and get_run(store, run_id).status == "finished"


def test_live_resume_with_lines_in_an_open_batch_needs_consent(store, mock):
    run_id = plan_run(store, recipe(n_items=3, samples_per_item=1))
    assert live_resume_refusal(store, get_run(store, run_id)) is None
    client = make_client("openai", base_url=mock.url, api_key="sk-test")
    bid = submit_batch(store, run_id, client, base_url=mock.url).batch.batch_id
    why = live_resume_refusal(store, get_run(store, run_id))
    assert why and "3 line(s)" in why and bid in why and "pay twice" in why
    assert live_resume_refusal(store, get_run(store, run_id), pay_twice=True) is None
    collect_batch(store, bid, client)
    assert live_resume_refusal(store, get_run(store, run_id)) is None



def test_an_expired_batch_is_collected_with_its_problem_said(store, mock):
    run_id = plan_run(store, recipe(n_items=4, samples_per_item=1))
    mock.expire = True  # only the first half comes back
    bid = submit_batch(store, run_id, make_client("openai", base_url=mock.url, api_key="sk-test"), base_url=mock.url).batch.batch_id
    poller = BatchPoller(store, secrets=KEYS, interval_s=0)
    poller.tick()
    s = poller.state(bid)
    assert s.outcome.startswith("collected with a problem: The batch expired before it was done.") and s.failures == 0
    assert get_batch(store, bid).collected_at is not None and len(_outputs(store, run_id)) == 2
    assert get_run(store, run_id).status == "interrupted"  # the rest can be resubmitted
    assert poller.tick() == 0  # nothing open: nothing checked again


def _vllm_output(input_path: str) -> list[str]:
    """What `vllm run-batch` writes for an input file: one OpenAI batch output line per input line."""
    out = []
    for i, raw in enumerate(Path(input_path).read_text().splitlines()):
        req = json.loads(raw)
        body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": f"vllm {i}"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
        out.append(json.dumps({"id": f"vllm-{i}", "custom_id": req["custom_id"],
                               "response": {"status_code": 200, "request_id": f"r{i}", "body": body}, "error": None}))
    return out


def test_a_vllm_output_file_is_collected_by_the_poller_only_once_it_is_whole(store):
    run_id = plan_run(store, recipe(n_items=4, samples_per_item=1))
    b = submit_batch(store, run_id, make_client("vllm", folder=store.work_dir / "batches")).batch
    out, lines = Path(b.output_path), _vllm_output(b.input_path)
    poller = BatchPoller(store, interval_s=0)

    def check() -> str:
        poller.poke(b.batch_id)
        assert poller.tick() == 1
        return poller.state(b.batch_id).outcome or ""

    assert check() == "" and poller.state(b.batch_id).failures == 0  # no file yet: waiting, not an error
    out.write_text("\n".join(lines[:2]) + "\n")  # half written
    assert check() == "" and get_batch(store, b.batch_id).counts["completed"] == 2
    out.write_text("\n".join(lines[:3]) + "\n" + lines[3][:40])  # every line begun, the last one cut
    assert check() == "" and len(run_samples(store, run_id)) == 0
    out.write_text("\n".join(lines) + "\n")
    assert check() == "collected: 4 imported, 0 failed"
    assert sorted(r["text"] for r in _outputs(store, run_id)) == [f"vllm {i}" for i in range(4)]
    assert get_run(store, run_id).status == "finished" and poller.tick() == 0


def test_a_vllm_output_that_changes_between_two_looks_is_not_done_yet(store):
    import os
    import threading

    from services.generation.batch_client import VllmFile

    run_id = plan_run(store, recipe(n_items=2, samples_per_item=1))
    client = VllmFile(store.work_dir / "batches", settle_s=0.4)
    b = submit_batch(store, run_id, client).batch
    out = Path(b.output_path)
    out.write_text("\n".join(_vllm_output(b.input_path)) + "\n")
    st = out.stat()
    # the writer touches the file while the poll waits between its two looks
    threading.Timer(0.1, lambda: os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))).start()
    remote = client.poll(None, b.output_path, b.n_lines)
    assert not remote.done and "still changing" in remote.message
    assert client.poll(None, b.output_path, b.n_lines).done


def test_a_vllm_done_marker_collects_a_short_output_and_leaves_the_rest_to_resubmit(store):
    run_id = plan_run(store, recipe(n_items=4, samples_per_item=1))
    b = submit_batch(store, run_id, make_client("vllm", folder=store.work_dir / "batches")).batch
    out = Path(b.output_path)
    out.write_text("\n".join(_vllm_output(b.input_path)[:3]) + "\n")  # vllm run-batch stopped after three lines
    poller = BatchPoller(store, interval_s=0)
    poller.tick()
    assert poller.state(b.batch_id).outcome is None  # three of four lines: not done
    out.with_name(out.name + ".done").touch()
    poller.poke(b.batch_id)
    poller.tick()
    assert poller.state(b.batch_id).outcome == "collected: 3 imported, 0 failed, 1 with no result"
    assert len(_outputs(store, run_id)) == 3 and get_run(store, run_id).status == "interrupted"
