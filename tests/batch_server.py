"""A provider's batch API for the tests: the documented files and batches endpoints
(``POST /v1/files``, ``GET /v1/files/{id}/content``, ``POST /v1/batches``,
``GET /v1/batches/{id}``), each batch answered request by request by a real model server
(``upstream``: llama.cpp's on the embedded model). Faults on demand: a batch that expires after
some requests, one that fails every other request, one held in progress until released.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler

from tests.misbehaving_server import local_server, send_body


@dataclass
class Faults:
    expire_after: int | None = None  # the first batch expires after this many requests
    fail_every_other: bool = False  # the first batch fails its odd-numbered requests
    hold: threading.Event | None = None  # batches stay in progress until this is set


@dataclass
class BatchProvider:
    upstream: str
    faults: Faults = field(default_factory=Faults)
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict] = field(default_factory=dict)
    submitted: list[list[str]] = field(default_factory=list)  # custom ids, per batch
    ids: itertools.count = field(default_factory=itertools.count)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self.ids)}"

    def upload(self, content: bytes) -> dict:
        file_id = self.new_id("file")
        self.files[file_id] = content
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": 0,
            "filename": "requests.jsonl",
            "purpose": "batch",
            "status": "processed",
        }

    def create(self, body: dict) -> dict:
        lines = [json.loads(x) for x in self.files[body["input_file_id"]].splitlines() if x]
        with self.lock:
            first = not self.batches
            batch_id = self.new_id("batch")
            self.submitted.append([line["custom_id"] for line in lines])
            batch = {
                "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                "input_file_id": body["input_file_id"], "completion_window": "24h",
                "status": "in_progress", "output_file_id": None, "error_file_id": None,
                "created_at": int(time.time()), "metadata": body.get("metadata"),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            }  # fmt: skip
            self.batches[batch_id] = batch
        threading.Thread(target=self.work, args=(batch, lines, first), daemon=True).start()
        return batch

    def work(self, batch: dict, lines: list[dict], first: bool) -> None:
        if self.faults.hold is not None:
            self.faults.hold.wait()
        out, errors, status = [], [], "completed"
        for n, line in enumerate(lines):
            if first and self.faults.expire_after is not None and n >= self.faults.expire_after:
                status = "expired"
                error = {"code": "batch_expired", "message": "expired"}
                errors.append({"custom_id": line["custom_id"], "response": None, "error": error})
                continue
            if first and self.faults.fail_every_other and n % 2 == 1:
                body = {"error": {"message": "upstream overloaded", "type": "server_error"}}
                errors.append({"custom_id": line["custom_id"], "error": None,
                               "response": {"status_code": 500, "body": body}})  # fmt: skip
                continue
            request = urllib.request.Request(
                f"{self.upstream}/chat/completions",
                data=json.dumps(line["body"]).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=300) as answer:
                body = json.loads(answer.read())
            out.append({"id": f"req-{n}", "custom_id": line["custom_id"], "error": None,
                        "response": {"status_code": 200, "body": body}})  # fmt: skip
        with self.lock:
            for name, items in (("output_file_id", out), ("error_file_id", errors)):
                if items:
                    file_id = self.new_id("file")
                    self.files[file_id] = "".join(json.dumps(i) + "\n" for i in items).encode()
                    batch[name] = file_id
            batch["request_counts"] = {"total": len(lines), "completed": len(out),
                                       "failed": len(errors)}  # fmt: skip
            batch["status"] = status


@contextlib.contextmanager
def batch_server(upstream: str, faults: Faults | None = None):
    """Yield (base URL, the provider) of a batch API in front of ``upstream``."""
    provider = BatchProvider(upstream, faults or Faults())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path.endswith("/files"):
                self.reply(provider.upload(uploaded_file(self.headers["Content-Type"], raw)))
            elif self.path.endswith("/batches"):
                self.reply(provider.create(json.loads(raw)))
            else:
                self.reply({"error": {"message": "not found"}}, 404)

        def do_GET(self) -> None:
            if match := re.search(r"/files/([^/]+)/content$", self.path):
                self.reply(provider.files[match[1]], raw=True)
            elif match := re.search(r"/batches/([^/]+)$", self.path):
                with provider.lock:
                    self.reply(dict(provider.batches[match[1]]))
            else:
                self.reply({"error": {"message": "not found"}}, 404)

        def reply(self, body, status: int = 200, raw: bool = False) -> None:
            data = body if raw else json.dumps(body).encode()
            kind = "application/octet-stream" if raw else "application/json"
            send_body(self, status, data, kind)

        def log_message(self, *args) -> None:
            pass

    with local_server(Handler) as server:
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/v1", provider
        finally:
            if provider.faults.hold is not None:
                provider.faults.hold.set()


def uploaded_file(content_type: str, body: bytes) -> bytes:
    """The file part of a multipart/form-data upload."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    for part in message.iter_parts():
        if part.get_filename():
            return part.get_payload(decode=True)
    raise ValueError("no file in the upload")
