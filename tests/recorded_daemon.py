"""A daemon that replays recorded API answers over a real unix socket.

It lets the real DockerService (docker-py, HTTP, threads) run against payload shapes this
machine's engine cannot produce (newer APIs, containerd store), against frozen data for stable
screenshots, and against hostile answers: a path may map to an `Answer` (any status, any bytes,
a stream that ends early) instead of a JSON document.
"""

from __future__ import annotations

import json
import re
import socketserver
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote

_VERSION_PREFIX = re.compile(r"^/v\d+\.\d+")


@dataclass(frozen=True)
class Answer:
    """An answer exactly as given. With `stream`, the body goes out as one chunk of a chunked
    answer and the connection is then closed without the closing chunk (a stream cut off);
    otherwise it goes with a Content-Length."""

    status: int = 200
    body: bytes | str = b""
    content_type: str = "application/json"
    stream: bool = False

    @property
    def data(self) -> bytes:
        return self.body.encode("utf-8", "surrogatepass") if isinstance(self.body, str) else self.body


def error_answer(status: int, message: str) -> Answer:
    """An error as the Engine API sends one: `{"message": ...}` (message may hold any character)."""
    return Answer(status, json.dumps({"message": message}))


def nested_json(depth: int) -> Answer:
    """A 200 whose body is arrays nested `depth` deep: built as text, as json.dumps could not."""
    return Answer(200, "[" * depth + "]" * depth)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    responses: Mapping[str, Any]
    requests_seen: list[str]
    closing: threading.Event

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (it gave up on a bad one) is no error of the daemon."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = _VERSION_PREFIX.sub("", unquote(self.path.split("?", 1)[0]))
        self.server.requests_seen.append(path)
        responses = self.server.responses
        if path in responses and isinstance(responses[path], Answer):
            self._answer(responses[path])
        elif path == "/_ping":
            self._send(200, "OK", "text/plain")
        elif path == "/events":
            self._hold_event_stream()
        elif path in responses:
            self._send(200, json.dumps(responses[path]), "application/json")
        else:
            self._send(404, json.dumps({"message": f"No such object: {path}"}), "application/json")

    def _answer(self, answer: Answer) -> None:
        if not answer.stream:
            self._send_bytes(answer.status, answer.data, answer.content_type)
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if answer.data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(answer.data), answer.data))
        self.wfile.flush()
        self.close_connection = True

    def _hold_event_stream(self) -> None:
        """An event stream on which nothing happens, open until the daemon stops (as a real one)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.server.closing.wait()
        self.close_connection = True

    def _send(self, status: int, body: str, content_type: str) -> None:
        self._send_bytes(status, body.encode(), content_type)

    def _send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def address_string(self) -> str:
        return "recorded"


class RecordedDaemon:
    """Serves `responses`: API path (without the version prefix) to a JSON document answered
    with 200, or to an `Answer`. `/_ping` and `/events` have defaults a path entry overrides."""

    def __init__(self, socket_path: Path, responses: Mapping[str, Any]) -> None:
        self.socket_path = socket_path
        self._server = _Server(str(socket_path), _Handler)
        self._server.responses = responses
        self._server.requests_seen = []
        self._server.closing = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def requests_seen(self) -> list[str]:
        return self._server.requests_seen

    def __enter__(self) -> RecordedDaemon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.closing.set()
        self._server.shutdown()
        self._server.server_close()


def load_recording(name: str) -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "data" / name).read_text(encoding="utf-8"))
