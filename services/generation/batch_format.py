"""Batch request lines of a run, and the providers' file formats both ways.

A line's ``custom_id`` is the sample's own key (``run_store.sample_key``), so a result maps back to
exactly one sample, and importing it is exactly-once like a live run. A run's lines are the next
step of every unit (item x sample) that has no output yet: a single-step recipe is one batch; a
multi-step recipe is one batch per step, each sent when the step before it has been collected.

Formats: the OpenAI Batch JSONL (``{"custom_id", "method", "url", "body"}``), which ``vllm run-batch``
reads as well and whose output file both write; the Anthropic Message Batches requests
(``{"custom_id", "params"}``) and results (``{"custom_id", "result": {"type": ...}}``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from services.core.errors import StudioError
from services.core.store import Store
from services.generation.run_store import RunInfo, existing_outputs, sample_key
from services.generation.steps import OUTPUT, StepRenderer
from services.recipes.plan import PlanItem
from services.recipes.plan_store import load_plan_items
from services.recipes.templating import TemplateProblem
from services.recipes.version_store import load_version

PROVIDERS = ("openai", "anthropic", "vllm")
CHAT_URL = "/v1/chat/completions"
ANTHROPIC_MAX_TOKENS = 1024  # Anthropic requires max_tokens; used only when the run sets none
# The most one batch may hold (lines, bytes), as the providers document them: OpenAI 50,000
# requests and a 200 MB input file; Anthropic 100,000 requests or 256 MB. A bigger run is split.
LIMITS: dict[str, tuple[int, int]] = {"openai": (50_000, 200 * 2**20), "anthropic": (100_000, 256 * 2**20)}


class BatchOutputMalformed(StudioError):
    """A batch's output file (or some of its lines) could not be read."""

    title = "The batch output could not be read"


@dataclass(frozen=True)
class BatchLine:
    custom_id: str  # the sample's key
    item: PlanItem
    sample_idx: int
    step: str
    messages: list[dict[str, str]] | None  # None when the template could not be rendered
    params: dict[str, Any]
    problem: str | None = None  # why the messages could not be rendered


@dataclass(frozen=True)
class LineResult:
    custom_id: str
    text: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None
    error: str | None


def unit_params(run: RunInfo, sample_idx: int) -> dict[str, Any]:
    """The run's parameters for one sample, with the same seed offset a live run uses."""
    params = dict(run.params)
    if params.get("seed") is not None and sample_idx:
        params["seed"] = int(params["seed"]) + sample_idx
    return params


def run_lines(store: Store, run: RunInfo) -> tuple[list[BatchLine], dict[str, BatchLine]]:
    """(the lines to send now, every line any batch of this run could have sent, by custom_id).

    A unit's line is its first step with no output whose earlier steps all have one."""
    recipe = load_version(store, run.recipe_hash)
    renderer = StepRenderer(recipe)
    have = existing_outputs(store, run.run_id)
    steps = [*renderer.step_names, OUTPUT]
    todo: list[BatchLine] = []
    known: dict[str, BatchLine] = {}
    for item in load_plan_items(store, run.plan_id, limit=run.item_limit):
        for s in range(run.samples_per_item):
            params, outputs = unit_params(run, s), {}
            for step in steps:
                key = sample_key(run.run_id, item.key, s, step)
                if key in have:
                    outputs[step] = have[key]
                    known[key] = BatchLine(key, item, s, step, None, params)
                    continue
                try:
                    line = BatchLine(key, item, s, step, renderer.messages(step, item, outputs), params)
                except TemplateProblem as exc:
                    line = BatchLine(key, item, s, step, None, params, f"step '{step}': {exc}")
                todo.append(line)
                known[key] = line
                break
    return todo, known


def split_lines(lines: list[BatchLine], provider: str, model: str, max_lines: int | None = None) -> list[list[BatchLine]]:
    """The lines in batches the provider accepts (a margin of 5% under its byte limit)."""
    cap_lines, cap_bytes = LIMITS.get(provider, (len(lines) or 1, 2**62))
    cap_lines = min(cap_lines, max_lines or cap_lines)
    parts: list[list[BatchLine]] = [[]]
    size = 0
    for ln in lines:
        n = len(openai_jsonl([ln], model)) if provider != "anthropic" else len(json.dumps(anthropic_requests([ln], model)))
        if parts[-1] and (len(parts[-1]) >= cap_lines or size + n > cap_bytes * 0.95):
            parts.append([])
            size = 0
        parts[-1].append(ln)
        size += n
    return [p for p in parts if p]


