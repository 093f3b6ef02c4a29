"""Generate page: send a run as a provider batch, compare live and batch cost and time, check its
status, collect its results with progress, resubmit what failed; what the background poller is
doing with each open batch, and the refusal of a live resume that would pay twice. The work is
services.generation's batch_* modules; this draws it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from components.generate_view import _duration, _range, _usd
from services.core.errors import StudioError
from services.generation.backends import BackendConfig
from services.generation.batch_client import PROVIDER_INFO, client_for, key_for, run_config, vllm_command, vllm_output_refusal
from services.generation.batch_forecast import compare
from services.generation.batch_jobs import collect_batch, live_resume_refusal, refresh, submit_batch
from services.generation.batch_poller import BatchPoller, describe
from services.generation.batch_store import BatchInfo, get_batch, list_batches, update_batch
from services.generation.forecast import Forecast
from services.generation.run_store import RunInfo, get_price

_MSG = "generate_batch_msg"
_PAY_TWICE = "generate_batch_pay_twice"
DEFAULT_MODEL = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-20241022", "vllm": ""}


def _say(kind: str, text: str) -> None:
    """A message shown once, after the rerun that follows a click."""
    st.session_state.setdefault(_MSG, []).append((kind, text))


def _client(store: Any, provider: str, base_url: str | None, secrets: dict[str, Any]) -> Any:
    return client_for(provider, base_url=base_url or None, secrets=secrets, folder=store.work_dir / "batches")


def _submit(store: Any, secrets: dict[str, Any], provider: str, base_url: str, run_id: str | None,
            new_run: Callable[[BackendConfig], str], model: str) -> None:
    """A button's callback (it runs before the page, so it may pick the run to show)."""
    env = PROVIDER_INFO[provider].key_env
    if env and not key_for(provider, secrets=secrets):
        _say("error", f"No key for {PROVIDER_INFO[provider].label}: set ${env} in the environment or st.secrets. Nothing was sent.")
        return
    try:
        if run_id is None:
            if not model:
                raise ValueError("Give the model the batch should use.")
            run_id = new_run(run_config(provider, model, base_url or None))
        rep = submit_batch(store, run_id, _client(store, provider, base_url, secrets), base_url=base_url or None)
    except (StudioError, ValueError) as exc:
        _say("error", str(exc))
        return
    st.session_state["generate_run"] = run_id
    st.session_state["generate_run_pick"] = run_id
    if rep.batch is None:
        text = "Nothing to send: every line has an output" + (f" or is in an open batch ({rep.in_flight})." if rep.in_flight else ".")
        _say("info", text)
        return
    text = f"Sent {', '.join(b.batch_id for b in rep.batches)}: {rep.sent} line(s) to {PROVIDER_INFO[provider].label}."
    if rep.cleared:
        text += f" {rep.cleared} failed line(s) are sent again."
    for b in rep.batches:
        if b.input_path:
            text += f" Run: {vllm_command(b.input_path, b.output_path or '', b.model)}"
    _say("success", text)


def _progress(b: BatchInfo) -> str:
    """The provider's own counts (OpenAI: completed/failed; Anthropic: succeeded/errored/expired/canceled)."""
    if not b.counts:
        return "—"
    done = int(b.counts.get("completed") or b.counts.get("succeeded") or 0)
    bad = sum(int(b.counts.get(k) or 0) for k in ("failed", "errored", "expired", "canceled"))
    return f"{done} of {b.n_lines} done" + (f", {bad} not" if bad else "")


def _table(batches: list[BatchInfo]) -> None:
    st.dataframe(pd.DataFrame([{
        "batch": b.batch_id, "provider": b.provider, "state": "collected" if b.collected_at else b.status, "lines": b.n_lines,
        "progress": _progress(b), "imported": b.imported, "failed": b.failed,
        "note": b.error or "", "sent": f"{b.created_at:%Y-%m-%d %H:%M}",
        # the last write of the row: the send, a check, a recorded error, or the collect (kept across restarts)
        "updated (UTC)": f"{(b.collected_at or b.updated_at):%Y-%m-%d %H:%M:%S}"} for b in batches]), hide_index=True)


