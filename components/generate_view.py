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
from services.generation.forecast import Forecast
from services.generation.presets import LOCAL, PRESETS, Preset
from services.generation.run_store import Price, Progress, RunInfo

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


def params_form(defaults: Any) -> dict[str, Any]:
    """Model parameters and worker settings."""
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
    budget = d[4].number_input("Budget cap, USD (0: none)", 0.0, 100_000.0, 0.0, 0.5, key="generate_budget")
    return {"temperature": temperature, "top_p": top_p, "max_tokens": int(max_tokens), "seed": None if seed < 0 else int(seed),
            "samples_per_item": int(spi), "concurrency": int(concurrency), "rpm": int(rpm) or None, "tpm": int(tpm) or None,
            "timeout_s": float(timeout), "budget_usd": float(budget) or None}


def price_editor(rows: list[tuple[str, float, float]], on_save: Callable[[dict[str, Price]], None]) -> None:
    """The price table as an editable grid (rows can be added); "Save prices" hands the whole table to ``on_save``."""
    with st.expander("Price table (USD per million tokens)"):
        prices = pd.DataFrame(rows, columns=["model", "input_per_mtok", "output_per_mtok"])
        edited = st.data_editor(prices, num_rows="dynamic", hide_index=True, key="generate_prices")
        if st.button("Save prices", key="generate_save_prices"):
            kept = edited.dropna(subset=["model"])
            on_save({str(r.model): Price(float(r.input_per_mtok or 0), float(r.output_per_mtok or 0)) for r in kept.itertuples()})
            st.success("Prices saved.")


def forecast_view(title: str, f: Forecast | None) -> None:
    if f is None:
        return
    st.markdown(f"**{title}** — {f.basis}")
    c = st.columns(4)
    c[0].metric("Requests", f"{f.requests:,}")
    c[1].metric("Tokens (prompt + completion)", f"{f.prompt_tokens:,} + {f.completion_tokens:,}")
    c[2].metric("Cost", "no price set" if f.cost_usd is None else f"${f.cost_usd:,.4f}")
    c[3].metric("Time", "—" if f.seconds is None else _duration(f.seconds))


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def run_label(r: RunInfo) -> str:
    kind = "preview" if r.item_limit is not None else "run"
    # No status here: a widget's option labels are not refreshed while it keeps its key; the live view shows it.
    return f"{r.run_id} · {kind} · {r.model} · {r.created_at:%Y-%m-%d %H:%M}"


def live_view(run: RunInfo, p: Progress, newest: list[dict[str, Any]], events: list[tuple], now: datetime) -> None:
    """Progress bar, rates, tokens, errors, events and the newest samples (as text)."""
    st.progress(p.fraction, text=f"{run.status}: {p.done + p.failed:,} of {p.total:,} samples")
    start = run.started_at
    end = now if run.status == "running" else (run.finished_at or p.last_at or now)
    elapsed = (end - start).total_seconds() if start else 0.0
    c = st.columns(5)
    c[0].metric("Generated", f"{p.done:,}")
    c[1].metric("Samples/s", f"{p.done / elapsed:.2f}" if elapsed > 0 else "—")
    c[2].metric("Tokens", f"{p.prompt_tokens + p.completion_tokens:,}")
    c[3].metric("Errors", f"{p.failed:,}")
    c[4].metric("Cost", f"${p.cost_usd:,.4f}")
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


def _first_text(newest: list[dict[str, Any]]) -> str:
    for s in newest:
        if s["error"] is None and s["text"]:
            return f"Latest (item {s['item_idx']}, {s['step']}):\n{s['text']}"
    return ""
