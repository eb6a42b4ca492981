"""A daemon that replays recorded API answers over a real unix socket.

It lets the real DockerService (docker-py, HTTP, threads) run against payload shapes this
machine's engine cannot produce (newer APIs, containerd store) and against frozen data for
stable screenshots.
"""

from __future__ import annotations

import json
import re
import socketserver
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote

_VERSION_PREFIX = re.compile(r"^/v\d+\.\d+")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    responses: Mapping[str, Any]
    requests_seen: list[str]
    closing: threading.Event


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = _VERSION_PREFIX.sub("", unquote(self.path.split("?", 1)[0]))
        self.server.requests_seen.append(path)
        if path == "/_ping":
            self._send(200, "OK", "text/plain")
        elif path == "/events":
            self._hold_event_stream()
        elif path in self.server.responses:
            self._send(200, json.dumps(self.server.responses[path]), "application/json")
        else:
            self._send(404, json.dumps({"message": f"No such object: {path}"}), "application/json")

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
        data = body.encode()
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