def resume_refusal(store: Any, run: RunInfo) -> str | None:
    """Why the page's live Resume may not run now (an Anthropic batch run, or lines in an open
    batch without the panel's 'Resume live anyway' ticked), or None."""
    return live_resume_refusal(store, run, pay_twice=bool(st.session_state.get(_PAY_TWICE)))


def _batches_view(store: Any, poller: BatchPoller, run_id: str, open_ids: list[str]) -> None:
    """The run's batches and what the poller is doing with each open one, refreshed every few
    seconds while one is open (only this fragment reruns); once the poller has collected one of
    them, one full rerun shows the imported rows everywhere on the page."""

    @st.fragment(run_every=5.0 if open_ids else None)
    def view() -> None:
        batches = list_batches(store, run_id)
        _table(batches)
        for b in batches:  # what this process's poller collected, unasked
            if (s := poller.state(b.batch_id)) is not None and s.outcome and s.last_polled:
                st.caption(f"`{b.batch_id}`: {s.outcome}, in the background at {s.last_polled:%H:%M:%S} UTC.")
        if not open_ids:
            return
        st.caption("Open batches are checked in the background by this studio process, and collected when they end, "
                   "with the browser closed too; a vLLM output file once it is whole (a line per input line, unchanged "
                   "between two looks) or has a `.done` marker next to it.")
        for problem in (poller.warning, poller.note):
            if problem:
                st.warning(problem)
        for bid in open_ids:
            s = poller.state(bid)
            st.caption(f"`{bid}`: {describe(s, poller.alive)}")
            if s is not None and s.last_error and s.outcome is None:
                st.warning(f"{bid}: {s.last_error}")
        still = {b.batch_id for b in list_batches(store, run_id) if b.is_open}
        if any(bid not in still for bid in open_ids):
            st.rerun()

    view()


