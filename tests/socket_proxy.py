"""A unix socket in front of the real daemon, which a test can open, close and cut."""

from __future__ import annotations

import asyncio
from pathlib import Path


class SocketProxy:
    """A unix socket that forwards to the real daemon while it is open: a daemon we can start and
    stop in the middle of a test."""

    def __init__(self, path: Path, daemon_socket: str) -> None:
        self.path = path
        self._daemon_socket = daemon_socket
        self._server: asyncio.AbstractServer | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    def drop_connections(self) -> None:
        """Cut every open connection (an event stream among them) but keep accepting new ones."""
        for pipe in self._pipes:
            pipe.cancel()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for pipe in self._pipes:
            pipe.cancel()
        await self._server.wait_closed()
        self.path.unlink(missing_ok=True)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        daemon_reader, daemon_writer = await asyncio.open_unix_connection(self._daemon_socket)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            finally:
                writer.close()

        tasks = [
            asyncio.ensure_future(pipe(client_reader, daemon_writer)),
            asyncio.ensure_future(pipe(daemon_reader, client_writer)),
        ]
        self._pipes.update(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pipes.difference_update(tasks)
