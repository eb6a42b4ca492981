"""Keeps a snapshot of a source fresh: its update stream for changes as they happen, a slow poll
as a safety net. A source without an update stream (`capabilities.events` False) is polled every
`interval`, and nothing else.

The stream is read in a daemon thread of its own, which hands each event to the event loop. The
loop gathers what events touched and refreshes just that, at most once per `COALESCE_SECONDS`, so
a burst (`docker rm` of fifty containers) costs a few small refreshes, not fifty. While the stream
is down the watcher polls every `RETRY_SECONDS` and reconnects; once it is back, one full poll
catches up with what happened meanwhile. Refreshes and polls run one at a time, in order.

A stream that ends at once, or answers with an error, must not turn into a request storm: it counts
as healthy only once it stayed open `HEALTHY_SECONDS`, and until then each loss waits longer before
the next attempt (`RECONNECT_DELAYS`, capped), and the catch-up poll waits for the regular
`RETRY_SECONDS` cadence. A poll that succeeds after failed ones (the daemon is back) reconnects at
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from dockerscope.service.errors import DockerServiceError
from dockerscope.service.models import EventBatch, WatchUpdate
from dockerscope.service.source import EventFeed, ImageSource

# A refresh waits this long after the first event of a burst, for its siblings (create, start…).
SETTLE_SECONDS = 0.01
# Refreshes driven by events start at least this far apart; events in between are merged.
COALESCE_SECONDS = 0.1
# While the daemon or its event stream is unreachable, poll this often. A poll is two requests: at
# this pace a stream that keeps failing costs well under one request a second.
RETRY_SECONDS = 3.0
# Wait before each reconnect attempt while the stream keeps failing; the last one repeats. The first
# comes at once: a stream dropped by a proxy is usually back at once.
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
# A stream that stayed open this long was healthy: the next loss starts the delays over.
HEALTHY_SECONDS = 10.0


class Watcher:
    """Produces `WatchUpdate`s for as long as `updates()` is iterated."""

    def __init__(self, source: ImageSource, interval: float) -> None:
        self.source = source
        # A source without an update stream is polled every `interval` and never reconnects.
        self._follows_events = source.capabilities.events
        self.interval = interval
        self._wake = asyncio.Event()
        self._pending = EventBatch()
        self._pending_since: float | None = None
        self._full_poll_due = 0.0
        self._poll_requested = True
        self._stream: EventFeed | None = None
        self._stream_lock = threading.Lock()
        self._stopped = False
        self._live = False
        self._connecting = False
        self._reconnect_at = 0.0
        # Losses (or failed opens) of the stream since it last was healthy: picks the next delay.
        self._losses = 0
        self._opened_at = 0.0
        self._last_poll = float("-inf")
        self._catch_up_due = float("inf")
        self._poll_failed = False
        self._last_refresh = float("-inf")

    @property
    def live(self) -> bool:
        """True while the event stream is connected."""
        return self._live

    @property
    def retry_interval(self) -> float:
        """Seconds between polls while the daemon or its event stream cannot be reached."""
        return min(self.interval, RETRY_SECONDS)

    def poll_now(self) -> None:
        """Ask for a full poll at once (the user pressed r)."""
        self._poll_requested = True
        self._wake.set()

    async def updates(self) -> AsyncIterator[WatchUpdate]:
        loop = asyncio.get_running_loop()
        try:
            while not self._stopped:
                now = time.monotonic()
                if self._stream_down() and now >= self._reconnect_at:
                    self._connect(loop)
                if self._poll_requested or now >= self._poll_due():
                    yield await self._full_poll()
                elif self._pending and now >= self._refresh_due():
                    yield await self._refresh()
                else:
                    await self._sleep(self._next_deadline() - now)
        finally:
            self.stop()

    def stop(self) -> None:
        """End the stream (its thread ends with it); safe from any thread, more than once."""
        with self._stream_lock:
            self._stopped = True
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    async def _full_poll(self) -> WatchUpdate:
        # Events that arrive from now on may postdate the poll's answer: keep them, drop the rest.
        self._poll_requested = False
        self._catch_up_due = float("inf")  # this poll starts after the stream opened: it catches up
        self._pending, self._pending_since = EventBatch(), None
        self._last_poll = time.monotonic()
        try:
            snapshot = await self.source.snapshot()
        except DockerServiceError as error:
            self._poll_failed = True
            self._full_poll_due = time.monotonic() + self.retry_interval
            return WatchUpdate(snapshot=None, error=error, live=self._live)
        now = time.monotonic()
        if self._poll_failed and self._stream_down():
            # The daemon answers again (restarted?): reconnect now, not after the longest delay.
            self._losses = 0
            self._reconnect_at = now
        self._poll_failed = False
        safety_net_only = self._live or not self._follows_events  # else the poll stands in for the stream
        self._full_poll_due = now + (self.interval if safety_net_only else self.retry_interval)
        return WatchUpdate(snapshot=snapshot, error=None, live=self._live)

    async def _refresh(self) -> WatchUpdate:
        batch, self._pending, self._pending_since = self._pending, EventBatch(), None
        self._last_refresh = time.monotonic()
        try:
            snapshot = await self.source.refresh(batch)
        except DockerServiceError as error:
            self._poll_requested = True  # a failed refresh may have lost changes: start over
            return WatchUpdate(snapshot=None, error=error, live=self._live)
        return WatchUpdate(snapshot=snapshot, error=None, live=self._live)

    def _refresh_due(self) -> float:
        assert self._pending_since is not None
        return max(self._pending_since + SETTLE_SECONDS, self._last_refresh + COALESCE_SECONDS)

    def _poll_due(self) -> float:
        return min(self._full_poll_due, self._catch_up_due)

    def _next_deadline(self) -> float:
        deadline = self._poll_due()
        if self._pending:
            deadline = min(deadline, self._refresh_due())
        if self._stream_down():
            deadline = min(deadline, self._reconnect_at)
        return deadline

    def _stream_down(self) -> bool:
        """The source has an update stream, and it is neither open nor being opened."""
        return self._follows_events and not (self._live or self._connecting)

    async def _sleep(self, seconds: float) -> None:
        """Until the deadline, or until an event, a lost stream or a poll request wakes us."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.0))

    def _connect(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the event stream in a new reader thread, which reports back through the loop. The
        polls do not wait for it: once it is open, one more poll catches up with what happened
        before it was."""
        self._connecting = True
        reader = threading.Thread(target=self._read, args=(loop,), name="dockerscope-events", daemon=True)
        reader.start()

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        """The reader thread: open the stream, then hand every event to the loop until it ends."""
        try:
            stream = self.source.open_event_stream()
        except DockerServiceError:
            _call_soon(loop, self._on_stream_failed)
            return
        with self._stream_lock:
            if self._stopped:
                stream.close()
                return
            self._stream = stream
        _call_soon(loop, self._on_stream_open)
        # Whatever ends the stream (the daemon going away, a proxy, garbage), the loop reconnects.
        with contextlib.suppress(Exception):
            for batch in stream:
                _call_soon(loop, self._on_event, batch)
        with self._stream_lock:
            if self._stream is stream:
                self._stream = None
        stream.close()
        _call_soon(loop, self._on_stream_lost)

    def _on_stream_open(self) -> None:
        now = time.monotonic()
        self._connecting = False
        self._live = True
        self._opened_at = now
        # Catch up with what happened while the stream was down: at once the first time, else not
        # sooner than the regular poll while it is down would come (a stream that keeps ending
        # must not bring a poll each time).
        gap = self.retry_interval if self._losses else 0.0
        self._catch_up_due = max(now, self._last_poll + gap)
        self._wake.set()

    def _on_stream_failed(self) -> None:
        self._connecting = False
        self._schedule_reconnect(time.monotonic())
        self._wake.set()

    def _schedule_reconnect(self, now: float) -> None:
        self._reconnect_at = now + RECONNECT_DELAYS[min(self._losses, len(RECONNECT_DELAYS) - 1)]
        self._losses += 1

    def _on_event(self, batch: EventBatch) -> None:
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending = self._pending | batch
        self._wake.set()

    def _on_stream_lost(self) -> None:
        if self._stopped:
            return
        now = time.monotonic()
        self._live = False
        if now - self._opened_at >= HEALTHY_SECONDS:
            self._losses = 0
        self._schedule_reconnect(now)
        self._full_poll_due = min(self._full_poll_due, now + self.retry_interval)
        self._wake.set()


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Any, *args: Any) -> None:
    """Hand a call to the event loop from the reader thread; a closed loop (the app quit) drops it."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)