def batch_panel(store: Any, secrets: dict[str, Any], forecast: Forecast, live_backend: tuple[str, str], run: RunInfo | None,
                poller: BatchPoller, new_run: Callable[[BackendConfig], str]) -> None:
    """``forecast`` is the rough forecast of the full plan on ``live_backend`` (preset, model);
    ``poller`` is the process's background poller; ``new_run`` prepares a run of the page's recipe
    for the backend it is given and returns its id."""
    poller.set_secrets(secrets)  # a key added to st.secrets since the poller started
    batches = list_batches(store, run.run_id) if run else []
    with st.expander("Send as a batch: half price on OpenAI and Anthropic, done within 24 hours", expanded=bool(batches)):
        c1, c2, c3 = st.columns(3)
        provider = c1.selectbox("Batch provider", list(PROVIDER_INFO), format_func=lambda p: PROVIDER_INFO[p].label,
                                key="generate_batch_provider")
        info = PROVIDER_INFO[provider]
        model = c2.text_input("Model", value=live_backend[1] if live_backend[0] == provider else DEFAULT_MODEL[provider],
                              key=f"generate_batch_model_{provider}")
        base_url = c3.text_input("API URL", value=info.base_url, key=f"generate_batch_url_{provider}",
                                 disabled=provider == "vllm", help="A proxy or a test server; the provider's own by default")
        if info.key_env:
            found = bool(key_for(provider, secrets=secrets))
            (st.caption if found else st.warning)(f"Key: ${info.key_env} {'found' if found else 'is not set (environment or st.secrets)'}.")
        else:
            st.caption(f"Writes the input file for `vllm run-batch` under {store.work_dir / 'batches'}; collect reads its output file.")
        c = compare(forecast, provider, get_price(store, model) if model else None,
                    live_time_applies=live_backend == (provider, model))
        def cost(x: Any) -> str:
            return "no price set" if x is None else _range(x, _usd)

        st.table(pd.DataFrame({"cost": [cost(c.live_cost), cost(c.batch_cost)],
                               "time": ["—" if c.live_seconds is None else _range(c.live_seconds, _duration),
                                        "as long as it takes there" if provider == "vllm" else f"within {c.window_s // 3600} h"]},
                              index=["live", "batch"]))
        st.caption(f"{forecast.requests:,} request(s). Cost: {c.cost_note}. Time: {c.time_note}.")
        b1, b2 = st.columns(2)
        b1.button("Send the full run as a batch", key="generate_batch_submit_new", on_click=_submit,
                  args=(store, secrets, provider, base_url, None, new_run, model))
        if run is not None:
            b2.button("Send what this run is missing as a batch", key="generate_batch_submit_run", on_click=_submit,
                      args=(store, secrets, provider, base_url, run.run_id, new_run, model),
                      help="Only lines with no output that no open batch holds: the failed and missing ones")
        for kind, text in st.session_state.pop(_MSG, []):
            getattr(st, kind)(text)
        if run is None or not batches:
            return
        st.markdown(f"**Batches of this run** ({len(batches)})")
        open_ = [b for b in batches if b.is_open]
        _batches_view(store, poller, run.run_id, [b.batch_id for b in open_])
        if open_:
            st.checkbox("Resume live anyway (pays again for the lines in open batches)", key=_PAY_TWICE,
                        help="Lines in an open batch are paid for there: the Resume button above refuses to send them live "
                             "again unless this is ticked. Collect the batch first to pay once.")
        s1, s2 = st.columns(2)
        if s1.button("Check status", key="generate_batch_status", disabled=not open_):
            for b in open_:
                try:
                    with poller.holding(b.batch_id):
                        refresh(store, b.batch_id, _client(store, b.provider, b.base_url, secrets))
                    poller.poke(b.batch_id)  # done by now? the poller collects it at once; an error backoff starts over
                except StudioError as exc:
                    _say("error", str(exc))
            st.rerun()
        vllm_out = None
        if any(b.provider == "vllm" for b in open_):
            first = next(b for b in open_ if b.provider == "vllm")
            vllm_out = st.text_input("vLLM output file", value=first.output_path or "", key="generate_batch_vllm_out")
        if s2.button("Collect", key="generate_batch_collect", type="primary", disabled=not open_):
            _collect(store, open_, secrets, vllm_out, poller)
            st.rerun()  # the table and the run's view show what was imported


def _collect(store: Any, batches: list[BatchInfo], secrets: dict[str, Any], vllm_out: str | None, poller: BatchPoller) -> None:
    for b in batches:
        if b.provider == "vllm" and vllm_out and vllm_out != b.output_path:
            if (problem := vllm_output_refusal(store, vllm_out)) is not None:
                _say("error", problem)
                continue
            b = update_batch(store, b.batch_id, output_path=vllm_out)
        bar = st.progress(0.0, text=f"Collecting {b.batch_id}…")

        def tick(done: int, total: int, bar: Any = bar, bid: str = b.batch_id) -> None:
            bar.progress(done / total if total else 1.0, text=f"{bid}: {done:,} of {total:,} row(s) written")

        try:
            with poller.holding(b.batch_id):  # not at the same moment as the background poller
                if not get_batch(store, b.batch_id).is_open:
                    _say("info", f"{b.batch_id} was collected in the background meanwhile.")
                    continue
                rep = collect_batch(store, b.batch_id, _client(store, b.provider, b.base_url, secrets), on_progress=tick)
            _say("success", f"Collected {b.batch_id}: {rep.imported} imported, {rep.failed} failed"
                 + (f", {rep.missing} with no result" if rep.missing else "") + ".")
        except StudioError as exc:  # what could be read was imported before this was raised
            _say("error", f"{exc.title}. {exc}")

