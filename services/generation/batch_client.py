"""Submit, poll and download provider batches over HTTP; or write the file `vllm run-batch` reads.

OpenAI goes through the ``openai`` client (files API upload, ``/v1/batches``); Anthropic's Message
Batches through ``httpx2`` (``/v1/messages/batches``, ``x-api-key``). Keys are passed in, held by
the client object only, and never written or logged: errors name the endpoint and the variable
the key came from, not the key.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx2
import openai

from services.core import settings
from services.core.errors import StudioError
from services.core.store import Store
from services.generation.backends import BackendConfig
from services.generation.batch_format import (
    CHAT_URL,
    BatchLine,
    LineResult,
    anthropic_requests,
    openai_jsonl,
    parse_anthropic_results,
    parse_openai_output,
)

WINDOW = "24h"
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    label: str
    base_url: str
    key_env: str | None


PROVIDER_INFO: dict[str, ProviderInfo] = {p.name: p for p in (
    ProviderInfo("openai", "OpenAI Batch API", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    ProviderInfo("anthropic", "Anthropic Message Batches", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"),
    ProviderInfo("vllm", "File for `vllm run-batch` (your own GPUs)", "", None),
)}


class BatchAuthError(StudioError):
    title = "The batch provider refused the key"


class BatchProviderError(StudioError):
    title = "The batch provider answered with an error"


class BatchNotReady(StudioError):
    title = "The batch is not finished yet"


@dataclass
class Remote:
    """What the provider says about a batch now."""

    status: str  # the provider's word: validating, in_progress, finalizing, completed, expired, failed, ended, ...
    counts: dict[str, Any] = field(default_factory=dict)
    done: bool = False  # results (all or some) can be downloaded
    dead: bool = False  # nothing will come back (failed validation, cancelled)
    message: str | None = None
    refs: dict[str, Any] = field(default_factory=dict)  # where the results are (file ids, results URL)


class BatchClient(Protocol):
    provider: str

    def submit(self, batch_id: str, lines: list[BatchLine], model: str) -> tuple[str | None, Remote]: ...

    def poll(self, remote_id: str | None, output_path: str | None, n_lines: int | None = None) -> Remote: ...

    def download(self, remote: Remote, output_path: str | None) -> tuple[list[LineResult], list[str]]: ...


def _origin(url: str) -> str:
    u = httpx2.URL(url)
    return f"{u.scheme}://{u.host}:{u.port or (443 if u.scheme == 'https' else 80)}"


def _auth_message(where: str, key_env: str | None) -> str:
    src = f"${key_env}" if key_env else "the key given"
    return f"Unauthorised (HTTP 401) at {where}: the key in {src} is missing or wrong. Nothing was lost; set the key and try again."


class OpenAIBatches:
    """OpenAI's Batch API: upload the JSONL with purpose=batch, create the batch, poll, download."""

    provider = "openai"

    def __init__(self, base_url: str, api_key: str | None, key_env: str | None = "OPENAI_API_KEY", timeout_s: float = 60.0):
        self.base_url, self.key_env = base_url, key_env
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "missing", timeout=timeout_s, max_retries=2)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except openai.AuthenticationError as exc:
            raise BatchAuthError(_auth_message(self.base_url, self.key_env)) from exc
        except openai.APIStatusError as exc:
            raise BatchProviderError(f"HTTP {exc.status_code} from {self.base_url}: {str(exc)[:300]}") from exc
        except openai.APIConnectionError as exc:
            raise BatchProviderError(f"Could not connect to {self.base_url}: {exc}") from exc

    def submit(self, batch_id: str, lines: list[BatchLine], model: str) -> tuple[str | None, Remote]:
        f = self._call(self.client.files.create, file=(f"{batch_id}.jsonl", openai_jsonl(lines, model)), purpose="batch")
        b = self._call(self.client.batches.create, input_file_id=f.id, endpoint=CHAT_URL, completion_window=WINDOW,
                       metadata={"studio_batch": batch_id})
        return b.id, self._remote(b)

    def _remote(self, b: Any) -> Remote:
        counts = b.request_counts.model_dump() if getattr(b, "request_counts", None) else {}
        status = str(b.status)
        message = None
        if status == "failed" and getattr(b, "errors", None) and b.errors.data:
            message = "; ".join(f"line {e.line}: {e.message}" if e.line else str(e.message) for e in b.errors.data[:5])
        if status == "expired":
            message = "The batch expired: the 24-hour window ended before every line was done."
        return Remote(status, counts, done=status in ("completed", "expired", "cancelled") and bool(b.output_file_id or b.error_file_id),
                      dead=status == "failed" or (status == "cancelled" and not (b.output_file_id or b.error_file_id)),
                      message=message, refs={"output_file_id": b.output_file_id, "error_file_id": b.error_file_id})

    def poll(self, remote_id: str | None, output_path: str | None, n_lines: int | None = None) -> Remote:
        return self._remote(self._call(self.client.batches.retrieve, remote_id))

    def download(self, remote: Remote, output_path: str | None) -> tuple[list[LineResult], list[str]]:
        results, bad = [], []
        for ref, name in (("output_file_id", "output file"), ("error_file_id", "error file")):
            if remote.refs.get(ref):
                text = self._call(self.client.files.content, remote.refs[ref]).text
                r, b = parse_openai_output(text, name)
                results += r
                bad += b
        return results, bad


