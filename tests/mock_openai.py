"""A real OpenAI-compatible mock server on 127.0.0.1 for the runner's tests and benchmarks.

A small asyncio HTTP/1.1 server (keep-alive, chunked streaming) so it can misbehave exactly:
directives in the last user message choose the behaviour of that request —
``[[500]]`` ``[[503:once]]`` ``[[429:once]]`` (Retry-After) ``[[quota]]`` (429 insufficient_quota)
``[[timeout]]`` ``[[malformed]]`` (a 200 whose JSON body is cut short) ``[[drop]]`` (connection dropped
mid-response) ``[[streamcut]]`` (a stream whose connection drops after two chunks) ``[[streamend]]``
(a stream that ends cleanly before its last chunk) ``[[slow:0.5]]``; on a failure directive
``:once`` fails only the first attempt of that prompt and ``:N`` the first N. ``[[score:N]]`` makes
the reply a judge's JSON (``{"score": N, "rationale": ...}``); a request with a JSON schema in its
``response_format`` gets an instance of it, ``[[badjson:N]]`` a reply that is not JSON. Global settings via ``POST /_config``
or the constructor: latency, a key to require, quota after N requests, ``rate_limit_first`` (the
first N completion requests answer 429 with ``Retry-After: retry_after``) and ``remaining_requests``
/ ``remaining_tokens`` / ``reset_requests`` (x-ratelimit-* headers on every success). Counts via
``GET /_stats``: requests, in flight now and at most (and at each arrival), per-prompt attempts and
successes, arrival times, times of 429 answers.

``POST /v1/embeddings`` answers deterministic vectors (``embedding_dim`` numbers from a hash of each
text, so the same text always gets the same vector) with usage counted in words; a directive in
any input text applies to the whole request (``[[429:once]]``, ``[[500]]``, ``[[malformed]]``,
``[[quota]]``, ``[[slow:0.5]]``, keyed by the request's texts for ``:once``/``:N``). ``/_stats`` adds
``embedding_requests`` and ``embedded`` (times each text was embedded successfully, by its text).

In-process: ``with MockServer(latency=0.01) as url: ...``; as a process (benchmarks, the
kill-and-resume test): ``python -m tests.mock_openai --port 0`` prints ``READY <port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import threading
import time
from typing import Any

_DIRECTIVE = re.compile(r"\[\[([a-z0-9]+)(?::([0-9.a-z]+))?\]\]")
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable"}


class MockState:
    def __init__(self, latency: float = 0.0, api_key: str | None = None, quota_after: int | None = None,
                 completion_tokens: int = 5, models: tuple[str, ...] = ("mock-model",), rate_limit_first: int = 0,
                 retry_after: float | None = 0.05, remaining_requests: int | None = None,
                 remaining_tokens: int | None = None, reset_requests: str | None = None, embedding_dim: int = 8):
        self.latency = latency
        self.embedding_dim = embedding_dim
        self.api_key = api_key
        self.quota_after = quota_after
        self.completion_tokens = completion_tokens
        self.models = list(models)
        self.rate_limit_first = rate_limit_first
        self.retry_after = retry_after
        self.remaining_requests = remaining_requests
        self.remaining_tokens = remaining_tokens
        self.reset_requests = reset_requests
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.completions_ok = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.attempts: dict[str, int] = {}
        self.completed: dict[str, int] = {}
        self.arrivals: list[float] = []
        self.in_flight_at_arrival: list[int] = []
        self.rejections: list[float] = []
        self.embedding_requests = 0
        self.embedded: dict[str, int] = {}

    def stats(self) -> dict[str, Any]:
        return {"requests": self.requests, "completions_ok": self.completions_ok, "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight, "attempts": dict(self.attempts), "completed": dict(self.completed),
                "arrivals": list(self.arrivals), "in_flight_at_arrival": list(self.in_flight_at_arrival),
                "rejections": list(self.rejections),
                "embedding_requests": self.embedding_requests, "embedded": dict(self.embedded)}

    def rate_headers(self) -> dict[str, str]:
        hdrs = {"x-ratelimit-remaining-requests": self.remaining_requests, "x-ratelimit-remaining-tokens": self.remaining_tokens,
                "x-ratelimit-reset-requests": self.reset_requests}
        return {k: str(v) for k, v in hdrs.items() if v is not None}


def _requested_schema(req: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a request asks its answer to follow: OpenAI's ``json_schema`` or llama.cpp's
    ``json_object`` with a ``schema``."""
    rf = req.get("response_format") or {}
    if rf.get("type") == "json_schema":
        return (rf.get("json_schema") or {}).get("schema")
    if rf.get("type") == "json_object":
        return rf.get("schema") or {}
    return None