# -- OpenAI Batch JSONL (also what `vllm run-batch` reads) --------------------------------------
def openai_jsonl(lines: list[BatchLine], model: str) -> bytes:
    out = [json.dumps({"custom_id": ln.custom_id, "method": "POST", "url": CHAT_URL,
                       "body": {"model": model, "messages": ln.messages, **ln.params}}, ensure_ascii=False)
           for ln in lines]
    return ("\n".join(out) + "\n").encode()


def _where(name: str, n: int) -> str:
    return f"{name} line {n}"


def parse_openai_output(text: str, name: str = "output") -> tuple[list[LineResult], list[str]]:
    """Results of an OpenAI (or vLLM) batch output or error file, and the lines that could not be
    read, each named by file and line number."""
    results, bad = [], []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            cid = obj["custom_id"]
            if not isinstance(cid, str):
                raise TypeError("custom_id is not a string")
            if obj.get("error"):
                err = obj["error"]
                results.append(LineResult(cid, None, None, None, None, f"{err.get('code') or 'error'}: {err.get('message') or ''}".strip()))
                continue
            resp = obj["response"]
            body = resp.get("body") or {}
            if int(resp.get("status_code", 0)) != 200:
                msg = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
                results.append(LineResult(cid, None, None, None, None, f"HTTP {resp.get('status_code')}: {msg or str(body)[:200]}"))
                continue
            choice = body["choices"][0]
            usage = body.get("usage") or {}
            results.append(LineResult(cid, choice["message"].get("content") or "", usage.get("prompt_tokens"),
                                      usage.get("completion_tokens"), choice.get("finish_reason"), None))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            bad.append(f"{_where(name, n)}: {type(exc).__name__} {str(exc)[:120]}")
    return results, bad


# -- Anthropic Message Batches ---------------------------------------------------------------------
def anthropic_requests(lines: list[BatchLine], model: str) -> list[dict[str, Any]]:
    """Message Batches requests: the system messages become ``system``; ``seed`` is not an
    Anthropic parameter and is dropped, and so is ``top_p`` at its default of 1."""
    reqs = []
    for ln in lines:
        msgs = ln.messages or []
        system = "\n\n".join(m["content"] for m in msgs if m["role"] == "system")
        p: dict[str, Any] = {"model": model, "max_tokens": int(ln.params.get("max_tokens") or ANTHROPIC_MAX_TOKENS),
                             "messages": [{"role": m["role"], "content": m["content"]} for m in msgs if m["role"] != "system"]}
        if system:
            p["system"] = system
        if ln.params.get("temperature") is not None:
            p["temperature"] = float(ln.params["temperature"])
        if ln.params.get("top_p") not in (None, 1, 1.0):
            p["top_p"] = float(ln.params["top_p"])
        reqs.append({"custom_id": ln.custom_id, "params": p})
    return reqs


def parse_anthropic_results(text: str, name: str = "results") -> tuple[list[LineResult], list[str]]:
    results, bad = [], []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            cid, res = obj["custom_id"], obj["result"]
            kind = res["type"]
            if kind == "succeeded":
                msg = res["message"]
                text_out = "".join(b.get("text", "") for b in msg.get("content") or [] if b.get("type") == "text")
                usage = msg.get("usage") or {}
                results.append(LineResult(cid, text_out, usage.get("input_tokens"), usage.get("output_tokens"),
                                          msg.get("stop_reason"), None))
            elif kind == "errored":
                err = res.get("error") or {}
                err = err.get("error", err)
                results.append(LineResult(cid, None, None, None, None, f"{err.get('type', 'error')}: {err.get('message', '')}"))
            elif kind in ("canceled", "expired"):
                why = "the 24-hour window ended first" if kind == "expired" else "the batch was cancelled"
                results.append(LineResult(cid, None, None, None, None, f"{kind}: {why}"))
            else:
                raise ValueError(f"unknown result type {kind!r}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            bad.append(f"{_where(name, n)}: {type(exc).__name__} {str(exc)[:120]}")
    return results, bad
