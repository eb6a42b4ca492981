"""An export read against a daemon that is silent before its first byte (a legacy daemon writes the
whole image to disk first) or goes silent mid-stream: a cancel ends the reading thread at once, and
silence mid-stream ends the read with a message, never a hang."""

from __future__ import annotations

import asyncio
import json
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from dockerscope.service import Connection, DockerService, export_watch
from dockerscope.service.layer_cache import LayerCache
from dockerscope.service.layer_contents import ContentsUnavailable, SourceChoice
from dockerscope.service.layer_files import ReadCancelled

IMAGE_ID = "sha256:" + "e" * 64
PREPARING_ID = "sha256:" + "d" * 64  # its export sends not even its headers
ANSWERS = {
    "/version": {"Version": "29.0.0", "ApiVersion": "1.52", "MinAPIVersion": "1.24"},
    "/info": {"ID": "stalling", "DockerRootDir": "/nonexistent"},
    **{
        f"/images/{image}/json": {"Id": image, "Size": 1024, "RootFS": {"Layers": ["sha256:" + "f" * 64]}}
        for image in (IMAGE_ID, PREPARING_ID)
    },
}


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    release: threading.Event


class _Stalling(BaseHTTPRequestHandler):
    """Answers JSON for the paths above; the export sends its headers and one block, then nothing
    until the test releases it."""

    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        path = path[path.index("/", 1) :] if path.startswith("/v1.") else path
        if path == f"/images/{PREPARING_ID}/get":
            self.server.release.wait(30)
            self.close_connection = True
            return
        if path.endswith("/get"):
            self.send_response(200)
            self.send_header("Content-Type", "application/x-tar")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"200\r\n" + bytes(512) + b"\r\n")
            self.wfile.flush()
            self.server.release.wait(30)
            self.close_connection = True
            return
        body = json.dumps(ANSWERS.get(path, {"message": "no such object"})).encode()
        self.send_response(200 if path in ANSWERS else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def stalling_service(short_tmp: Path) -> Iterator[DockerService]:
    server = _Server(str(short_tmp / "stall.sock"), _Stalling)
    server.release = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"unix://{short_tmp / 'stall.sock'}"
    service = DockerService(Connection(url, "test", {"base_url": url}), cache=LayerCache(short_tmp / "cache"))
    yield service
    service.close()
    server.release.set()
    server.shutdown()
    server.server_close()


def _export_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("dockerscope-layers")]


@pytest.mark.parametrize(
    "image", [pytest.param(IMAGE_ID, id="mid-stream"), pytest.param(PREPARING_ID, id="before-the-first-byte")]
)
async def test_a_cancel_ends_a_read_blocked_on_a_silent_daemon_at_once(
    stalling_service: DockerService, image: str
) -> None:
    cancel = threading.Event()
    read = asyncio.ensure_future(
        stalling_service.image_contents(image, choice=SourceChoice.EXPORT, use_cache=False, cancel=cancel)
    )
    await asyncio.sleep(0.5)  # the request is out (and for IMAGE_ID its first block in); then silence
    assert not read.done()
    assert _export_threads()
    cancel.set()
    started = time.perf_counter()
    with pytest.raises(ReadCancelled):
        await read
    while _export_threads() and time.perf_counter() - started < 2:
        await asyncio.sleep(0.02)
    assert not _export_threads()
    assert time.perf_counter() - started < 0.5


async def test_a_daemon_silent_for_too_long_ends_the_read_with_a_message(
    stalling_service: DockerService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_watch, "EXPORT_STALL_SECONDS", 0.5)
    with pytest.raises(ContentsUnavailable, match=r"sent nothing for 0\.5 s"):
        await asyncio.wait_for(
            stalling_service.image_contents(IMAGE_ID, choice=SourceChoice.EXPORT, use_cache=False), timeout=10
        )
