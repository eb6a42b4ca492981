"""A unix socket in front of the real daemon that lets only GET and HEAD through.

Unlike `socket_proxy.SocketProxy`, it speaks HTTP/1.1: it reads every request head on every
keep-alive connection, records the method and target, forwards GET and HEAD with their answers
(fixed-length, chunked and streamed without end such as `/events`, read to the close, or a 101
upgrade piped both ways), and answers anything else with `405 Method Not Allowed` itself, so a
write never reaches the daemon. It runs its own event loop on a thread: the app's Pilot tests and
synchronous code that calls `asyncio.run` (`dockerscope analyze`) can both talk to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path

ALLOWED_METHODS = frozenset({"GET", "HEAD"})
# One request or response head; docker-py's are a few hundred bytes.
HEAD_LIMIT = 64 * 1024
PIECE = 64 * 1024
# How often a streamed answer checks whether its client has hung up.
CLIENT_CHECK_SECONDS = 0.2
_VERSION_PREFIX = re.compile(r"^/v\d+\.\d+(?=/)")


class ProtocolError(Exception):
    """Bytes the proxy cannot frame as HTTP/1.1: it closes the connection."""


@dataclass(frozen=True)
class SeenRequest:
    method: str
    target: str
    connection: int  # which client connection carried it, counted from 1

    @property
    def path(self) -> str:
        """The target without its query and API version prefix: `/images/json`."""
        return _VERSION_PREFIX.sub("", self.target.split("?", 1)[0])


@dataclass(frozen=True)
class _Head:
    raw: bytes
    start_line: list[str]
    headers: Mapping[str, str]

    def has_token(self, name: str, token: str) -> bool:
        return token in {part.strip().lower() for part in self.headers.get(name, "").split(",")}


async def _read_head(reader: asyncio.StreamReader) -> _Head | None:
    """The next head, or None when the peer closed between messages."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise ProtocolError("connection closed inside a head") from None
    except asyncio.LimitOverrunError:
        raise ProtocolError("head too long") from None
    lines = raw.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, separator, value = line.partition(":")
        if not separator:
            raise ProtocolError(f"not a header line: {line!r}")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return _Head(raw, lines[0].split(" ", 2), headers)


async def _copy_exactly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, size: int) -> None:
    """Copy `size` bytes piece by piece as they arrive (or drop them when `writer` is None)."""
    while size > 0:
        data = await reader.read(min(size, PIECE))
        if not data:
            raise ProtocolError("connection closed inside a body")
        size -= len(data)
        if writer is not None:
            writer.write(data)
            await writer.drain()


async def _copy_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None) -> None:
    """Copy a chunked body chunk by chunk, so an endless stream reaches the other side live."""
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size line {line!r}") from None
        if writer is not None:
            writer.write(line)
        if size == 0:
            break
        await _copy_exactly(reader, writer, size + 2)  # the data and its CRLF
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the blank line
        if writer is not None:
            writer.write(line)
    if writer is not None:
        writer.write(line)
        await writer.drain()


def _content_length(head: _Head) -> int:
    try:
        return int(head.headers["content-length"])
    except ValueError:
        raise ProtocolError("bad Content-Length") from None


async def _copy_body(head: _Head, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None) -> None:
    """A request's body: chunked, of Content-Length bytes, or none at all (RFC 9112 6.3)."""
    if head.has_token("transfer-encoding", "chunked"):
        await _copy_chunked(reader, writer)
    elif "content-length" in head.headers:
        await _copy_exactly(reader, writer, _content_length(head))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(PIECE):
            writer.write(data)
            await writer.drain()
    writer.close()


async def _unless_client_leaves(copy: Coroutine[None, None, None], client_reader: asyncio.StreamReader) -> bool:
    """Run `copy` (a response body) unless the client hangs up first; whether it ran to its end.

    A client that stops following an event stream closes its end while the daemon still has
    nothing to say, so no write fails: without this, the proxy would hold the daemon's stream
    open until the test ends. A client that sends a body-less request waits for the answer
    before it sends more, so end-of-file is the only thing its side can show meanwhile."""
    copying = asyncio.ensure_future(copy)
    while not copying.done():
        if client_reader.at_eof():
            copying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await copying
            return False
        await asyncio.wait({copying}, timeout=CLIENT_CHECK_SECONDS)
    copying.result()
    return True


