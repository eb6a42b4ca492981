"""The hosts a user can switch between in the app: the docker CLI's contexts, `DOCKER_HOST`, every
engine socket found on this machine, and what was opened this session; each probed for its engine
and version, each opened as an `ImageSource`."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from docker.context import ContextAPI

from dockerscope.service.archive_source import is_archive_path, open_archive
from dockerscope.service.connection import Connection, found_sockets, resolve_connection
from dockerscope.service.demo import DEMO_HOST, demo_source
from dockerscope.service.docker_service import DockerService
from dockerscope.service.errors import DockerServiceError
from dockerscope.service.models import engine_label
from dockerscope.service.source import ImageSource

# A probe asks for the version only; a host that takes longer is shown as not answering.
PROBE_SECONDS = 3.0
# Contexts are files anyone can write into the CLI's config directory: list a sane number.
MAX_CONTEXTS = 64


@dataclass(frozen=True)
class HostChoice:
    """One host of the list: `address` as the user would type it, `origin` where it was found."""

    address: str
    origin: str
    connection: Connection | None = field(default=None, compare=False)


@dataclass(frozen=True)
class HostProbe:
    """What a probe learned: the engine and versions, or why the host did not answer."""

    engine: str = ""
    engine_version: str = ""
    api_version: str = ""
    problem: str = ""

    @property
    def reachable(self) -> bool:
        return not self.problem

    @property
    def label(self) -> str:
        return engine_label(self.engine, self.engine_version, self.api_version)


SourceOpener = Callable[[HostChoice], ImageSource]


def open_host(choice: HostChoice) -> ImageSource:
    """The source behind a choice: the packaged demo, an archive or OCI layout opened this session
    (read to list its images: blocking), else the daemon at its address."""
    if choice.connection is None and choice.address == DEMO_HOST:
        return demo_source()
    if choice.connection is None and is_archive_path(choice.address):
        return open_archive(choice.address)
    connection = choice.connection or Connection(
        host=choice.address, source=choice.origin, client_kwargs={"base_url": choice.address}
    )
    return DockerService(connection)


class HostCatalog:
    """Finds hosts, probes them and opens the one chosen. `environment` and `root` (prefixed to the
    well-known socket paths) are for tests; `opener` turns a choice into a source."""

    def __init__(
        self,
        environment: Mapping[str, str] | None = None,
        root: str = "",
        opener: SourceOpener = open_host,
        probe_seconds: float = PROBE_SECONDS,
    ) -> None:
        self._environment = os.environ if environment is None else environment
        self._root = root
        self._opener = opener
        self._probe_seconds = probe_seconds

    def choices(self, opened: Iterable[HostChoice] = ()) -> list[HostChoice]:
        """Every host found now, then those opened this session that are not among them; one row
        per address, the first place it was found naming it."""
        found: list[HostChoice] = []
        environment = dict(self._environment)
        docker_host = environment.get("DOCKER_HOST")
        if docker_host:
            found.append(self._resolved("DOCKER_HOST", environment))
        for context in _contexts():
            found.append(self._context_choice(context))
        for place in found_sockets(environment, self._root):
            found.append(
                HostChoice(
                    place.host, place.description, Connection(place.host, place.description, {"base_url": place.host})
                )
            )
        return _unique([*found, *opened])

    def _resolved(self, origin: str, environment: Mapping[str, str]) -> HostChoice:
        try:
            connection = resolve_connection(environment=environment)
        except DockerServiceError:
            return HostChoice(environment.get("DOCKER_HOST", ""), origin)
        return HostChoice(connection.host, origin, connection)

    @staticmethod
    def _context_choice(name: str) -> HostChoice:
        """A context as the CLI would use it (its TLS material, ssh through the system client)."""
        try:
            connection = resolve_connection(context=name)
        except DockerServiceError as error:
            return HostChoice(error.host, f"context {name}")
        return HostChoice(connection.host, connection.source, connection)

    def open(self, choice: HostChoice) -> ImageSource:
        """A source for the host; it is not asked anything yet."""
        return self._opener(choice)

    async def probe(self, choice: HostChoice) -> HostProbe:
        """The host's engine and version, or why it does not answer within the probe's time."""
        try:
            # An archive is read to be opened: off the loop.
            if choice.connection is None and is_archive_path(choice.address):
                source = await asyncio.to_thread(self._opener, choice)
            else:
                source = self._opener(choice)
        except DockerServiceError as error:
            return HostProbe(problem=error.reason or error.headline)
        try:
            info = await asyncio.wait_for(source.daemon_info(), self._probe_seconds)
        except DockerServiceError as error:
            return HostProbe(problem=error.reason or error.headline)
        except TimeoutError:
            return HostProbe(problem=f"no answer within {self._probe_seconds:g} s")
        finally:
            source.close()
        return HostProbe(engine=info.engine, engine_version=info.engine_version, api_version=info.api_version)


def _contexts() -> list[str]:
    """The names of the CLI's contexts other than `default` (that one is DOCKER_HOST or the
    default socket)."""
    try:
        contexts = ContextAPI.contexts()
    except Exception:  # docker-py raises a bare Exception for a corrupted meta file, as for get_context
        return []
    return [
        context.Name
        for context in contexts[: MAX_CONTEXTS + 1]
        if context is not None and isinstance(context.Name, str) and context.Name != "default" and context.Host
    ]


def _unique(choices: Iterable[HostChoice]) -> list[HostChoice]:
    seen: set[str] = set()
    unique: list[HostChoice] = []
    for choice in choices:
        if choice.address and choice.address not in seen:
            seen.add(choice.address)
            unique.append(choice)
    return unique