class AnthropicBatches:
    """Anthropic's Message Batches: one POST with every request, poll, then the results URL."""

    provider = "anthropic"

    def __init__(self, base_url: str, api_key: str | None, key_env: str | None = "ANTHROPIC_API_KEY", timeout_s: float = 60.0):
        self.base_url, self.key_env = base_url.rstrip("/"), key_env
        self.http = httpx2.Client(timeout=timeout_s, headers={"x-api-key": api_key or "", "anthropic-version": ANTHROPIC_VERSION,
                                                              "content-type": "application/json"})

    def _send(self, method: str, url: str, body: Any = None) -> httpx2.Response:
        try:
            resp = self.http.request(method, url, content=None if body is None else json.dumps(body).encode())
        except httpx2.TransportError as exc:
            raise BatchProviderError(f"Could not connect to {self.base_url}: {type(exc).__name__} {exc}") from exc
        if resp.status_code == 401:
            raise BatchAuthError(_auth_message(self.base_url, self.key_env))
        if resp.status_code >= 400:
            raise BatchProviderError(f"HTTP {resp.status_code} from {self.base_url}: {resp.text[:300]}")
        return resp

    def _remote(self, obj: dict[str, Any]) -> Remote:
        counts = obj.get("request_counts") or {}
        status = str(obj.get("processing_status"))
        ended = status == "ended"
        message = None
        if ended and counts.get("expired"):
            message = f"{counts['expired']} request(s) expired: the 24-hour window ended before they were done."
        return Remote(status, counts, done=ended and bool(obj.get("results_url")), dead=ended and not obj.get("results_url"),
                      message=message, refs={"results_url": obj.get("results_url")})

    def submit(self, batch_id: str, lines: list[BatchLine], model: str) -> tuple[str | None, Remote]:
        obj = self._send("POST", f"{self.base_url}/messages/batches", {"requests": anthropic_requests(lines, model)}).json()
        return obj["id"], self._remote(obj)

    def poll(self, remote_id: str | None, output_path: str | None, n_lines: int | None = None) -> Remote:
        return self._remote(self._send("GET", f"{self.base_url}/messages/batches/{remote_id}").json())

    def download(self, remote: Remote, output_path: str | None) -> tuple[list[LineResult], list[str]]:
        url = str(remote.refs.get("results_url") or "")
        if _origin(url) != _origin(self.base_url):  # the key goes with the request: only to the API it is for
            raise BatchProviderError(f"The results URL {url[:200]!r} is not on {_origin(self.base_url)}: not fetched, so the key stays there.")
        return parse_anthropic_results(self._send("GET", url).text, "results file")


