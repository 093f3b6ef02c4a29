"""Rendering for the Generate page: backend form, connection result, parameters, prices, forecast, live run view.

Model output is shown as text only (dataframes and st.text), never as HTML or markdown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from services.generation.backends import ConnectionResult
from services.generation.forecast import Forecast, Span, pace
from services.generation.presets import LOCAL, PRESETS, Preset
from services.generation.run_store import Price, PriceTable, Progress, RunInfo

LOCAL_WARNING = (
    "The built-in model is SmolLM2-135M: tiny and offline, for demos and smoke tests only. It follows a "
    "requested sentiment about half the time and a requested length rarely. For datasets that matter, "
    "pick a real backend (OpenAI, vLLM, Ollama, a llama.cpp server with a larger model)."
)


@dataclass
class BackendChoice:
    preset: Preset
    base_url: str
    model: str
    session_key: str | None


def backend_form(server_status: str, key_found: dict[str, bool]) -> BackendChoice:
    """Preset picker plus base_url / model / key fields; returns what the user chose."""
    names = list(PRESETS)
    name = st.selectbox("Backend", names, format_func=lambda n: PRESETS[n].label, key="generate_backend")
    preset = PRESETS[name]
    if name == LOCAL:
        st.caption(f"Built-in model server: **{server_status}** (starts on first use, on 127.0.0.1)")
        st.warning(LOCAL_WARNING, icon="⚠️")
        return BackendChoice(preset, "", preset.model, None)
    c1, c2 = st.columns(2)
    base_url = c1.text_input("Base URL", value=preset.base_url, key=f"generate_base_url_{name}")
    model = c2.text_input("Model", value=preset.model, key=f"generate_model_{name}")
    session_key = None
    if preset.key_env:
        if key_found.get(preset.key_env):
            st.caption(f"Key: from `{preset.key_env}` (environment or st.secrets). It is never stored.")
        else:
            session_key = st.text_input(
                f"API key ({preset.key_env} not set)", type="password", key=f"generate_key_{name}",
                help="Kept in this browser session's memory only: never written to the database, logs or exports.",
            ) or None
    return BackendChoice(preset, base_url.strip(), model.strip(), session_key)


def connection_result(result: ConnectionResult) -> None:
    (st.success if result.ok else st.error)(result.message)
    if result.models:
        st.text("Models: " + ", ".join(result.models[:50]))


def params_form(defaults: Any, budget_note: str | None = None) -> dict[str, Any]:
    """Model parameters and worker settings; ``budget_note`` is said under a budget that is set."""
    c = st.columns(5)
    temperature = c[0].slider("Temperature", 0.0, 2.0, float(defaults.temperature), 0.05, key="generate_temperature")
    top_p = c[1].slider("top_p", 0.05, 1.0, float(defaults.top_p), 0.05, key="generate_top_p")
    max_tokens = c[2].number_input("Max tokens", 1, 32_000, int(defaults.max_tokens), key="generate_max_tokens")
    seed = c[3].number_input("Seed (-1: none)", -1, 2**31 - 1, -1 if defaults.seed is None else int(defaults.seed), key="generate_seed")
    spi = c[4].number_input("Samples per item", 1, 50, int(defaults.samples_per_item), key="generate_spi")
    d = st.columns(5)
    concurrency = d[0].number_input("Concurrency", 1, 256, 4, key="generate_concurrency")
    rpm = d[1].number_input("Requests/min (0: no limit)", 0, 1_000_000, 0, key="generate_rpm")
    tpm = d[2].number_input("Tokens/min (0: no limit)", 0, 100_000_000, 0, key="generate_tpm")
    timeout = d[3].number_input("Timeout per request (s)", 1, 3600, 120, key="generate_timeout")
    budget = d[4].number_input("Budget cap, USD (0: none)", 0.0, 100_000.0, 0.0, 0.5, key="generate_budget",
                               help="Never passed: a request starts only if its worst case (every prompt byte a token, the answer "
                               "at max tokens) fits with what is spent and in flight. The model needs a price.")
    if budget and budget_note:
        d[4].caption(budget_note)
    return {"temperature": temperature, "top_p": top_p, "max_tokens": int(max_tokens), "seed": None if seed < 0 else int(seed),
            "samples_per_item": int(spi), "concurrency": int(concurrency), "rpm": int(rpm) or None, "tpm": int(tpm) or None,
            "timeout_s": float(timeout), "budget_usd": float(budget) or None}


def price_editor(rows: list[tuple[str, float, float]], shipped: PriceTable, on_save: Callable[[dict[str, Price]], None]) -> None:
    """The price table as an editable grid (rows can be added); "Save prices" hands the whole table to ``on_save``."""
    with st.expander(f"Price table (USD per million tokens; shipped figures as of {shipped.as_of})"):
        st.caption(f"Shipped prices as of **{shipped.as_of}**, from {shipped.source}: standard tier, no Batch or "
                   "cached-input discount (data/prices.yaml). Prices change: correct a row here and your figure is "
                   "kept; a shipped model missing from the table gets its shipped price back when the studio starts.")
        prices = pd.DataFrame(rows, columns=["model", "input_per_mtok", "output_per_mtok"])
        edited = st.data_editor(prices, num_rows="dynamic", hide_index=True, key="generate_prices")
        if st.button("Save prices", key="generate_save_prices"):
            kept = edited.dropna(subset=["model"])
            on_save({str(r.model): Price(float(r.input_per_mtok or 0), float(r.output_per_mtok or 0)) for r in kept.itertuples()})
            st.success("Prices saved.")


def forecast_view(title: str, f: Forecast | None) -> None:
    """Requests, then tokens, cost and time as ranges; tokens in a short form (the exact range in its help)."""
    if f is None:
        return
    st.markdown(f"**{title}** — {f.basis}")
    c = st.columns(4)
    c[0].metric("Requests", f"{f.requests:,}")
    c[1].metric("Tokens", _range(f.tokens, short_count), help=f"prompt {_range(f.prompt_tokens, _exact)} + "
                f"completion {_range(f.completion_tokens, _exact)} tokens")
    c[2].metric("Cost", "no price set" if f.cost_usd is None else _range(f.cost_usd, _usd),
                help=None if f.cost_usd is not None else "Add the model to the price table to forecast its cost.")
    c[3].metric("Time", "—" if f.seconds is None else _range(f.seconds, _duration), help=f.time_note or None)
    if f.time_note:
        st.caption(f.time_note)


def _range(s: Span, fmt: Callable[[float], str]) -> str:
    """"lo–hi", the unit said once when both ends share it ("9.0–11.0 min")."""
    lo, hi = fmt(s.low), fmt(s.high)
    if lo == hi:
        return lo
    (a, _, unit_a), (b, _, unit_b) = lo.rpartition(" "), hi.rpartition(" ")
    return f"{a}–{b} {unit_a}" if a and unit_a == unit_b else f"{lo}–{hi}"


def short_count(n: float) -> str:
    """1234 -> "1.2k", 1234567 -> "1.2M": short enough for a metric box."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}".removesuffix(".0") + unit
    return f"{n:.0f}"


