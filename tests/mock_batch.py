"""A local mock of the providers' batch endpoints on 127.0.0.1 and a free port.

Speaks the OpenAI files API (``POST /v1/files`` multipart with purpose=batch, ``GET
/v1/files/{id}/content``) and batches (``POST /v1/batches``, ``GET /v1/batches/{id}``), and
Anthropic's Message Batches (``POST /v1/messages/batches``, ``GET .../{id}``, ``GET .../{id}/results``).
Keys are checked (``Authorization: Bearer`` / ``x-api-key``) and answered 401 as the providers do.

Behaviour per line, by a directive in the line's last user message: ``[[fail]]`` the line errors
(OpenAI: error file, HTTP 400; Anthropic: ``errored``). Per server (attributes, settable while it
runs): ``polls_until_done`` (retrieves answered ``in_progress`` first), ``expire`` (the batch
expires with only its first half done), ``malformed_line`` (one output line is cut short),
``fail_validation`` (the batch fails validation), ``results_base`` (Anthropic's results_url
points at another host), ``fail_first`` (the first N lines fail; a
resubmit then succeeds because the count is spent). Everything received is kept in ``uploads``
and ``requests`` (method, path, headers) for tests to inspect.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_FAIL = re.compile(r"\[\[fail\]\]")


def reply_text(messages: list[dict[str, Any]]) -> str:
    user = [m["content"] for m in messages if m.get("role") == "user"]
    return "Batch answer for: " + (user[-1] if user else "")[:80]


class BatchMock:
    def __init__(self, api_key: str | None = "sk-test", anthropic_key: str | None = "ak-test"):
        self.api_key, self.anthropic_key = api_key, anthropic_key
        self.polls_until_done = 0
        self.expire = False
        self.malformed_line = False
        self.fail_validation = False
        self.fail_first = 0
        self.results_base: str | None = None  # Anthropic: where results_url points (default: this server)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.uploads: list[bytes] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> BatchMock:
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                mock._handle(self, "GET")

            def do_POST(self) -> None:
                mock._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> BatchMock:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # -- HTTP -------------------------------------------------------------------------------
    def _send(self, h: BaseHTTPRequestHandler, status: int, body: Any, ctype: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("content-type", ctype)
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path = h.path.split("?")[0]
        headers = {k.lower(): v for k, v in h.headers.items()}
        body = h.rfile.read(int(headers.get("content-length") or 0)) if method == "POST" else b""
        with self.lock:
            self.requests.append((method, path, headers))
        if path.startswith("/v1/messages/batches"):
            if self.anthropic_key and headers.get("x-api-key") != self.anthropic_key:
                return self._send(h, 401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
            return self._anthropic(h, method, path, body)
        if self.api_key and headers.get("authorization") != f"Bearer {self.api_key}":
            return self._send(h, 401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                                 "param": None, "code": "invalid_api_key"}})
        if method == "POST" and path == "/v1/files":
            return self._upload(h, headers, body)
        if m := re.fullmatch(r"/v1/files/([\w-]+)/content", path):
            return self._send(h, 200, self.files[m.group(1)], "application/octet-stream") if m.group(1) in self.files else \
                self._send(h, 404, {"error": {"message": "No such file", "type": "invalid_request_error"}})
        if method == "POST" and path == "/v1/batches":
            return self._create(h, json.loads(body))
        if m := re.fullmatch(r"/v1/batches/([\w-]+)", path):
            return self._retrieve(h, m.group(1))
        return self._send(h, 404, {"error": {"message": f"no route {method} {path}", "type": "invalid_request_error"}})

    # -- OpenAI -----------------------------------------------------------------------------
    def _upload(self, h: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes) -> None:
        msg = BytesParser(policy=HTTP).parsebytes(f"content-type: {headers['content-type']}\r\n\r\n".encode() + body)
        parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
        if parts["purpose"].get_content().strip() != "batch":
            return self._send(h, 400, {"error": {"message": "purpose must be batch", "type": "invalid_request_error"}})
        data = parts["file"].get_payload(decode=True)
        fid = "file-" + uuid.uuid4().hex[:16]
        with self.lock:
            self.files[fid] = data
            self.uploads.append(data)
        self._send(h, 200, {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                            "filename": parts["file"].get_filename(), "purpose": "batch", "status": "processed"})

    def _results(self, lines: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any] | None, str | None]]:
        """(custom_id, completion body or None, error message or None) per line, in order."""
        out = []
        for ln in lines:
            msgs = ln["messages"]
            fail = bool(_FAIL.search(json.dumps(msgs)))
            with self.lock:
                if self.fail_first > 0:
                    self.fail_first -= 1
                    fail = True
            if fail:
                out.append((ln["custom_id"], None, "The model refused this request (mock [[fail]])."))
                continue
            text = reply_text(msgs)
            out.append((ln["custom_id"], {"text": text, "prompt_tokens": 10 + len(json.dumps(msgs)) // 40, "completion_tokens": 7}, None))
        return out

    def _create(self, h: BaseHTTPRequestHandler, req: dict[str, Any]) -> None:
        raw = self.files.get(req.get("input_file_id", ""))
        if raw is None:
            return self._send(h, 400, {"error": {"message": "input file not found", "type": "invalid_request_error"}})
        lines = [json.loads(x) for x in raw.decode().splitlines() if x.strip()]
        bid = "batch_" + uuid.uuid4().hex[:16]
        b = {"id": bid, "object": "batch", "endpoint": req["endpoint"], "input_file_id": req["input_file_id"],
             "completion_window": req["completion_window"], "status": "validating", "created_at": int(time.time()),
             "output_file_id": None, "error_file_id": None, "errors": None, "metadata": req.get("metadata"),
             "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "_polls": 0,
             "_lines": [{"custom_id": x["custom_id"], "messages": x["body"]["messages"], "model": x["body"]["model"]} for x in lines]}
        with self.lock:
            self.batches[bid] = b
        self._send(h, 200, _public(b))

    def _retrieve(self, h: BaseHTTPRequestHandler, bid: str) -> None:
        b = self.batches.get(bid)
        if b is None:
            return self._send(h, 404, {"error": {"message": "No such batch", "type": "invalid_request_error"}})
        b["_polls"] += 1
        if b["status"] in ("validating", "in_progress") and b["_polls"] > self.polls_until_done:
            self._finish_openai(b)
        elif b["status"] == "validating":
            b["status"] = "in_progress"
        self._send(h, 200, _public(b))

    def _finish_openai(self, b: dict[str, Any]) -> None:
        if self.fail_validation:
            b["status"] = "failed"
            b["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": "bad line", "line": 1, "param": None}]}
            return
        lines = b["_lines"]
        done_upto = len(lines) // 2 if self.expire else len(lines)
        results = self._results(lines[:done_upto])
        out, err = [], []
        for cid, res, error in results:
            rid = "req_" + uuid.uuid4().hex[:8]
            if error:
                err.append({"id": "batch_req_" + rid, "custom_id": cid, "response": {"status_code": 400, "request_id": rid, "body": {
                    "error": {"message": error, "type": "invalid_request_error"}}}, "error": None})
                continue
            out.append({"id": "batch_req_" + rid, "custom_id": cid, "response": {"status_code": 200, "request_id": rid, "body": {
                "id": "chatcmpl-" + rid, "object": "chat.completion", "model": lines[0]["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": res["text"]}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": res["prompt_tokens"], "completion_tokens": res["completion_tokens"],
                          "total_tokens": res["prompt_tokens"] + res["completion_tokens"]}}}, "error": None})
        for ln in lines[done_upto:]:
            err.append({"id": "batch_req_x", "custom_id": ln["custom_id"], "response": None,
                        "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}})
        text = [json.dumps(x) for x in out]
        if self.malformed_line and text:
            text[0] = text[0][: len(text[0]) // 2]
        b["status"] = "expired" if self.expire else "completed"
        b["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}
        with self.lock:
            if text:
                b["output_file_id"] = "file-" + uuid.uuid4().hex[:16]
                self.files[b["output_file_id"]] = ("\n".join(text) + "\n").encode()
            if err:
                b["error_file_id"] = "file-" + uuid.uuid4().hex[:16]
                self.files[b["error_file_id"]] = ("\n".join(json.dumps(x) for x in err) + "\n").encode()

    # -- Anthropic --------------------------------------------------------------------------
    def _anthropic(self, h: BaseHTTPRequestHandler, method: str, path: str, body: bytes) -> None:
        if method == "POST" and path == "/v1/messages/batches":
            reqs = json.loads(body)["requests"]
            for r in reqs:
                if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", r["custom_id"]) or "max_tokens" not in r["params"]:
                    return self._send(h, 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "bad request"}})
            bid = "msgbatch_" + uuid.uuid4().hex[:16]
            b = {"id": bid, "type": "message_batch", "processing_status": "in_progress", "results_url": None,
                 "request_counts": {"processing": len(reqs), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
                 "_polls": 0, "_lines": [{"custom_id": r["custom_id"], "messages": r["params"]["messages"],
                                          "system": r["params"].get("system")} for r in reqs]}
            with self.lock:
                self.batches[bid] = b
            return self._send(h, 200, _public(b))
        m = re.fullmatch(r"/v1/messages/batches/([\w-]+)(/results)?", path)
        b = self.batches.get(m.group(1)) if m else None
        if b is None:
            return self._send(h, 404, {"type": "error", "error": {"type": "not_found_error", "message": "no such batch"}})
        if m.group(2):
            return self._send(h, 200, b["_results"], "application/binary")
        b["_polls"] += 1
        if b["processing_status"] == "in_progress" and b["_polls"] > self.polls_until_done:
            self._finish_anthropic(b)
        self._send(h, 200, _public(b))

    def _finish_anthropic(self, b: dict[str, Any]) -> None:
        lines = b["_lines"]
        done_upto = len(lines) // 2 if self.expire else len(lines)
        out, counts = [], {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for cid, res, error in self._results(lines[:done_upto]):
            if error:
                counts["errored"] += 1
                out.append({"custom_id": cid, "result": {"type": "errored", "error": {"type": "error", "error": {
                    "type": "invalid_request_error", "message": error}}}})
            else:
                counts["succeeded"] += 1
                out.append({"custom_id": cid, "result": {"type": "succeeded", "message": {
                    "id": "msg_" + uuid.uuid4().hex[:8], "type": "message", "role": "assistant", "model": "mock",
                    "content": [{"type": "text", "text": res["text"]}], "stop_reason": "end_turn",
                    "usage": {"input_tokens": res["prompt_tokens"], "output_tokens": res["completion_tokens"]}}}})
        for ln in lines[done_upto:]:
            counts["expired"] += 1
            out.append({"custom_id": ln["custom_id"], "result": {"type": "expired"}})
        text = [json.dumps(x) for x in out]
        if self.malformed_line and text:
            text[0] = text[0][: len(text[0]) // 2]
        b["_results"] = ("\n".join(text) + "\n").encode()
        b["processing_status"] = "ended"
        b["request_counts"] = counts
        b["results_url"] = f"{self.results_base or self.url}/messages/batches/{b['id']}/results"


def _public(b: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in b.items() if not k.startswith("_")}