def _instance(schema: dict[str, Any], salt: str) -> Any:
    """A value valid under a simple schema; enum values are picked by a hash of ``salt``."""
    pick = int(hashlib.sha1(salt.encode()).hexdigest(), 16)
    if "enum" in schema:
        return schema["enum"][pick % len(schema["enum"])]
    t = schema.get("type", "object")
    if t == "object":
        return {k: _instance(v, f"{salt}/{k}") for k, v in (schema.get("properties") or {}).items()}
    if t == "array":
        return [_instance(schema.get("items") or {"type": "string"}, salt)]
    if t in ("integer", "number"):
        lo, hi = int(schema.get("minimum", 0)), int(schema.get("maximum", 10))
        return lo + pick % (hi - lo + 1)
    if t == "boolean":
        return bool(pick % 2)
    return f"mock {salt[:6]}"


def prompt_id(content: str) -> str:
    return hashlib.blake2b(content.encode(), digest_size=8).hexdigest()


class _Drop(Exception):
    pass


class MockServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, **state: Any):
        self.host, self.port = host, port
        self.state = MockState(**state)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- lifecycle ---------------------------------------------------------------------
    async def serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        async with self._server:
            await self._server.serve_forever()

    def start(self) -> MockServer:
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.create_task(self.serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="mock-openai")
        self._thread.start()
        self._started.wait(10)
        return self

    async def _shutdown(self) -> None:
        if self._server:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.get_running_loop().stop()

    def stop(self) -> None:
        if self._loop and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        if self._thread:
            self._thread.join(5)
        if self._loop and not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> str:
        self.start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP --------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                body = await reader.readexactly(int(headers.get("content-length", 0) or 0))
                await self._route(method, path, headers, body, writer)
        except (asyncio.IncompleteReadError, ConnectionError, _Drop, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _send(self, writer: asyncio.StreamWriter, status: int, payload: Any = None, *, raw: bytes | None = None,
                    headers: dict[str, str] | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        hdrs = {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        writer.write(head.encode() + b"\r\n" + data)
        await writer.drain()

    async def _route(self, method: str, path: str, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter) -> None:
        s = self.state
        if path == "/_stats":
            return await self._send(writer, 200, s.stats())
        if path == "/_reset":
            s.reset()
            return await self._send(writer, 200, {"ok": True})
        if path == "/_config":
            for k, v in json.loads(body or b"{}").items():
                setattr(s, k, v)
            return await self._send(writer, 200, {"ok": True})
        if s.api_key and headers.get("authorization") != f"Bearer {s.api_key}":
            return await self._send(writer, 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                                             "code": "invalid_api_key"}})
        if method == "GET" and path == "/v1/models":
            return await self._send(writer, 200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "mock"} for m in s.models]})
        if method == "POST" and path == "/v1/chat/completions":
            s.requests += 1
            s.arrivals.append(time.monotonic())
            s.in_flight += 1
            s.max_in_flight = max(s.max_in_flight, s.in_flight)
            s.in_flight_at_arrival.append(s.in_flight)
            try:
                return await self._completion(json.loads(body), writer)
            finally:
                s.in_flight -= 1
        if method == "POST" and path == "/v1/embeddings":
            s.embedding_requests += 1
            s.in_flight += 1
            s.max_in_flight = max(s.max_in_flight, s.in_flight)
            try:
                return await self._embeddings(json.loads(body), writer)
            finally:
                s.in_flight -= 1
        return await self._send(writer, 404, {"error": {"message": f"no route {method} {path}", "type": "invalid_request_error"}})

    async def _completion(self, req: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        s = self.state
        msgs = req.get("messages") or []
        content = next((m.get("content") or "" for m in reversed(msgs) if m.get("role") == "user"), "")
        pid = prompt_id(content)
        attempt = s.attempts[pid] = s.attempts.get(pid, 0) + 1
        directives = {name: arg for name, arg in _DIRECTIVE.findall(content)}
        if s.latency:
            await asyncio.sleep(s.latency)
        if "slow" in directives:
            await asyncio.sleep(float(directives["slow"] or 1))

        def active(name: str) -> bool:
            if name not in directives:
                return False
            arg = directives[name]
            return attempt == 1 if arg == "once" else attempt <= int(arg) if arg.isdigit() else True

        if "quota" in directives or (s.quota_after is not None and s.requests > s.quota_after):
            return await self._send(writer, 429, {"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                                                             "type": "insufficient_quota", "code": "insufficient_quota"}})
        if active("429") or s.requests <= s.rate_limit_first:
            s.rejections.append(time.monotonic())
            retry = {"Retry-After": f"{s.retry_after:g}"} if s.retry_after is not None else {}
            return await self._send(writer, 429, {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
                                    headers=retry)
        for code in ("500", "503"):
            if active(code):
                return await self._send(writer, int(code), {"error": {"message": f"mock {code}", "type": "server_error"}})
        if "timeout" in directives:
            await asyncio.sleep(3600)
        if active("drop"):
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
            writer.write(head.encode() + b'{"id": "chatcmpl-x", "choices": [{"ind')
            await writer.drain()
            raise _Drop()
        if active("malformed"):
            return await self._send(writer, 200, raw=b'{"id": "chatcmpl-x", "choices": [{"index": 0, "message": ')
        schema = _requested_schema(req)
        if "score" in directives:  # a judge's reply the studio's parser reads
            text = json.dumps({"score": int(float(directives["score"] or 3)), "rationale": "mock judgement"})
        elif active("badjson"):
            text = "Sure! Here is my answer: label = maybe"
        elif schema is not None:  # structured output: an instance of the schema, chosen by the prompt
            text = json.dumps(_instance(schema, f"{pid}/{req.get('seed')}/{req.get('temperature')}"))
        else:
            text = f"Sample for: {content.strip()[:80]}"
        if "seed" in req and req.get("temperature", 1) > 0 and "score" not in directives and schema is None:
            text += f" (seed {req['seed']})"
        usage = {"prompt_tokens": sum(len((m.get("content") or "").split()) for m in msgs),
                 "completion_tokens": s.completion_tokens}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        model = req.get("model", "mock-model")
        if req.get("stream") and (active("streamcut") or active("streamend")):
            return await self._stream(writer, model, text, None, cut="drop" if active("streamcut") else "end")
        s.completions_ok += 1
        s.completed[pid] = s.completed.get(pid, 0) + 1
        if req.get("stream"):
            return await self._stream(writer, model, text, usage if (req.get("stream_options") or {}).get("include_usage") else None)
        await self._send(writer, 200, headers=self.state.rate_headers(), payload={
            "id": f"chatcmpl-{pid}-{attempt}", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        })

    async def _embeddings(self, req: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        s = self.state
        texts = req.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        pid = prompt_id("\x00".join(texts))
        attempt = s.attempts[pid] = s.attempts.get(pid, 0) + 1
        directives = {name: arg for t in texts for name, arg in _DIRECTIVE.findall(t)}

        def active(name: str) -> bool:
            if name not in directives:
                return False
            arg = directives[name]
            return attempt == 1 if arg == "once" else attempt <= int(arg) if arg.isdigit() else True

        if s.latency:
            await asyncio.sleep(s.latency)
        if "slow" in directives:
            await asyncio.sleep(float(directives["slow"] or 1))
        if "quota" in directives:
            return await self._send(writer, 429, {"error": {"message": "You exceeded your current quota.",
                                                             "type": "insufficient_quota", "code": "insufficient_quota"}})
        if active("429"):
            s.rejections.append(time.monotonic())
            retry = {"Retry-After": f"{s.retry_after:g}"} if s.retry_after is not None else {}
            return await self._send(writer, 429, {"error": {"message": "Rate limit reached", "type": "requests"}}, headers=retry)
        for code in ("500", "503"):
            if active(code):
                return await self._send(writer, int(code), {"error": {"message": f"mock {code}", "type": "server_error"}})
        if active("malformed"):
            return await self._send(writer, 200, raw=b'{"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, ')
        data = []
        for i, t in enumerate(texts):
            digest = hashlib.blake2b(t.encode(), digest_size=4 * s.embedding_dim).digest()
            vec = [int.from_bytes(digest[4 * k:4 * k + 4], "little") / 2**31 - 1.0 for k in range(s.embedding_dim)]
            data.append({"object": "embedding", "index": i, "embedding": vec})
            s.embedded[t] = s.embedded.get(t, 0) + 1
        tokens = sum(len(t.split()) for t in texts)
        # Answer in a shuffled order (by index), as servers may: clients must sort by index.
        await self._send(writer, 200, headers=s.rate_headers(), payload={
            "object": "list", "data": data[::-1], "model": req.get("model", "mock-embed"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _stream(self, writer: asyncio.StreamWriter, model: str, text: str, usage: dict | None, cut: str | None = None) -> None:
        """An SSE stream; ``cut='drop'`` closes the connection after two chunks, ``cut='end'`` ends the
        body cleanly there, without the finishing chunk or [DONE]."""
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")

        def chunk(obj: Any) -> bytes:
            data = f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n".encode()
            return f"{len(data):x}\r\n".encode() + data + b"\r\n"

        base = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        for i, word in enumerate(text.split(" ")):
            if cut and i == 2:
                if cut == "end":
                    writer.write(b"0\r\n\r\n")
                await writer.drain()
                raise _Drop()
            writer.write(chunk({**base, "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}))
        writer.write(chunk({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        if usage:
            writer.write(chunk({**base, "choices": [], "usage": usage}))
        writer.write(chunk("[DONE]") + b"0\r\n\r\n")
        await writer.drain()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0)
    args = ap.parse_args()
    server = MockServer(port=args.port, latency=args.latency)

    async def run() -> None:
        task = asyncio.ensure_future(server.serve())
        await asyncio.get_running_loop().run_in_executor(None, server._started.wait)
        print(f"READY {server.port}", flush=True)
        await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