class MethodProxy:
    """Use as a context manager; `url` is the DOCKER_HOST to give the code under test."""

    def __init__(self, path: Path, daemon_url: str) -> None:
        if not daemon_url.startswith("unix://"):
            raise ValueError(f"the method proxy needs a unix socket daemon, not {daemon_url}")
        self.path = path
        self._daemon_socket = daemon_url.removeprefix("unix://")
        self._seen: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="method-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._accepted = 0

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    @property
    def requests(self) -> list[SeenRequest]:
        """Every request head read so far, forwarded or refused, in arrival order."""
        with self._lock:
            return list(self._seen)

    @property
    def refused(self) -> list[SeenRequest]:
        """The requests answered with 405: every method but GET and HEAD."""
        return [request for request in self.requests if request.method not in ALLOWED_METHODS]

    def __enter__(self) -> MethodProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_unix_server(self._accept, path=str(self.path), limit=HEAD_LIMIT)

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for connection in list(self._connections):
            connection.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self.path.unlink(missing_ok=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._accepted += 1
        try:
            await self._serve(reader, writer, self._accepted)
        except (ConnectionError, ProtocolError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:  # the proxy stops: end quietly, asyncio reports a cancelled callback
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, number: int
    ) -> None:
        """Answer the requests of one client connection in turn until either side closes."""
        daemon: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while (request := await _read_head(client_reader)) is not None:
                if len(request.start_line) != 3:
                    raise ProtocolError(f"not a request line: {request.start_line}")
                method, target, _ = request.start_line
                with self._lock:
                    self._seen.append(SeenRequest(method, target, number))
                if method not in ALLOWED_METHODS:
                    if not await self._refuse(request, client_reader, client_writer):
                        return
                    continue
                if daemon is None:
                    daemon = await asyncio.open_unix_connection(self._daemon_socket, limit=HEAD_LIMIT)
                daemon[1].write(request.raw)
                await _copy_body(request, client_reader, daemon[1])
                await daemon[1].drain()
                if not await self._relay_response(request, daemon, (client_reader, client_writer)):
                    return
        finally:
            if daemon is not None:
                daemon[1].close()

    async def _refuse(
        self, request: _Head, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> bool:
        """Answer 405 without forwarding; whether the connection can carry another request."""
        # A client waiting for `100 Continue` would never send its body: close after answering.
        keep = not request.has_token("expect", "100-continue")
        if keep:
            await _copy_body(request, client_reader, None)
        method, target, _ = request.start_line
        body = json.dumps({"message": f"read-only proxy: {method} {target} refused"}).encode()
        client_writer.write(
            b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n".encode()
            + (b"" if keep else b"Connection: close\r\n")
            + b"\r\n"
            + body
        )
        await client_writer.drain()
        return keep

    async def _relay_response(
        self,
        request: _Head,
        daemon: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> bool:
        """Copy the daemon's answer to the client; whether both connections stay usable."""
        daemon_reader, daemon_writer = daemon
        client_reader, client_writer = client
        while True:
            response = await _read_head(daemon_reader)
            if response is None or len(response.start_line) < 2 or not response.start_line[1].isdigit():
                raise ProtocolError("the daemon sent no status line")
            client_writer.write(response.raw)
            status = int(response.start_line[1])
            if not (100 <= status < 200) or status == 101:
                break  # 1xx other than 101 are interim: the final answer follows
        if status == 101:  # an upgrade: from now on the connection is a raw byte stream both ways
            await client_writer.drain()
            await asyncio.gather(_pipe(daemon_reader, client_writer), _pipe(client_reader, daemon_writer))
            return False
        keep = not (response.has_token("connection", "close") or request.has_token("connection", "close"))
        if request.start_line[0] == "HEAD" or status in (204, 304):
            body = None
        elif response.has_token("transfer-encoding", "chunked"):
            body = _copy_chunked(daemon_reader, client_writer)
        elif "content-length" in response.headers:
            body = _copy_exactly(daemon_reader, client_writer, _content_length(response))
        else:  # delimited by the daemon closing the connection
            body, keep = _pipe(daemon_reader, client_writer), False
        if body is not None and not await _unless_client_leaves(body, client_reader):
            return False
        await client_writer.drain()
        return keep
