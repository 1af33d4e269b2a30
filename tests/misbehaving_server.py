"""An OpenAI-compatible chat server that misbehaves on purpose, for the failure tests: a real
HTTP server in a thread, answering every chat completion with what ``reply`` returns."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def completion(content: str, prompt_tokens: int, completion_tokens: int) -> dict:
    """A well-formed chat completion with the usage given."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "test",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def send_body(
    handler: BaseHTTPRequestHandler,
    status: int,
    data: bytes,
    content_type: str = "application/json",
    headers: dict | None = None,
) -> None:
    """One whole HTTP answer: status, headers, body."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@contextlib.contextmanager
def local_server(handler: type[BaseHTTPRequestHandler]):
    """Serve ``handler`` on a free local port in a thread; yield the server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def misbehaving_server(reply: Callable[[dict], tuple]):
    """Yield the base URL of a server whose every POST gets ``reply(request_json)``:
    (HTTP status, a body as JSON or raw bytes sent as they are[, extra headers])."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, answer, *extra = reply(body)
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            send_body(self, status, data, headers=extra[0] if extra else None)

        def log_message(self, *args) -> None:
            pass

    with local_server(Handler) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
