"""Ending an export read that is blocked on its socket, from another thread.

A read of `GET /images/{id}/get` can wait a long time in one `recv`: a legacy daemon writes the
whole image to disk before it sends the first byte, and a daemon can go silent mid-stream. Neither
a cancel nor a stall can reach a thread blocked there, so a watchdog thread shuts the socket down,
and the blocked read ends at once.

The socket is found by noting which connection the reading thread takes from its connection
pool (requests' adapter, then urllib3's pool). docker-py offers the socket only once the answer
has started (`_get_raw_response_socket`), which is too late for the first case; where the pool
cannot be watched, a cancel reaches the read only when its next bytes arrive.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import docker
import requests

# An export stream that sends nothing for this long, once started, is given up (docker-py turns
# the socket's own timeout off for streams, so a stalled daemon would hold the read forever).
EXPORT_STALL_SECONDS = 120.0
# How often the watchdog looks at the cancel event and the clock.
WATCH_INTERVAL = 0.1

# The watchdog of each thread that reads an export now, by thread ident.
_watched: dict[int, ExportWatchdog] = {}
_WRAPPED = "_dockerscope_watched"


class ExportWatchdog:
    """Shuts the socket of the current thread's export request down once `cancel` is set, or once
    the started stream has sent nothing for EXPORT_STALL_SECONDS. Use as a context manager around
    the request and the whole read, and pass the stream's chunks through `watch`."""

    def __init__(self, client: docker.APIClient, cancel: threading.Event | None) -> None:
        self._client = client
        self._cancel = cancel
        self._done = threading.Event()
        self._last_bytes: float | None = None
        self._connection: Any = None
        self.stalled = False
        # The whole stream was read.
        self.ended = False

    def watch(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self._last_bytes = time.monotonic()
            yield chunk
        self.ended = True

    def hang_up(self) -> None:
        """End the request now, its reader having stopped before the end of the stream: the
        daemon stops sending, and the connection is not reused."""
        sock = getattr(self._connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.shutdown(socket.SHUT_RDWR)

    def took(self, connection: Any) -> None:
        """The reading thread took this connection from its pool for the export request."""
        self._connection = connection

    def __enter__(self) -> ExportWatchdog:
        _watch_pools_of(self._client)
        _watched[threading.get_ident()] = self
        threading.Thread(target=self._run, name="dockerscope-export-watch", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        _watched.pop(threading.get_ident(), None)
        self._done.set()

    def _run(self) -> None:
        while not self._done.wait(WATCH_INTERVAL):
            cancelled = self._cancel is not None and self._cancel.is_set()
            last = self._last_bytes
            self.stalled = last is not None and time.monotonic() - last > EXPORT_STALL_SECONDS
            sock = getattr(self._connection, "sock", None)
            if (cancelled or self.stalled) and sock is not None:
                with contextlib.suppress(OSError, AttributeError):
                    sock.shutdown(socket.SHUT_RDWR)
                return


def _watch_pools_of(client: docker.APIClient) -> None:
    """Make the adapter that serves `client`'s daemon hand each connection pool it gives out, to
    the thread of a watched read, through `_watch_pool`. Done once per adapter."""
    try:
        adapter = client.get_adapter(client.base_url)
    except (AttributeError, requests.RequestException):  # not a requests session, or no adapter
        return
    if getattr(adapter, _WRAPPED, False):
        return
    # requests calls the first (2.32.2 and newer) or the second; docker-py's own first calls its
    # second. Both are wrapped; a pool is wrapped only once.
    for name in ("get_connection_with_tls_context", "get_connection"):
        give = getattr(adapter, name, None)
        if give is not None:
            setattr(adapter, name, _pool_giver(give))
    setattr(adapter, _WRAPPED, True)


def _pool_giver(give: Any) -> Any:
    def give_pool(*args: Any, **kwargs: Any) -> Any:
        pool = give(*args, **kwargs)
        if threading.get_ident() in _watched:
            _watch_pool(pool)
        return pool

    return give_pool


def _watch_pool(pool: Any) -> None:
    """Tell the watchdog of the thread that takes a connection from `pool` which one it took."""
    take = getattr(pool, "_get_conn", None)
    if take is None or getattr(pool, _WRAPPED, False):
        return

    def take_connection(*args: Any, **kwargs: Any) -> Any:
        connection = take(*args, **kwargs)
        watchdog = _watched.get(threading.get_ident())
        if watchdog is not None:
            watchdog.took(connection)
        return connection

    pool._get_conn = take_connection
    setattr(pool, _WRAPPED, True)