class VllmFile:
    """Writes the OpenAI batch JSONL that ``vllm run-batch -i IN -o OUT --model M`` reads, and reads
    the output file it writes (the OpenAI batch output format).

    ``vllm run-batch`` writes its output at the end, and a poll may land while it is still writing.
    The output counts as done when ``OUT.done`` exists (a marker a wrapper script may create, e.g.
    ``vllm run-batch ... && touch OUT.done``), or when it has a line per input line, ends with a
    newline, its last line is a whole JSON object, and its size and modification time are the same
    at two looks ``settle_s`` apart. Earlier malformed lines were finished by the writer: collect
    imports the readable ones and names the others."""

    provider = "vllm"

    def __init__(self, folder: Path, settle_s: float = 1.0):
        self.folder = folder
        self.settle_s = settle_s

    def paths(self, batch_id: str) -> tuple[Path, Path]:
        return self.folder / f"{batch_id}.input.jsonl", self.folder / f"{batch_id}.output.jsonl"

    def submit(self, batch_id: str, lines: list[BatchLine], model: str) -> tuple[str | None, Remote]:
        src, _ = self.paths(batch_id)
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(openai_jsonl(lines, model))
        return None, Remote("written", {"total": len(lines)})

    def poll(self, remote_id: str | None, output_path: str | None, n_lines: int | None = None) -> Remote:
        out = Path(output_path or "")
        counts: dict[str, Any] = {"total": n_lines} if n_lines else {}
        if not output_path or not out.is_file():
            return Remote("written", counts, message=f"waiting for {out}: run `vllm run-batch` on the input file")
        if out.with_name(out.name + ".done").is_file():
            return Remote("completed", counts, done=True)
        first = _look(out)
        if first is None:
            return Remote("written", counts, message=f"waiting for {out}: it could not be read")
        written, whole = first[2], first[3]
        counts["completed"] = written
        if n_lines and written < n_lines:
            return Remote("writing", counts, message=f"{out.name} has {written:,} of {n_lines:,} line(s) so far")
        if not whole:
            return Remote("writing", counts, message=f"{out.name} ends in a line still being written")
        time.sleep(self.settle_s)
        if _look(out) != first:
            return Remote("writing", counts, message=f"{out.name} is still changing")
        return Remote("completed", counts, done=True)

    def download(self, remote: Remote, output_path: str | None) -> tuple[list[LineResult], list[str]]:
        try:
            text = Path(output_path or "").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BatchNotReady(f"Cannot read the vLLM output file {output_path}: {exc}") from exc
        return parse_openai_output(text, Path(output_path or "").name)


def _look(path: Path) -> tuple[int, int, int, bool] | None:
    """(size, mtime_ns, lines, whether it ends in a newline after a whole JSON object), or None."""
    try:
        before = path.stat()
        data = path.read_bytes()
    except OSError:
        return None
    lines = [ln for ln in data.split(b"\n") if ln.strip()]
    whole = data.endswith(b"\n") and bool(lines)
    if whole:
        try:
            whole = isinstance(json.loads(lines[-1]), dict)
        except ValueError:
            whole = False
    return before.st_size, before.st_mtime_ns, len(lines), whole


def vllm_command(input_path: str, output_path: str, model: str) -> str:
    return f"vllm run-batch -i {input_path} -o {output_path} --model {model or 'MODEL'}"


def make_client(provider: str, *, base_url: str | None = None, api_key: str | None = None, folder: Path | None = None,
                key_env: str | None = None) -> BatchClient:
    info = PROVIDER_INFO[provider]
    if provider == "openai":
        return OpenAIBatches(base_url or info.base_url, api_key, key_env or info.key_env)
    if provider == "anthropic":
        return AnthropicBatches(base_url or info.base_url, api_key, key_env or info.key_env)
    if folder is None:
        raise ValueError("a vLLM batch needs a folder to write its file in")
    return VllmFile(folder)


def key_for(provider: str, key_env: str | None = None, secrets: dict[str, Any] | None = None) -> str | None:
    """The provider's key from st.secrets (passed in by the page) or the environment; never stored."""
    name = key_env or PROVIDER_INFO[provider].key_env
    if not name:
        return None
    if secrets and secrets.get(name):
        return str(secrets[name])
    return os.environ.get(name) or None


def client_for(provider: str, *, base_url: str | None = None, key_env: str | None = None, secrets: dict[str, Any] | None = None,
               folder: Path | None = None) -> BatchClient:
    """A client for this provider with its key looked up now (the key lives only in the client)."""
    return make_client(provider, base_url=base_url, api_key=key_for(provider, key_env, secrets), folder=folder,
                       key_env=key_env)


def run_config(provider: str, model: str, base_url: str | None = None) -> BackendConfig:
    """What a run prepared for a batch records as its backend (no key). An Anthropic run records no
    base URL: its live resume goes to the ``anthropic`` preset's own endpoint with $ANTHROPIC_API_KEY,
    never to a proxy or test URL the batch went through, and never with another provider's key."""
    info = PROVIDER_INFO[provider]
    return BackendConfig(provider, "" if provider == "anthropic" else (base_url or info.base_url), model)


def vllm_output_refusal(store: Store, path: str) -> str | None:
    """Why the page may not read this vLLM output file, or None: like the SQL page's imports, only
    files under the batches folder or the folders of STUDIO_IMPORT_DIRS."""
    allowed = [(store.work_dir / "batches").resolve(), *settings.paths("STUDIO_IMPORT_DIRS")]
    target = Path(path).expanduser().resolve()
    if any(target.is_relative_to(a) for a in allowed):
        return None
    return (f"{path} is outside the folders the studio reads from ({', '.join(map(str, allowed))}): move the file there, "
            "add its folder to STUDIO_IMPORT_DIRS, or collect with `python -m services batch collect --output FILE`.")