def _exact(n: float) -> str:
    return f"{n:,.0f}"


def _usd(x: float) -> str:
    """Cents where they matter, two significant digits below a cent ("$0.0012")."""
    return f"${x:,.2f}" if x >= 0.01 else f"${x:.2g}" if x >= 1e-4 else "<$0.0001" if x > 0 else "$0"


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def run_label(r: RunInfo) -> str:
    kind = "preview" if r.item_limit is not None else "run"
    # No status here: a widget's option labels are not refreshed while it keeps its key; the live view shows it.
    return f"{r.name or r.run_id} · {kind} · {r.model} · {r.created_at:%Y-%m-%d %H:%M}"


def live_view(run: RunInfo, p: Progress, newest: list[dict[str, Any]], events: list[tuple], now: datetime) -> None:
    """Progress bar, rates, tokens, errors, events and the newest samples (as text)."""
    # Rate and ETA from this run's own pace (this attempt, after its first output: not the warm-up).
    pc = pace(p, run.status, now, run.finished_at)
    left = f" · about {_clock(pc.eta_s)} left" if run.status == "running" and pc.eta_s else ""
    st.progress(p.fraction, text=f"{run.status}: {p.done + p.failed:,} of {p.total:,} samples{left}")
    tokens = p.prompt_tokens + p.completion_tokens
    c = st.columns(4)
    c[0].metric("Generated", f"{p.done:,}")
    c[1].metric("Errors", f"{p.failed:,}")
    c[2].metric("Tokens", short_count(tokens), help=f"{p.prompt_tokens:,} prompt + {p.completion_tokens:,} completion")
    c[3].metric("Cost", f"${p.cost_usd:,.4f}")
    d = st.columns(4)
    d[0].metric("Elapsed", "—" if pc.elapsed_s is None else _clock(pc.elapsed_s))
    d[1].metric("Samples/s", "—" if pc.per_s is None else f"{pc.per_s:.2f}")
    eta = "—" if pc.eta_s is None else _clock(pc.eta_s)
    d[2].metric("ETA", eta, help="Time left at this run's own rate so far." if run.status == "running" else None)
    d[3].metric("Remaining", f"{p.remaining:,}")
    if run.error:
        (st.info if run.status in ("cancelled", "interrupted") else st.error)(run.error)
    if newest:
        st.caption("Newest samples")
        df = pd.DataFrame([{"item": s["item_idx"], "sample": s["sample_idx"], "step": s["step"],
                            "condition": ", ".join(f"{k}={v}" for k, v in s["condition"].items()),
                            "text": s["text"] if s["error"] is None else f"[error] {s['error']}",
                            "tokens": s["completion_tokens"], "latency ms": s["latency_ms"]} for s in newest])
        st.dataframe(df, hide_index=True, width="stretch",
                     column_config={"text": st.column_config.TextColumn(width="large")})
        st.text(_first_text(newest))
    if events:
        with st.expander("Run events"):
            st.dataframe(pd.DataFrame(events, columns=["at (UTC)", "event", "message"]), hide_index=True, width="stretch")


def _clock(s: float) -> str:
    """Seconds as "42 s", "3 min 05 s" or "1 h 02 min"."""
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _first_text(newest: list[dict[str, Any]]) -> str:
    for s in newest:
        if s["error"] is None and s["text"]:
            return f"Latest (item {s['item_idx']}, {s['step']}):\n{s['text']}"
    return ""
