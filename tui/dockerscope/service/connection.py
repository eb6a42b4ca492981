"""Which daemon to talk to, as the docker CLI decides: --host or --context, then DOCKER_HOST, then
DOCKER_CONTEXT or the CLI's current context; when none of them names one, the first engine socket
found on this machine (Docker's, rootless Docker's, rootless then rootful Podman's)."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from docker.context import ContextAPI
from docker.errors import DockerException
from docker.tls import TLSConfig
from docker.utils import kwargs_from_env

from dockerscope.service.errors import DockerServiceError
from dockerscope.service.ssh_transport import parse_ssh_url

DEFAULT_HOST = "unix:///var/run/docker.sock"
# How far a context or config file's text is quoted in a message.
QUOTED_CHARS = 200

SocketKind = Literal["Docker", "rootless Docker", "Podman rootless", "Podman rootful"]
_DESCRIPTIONS: dict[SocketKind, str] = {
    "Docker": "Docker socket",
    "rootless Docker": "rootless Docker socket",
    "Podman rootless": "rootless Podman socket",
    "Podman rootful": "rootful Podman socket",
}


@dataclass(frozen=True)
class SocketPlace:
    """Where an engine's socket lives when it runs with its defaults."""

    kind: SocketKind
    path: str

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    @property
    def description(self) -> str:
        """ "rootless Podman socket" and the like."""
        return _DESCRIPTIONS[self.kind]


@dataclass(frozen=True)
class Connection:
    """Where the daemon is, how to reach it (keyword arguments for docker-py's APIClient), where
    that address came from ("--host", "DOCKER_HOST", "context NAME", "found: …") and, when nothing
    named a daemon and no socket was found, the places that were looked at."""

    host: str
    source: str
    client_kwargs: Mapping[str, Any] = field(default_factory=dict)
    searched: tuple[SocketPlace, ...] = ()


def socket_places(environment: Mapping[str, str], root: str = "") -> tuple[SocketPlace, ...]:
    """The default sockets of Docker and Podman, in the order they are tried. `root` is prefixed to
    every path (tests build the places under a temporary directory)."""
    places = [SocketPlace("Docker", f"{root}/var/run/docker.sock")]
    runtime = environment.get("XDG_RUNTIME_DIR", "")
    if runtime.startswith("/"):
        runtime = runtime.rstrip("/")
        places.append(SocketPlace("rootless Docker", f"{root}{runtime}/docker.sock"))
        places.append(SocketPlace("Podman rootless", f"{root}{runtime}/podman/podman.sock"))
    places.append(SocketPlace("Podman rootful", f"{root}/run/podman/podman.sock"))
    return tuple(places)


def is_socket(path: str) -> bool:
    """Whether a unix socket is at `path` (nothing is connected to, so nothing can hang)."""
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def found_sockets(environment: Mapping[str, str], root: str = "") -> tuple[SocketPlace, ...]:
    """The places of `socket_places` where a socket exists now."""
    return tuple(place for place in socket_places(environment, root) if is_socket(place.path))


def discover(environment: Mapping[str, str], root: str = "") -> Connection:
    """The first engine socket that exists; the default Docker socket (DEFAULT_HOST under `root`),
    with the places looked at, when there is none."""
    places = socket_places(environment, root)
    for place in places:
        if is_socket(place.path):
            return Connection(place.host, f"found: {place.description}", {"base_url": place.host})
    fallback = places[0].host
    return Connection(fallback, "default (no socket found)", {"base_url": fallback}, places)


def resolve_connection(
    host: str | None = None,
    environment: Mapping[str, str] | None = None,
    context: str | None = None,
    root: str = "",
) -> Connection:
    """Pick the daemon the docker CLI would use, unless `host` or `context` names one (not both).

    Raises DockerServiceError when the TLS settings are unusable, a context named does not exist or
    an ssh:// address is malformed."""
    connection = _resolve(host, os.environ if environment is None else environment, context, root)
    if connection.host.startswith("ssh://"):
        try:
            parse_ssh_url(connection.host)
        except ValueError as exc:
            raise DockerServiceError(connection.host, str(exc)) from None
    return connection


def _resolve(host: str | None, env: Mapping[str, str], context: str | None, root: str) -> Connection:
    if host and context:
        raise DockerServiceError(host, "--host and --context name different daemons: give one of them")
    if host:
        return Connection(host=host, source="--host", client_kwargs={"base_url": host})
    if context:
        return _from_context(context, "--context")
    try:
        # docker-py reads os.environ when handed an empty mapping, so never hand it one.
        params = kwargs_from_env(environment=dict(env)) if env else {}
    except DockerException as exc:
        raise DockerServiceError(env.get("DOCKER_HOST", DEFAULT_HOST), str(exc)) from exc
    if "base_url" in params:
        return Connection(host=params["base_url"], source="DOCKER_HOST", client_kwargs=params)
    if name := env.get("DOCKER_CONTEXT"):
        return _from_context(name, "DOCKER_CONTEXT")
    try:
        current = ContextAPI.get_context(None)
    except Exception:  # a config or context file the CLI itself would not read
        current = None
    if current is not None and current.Name != "default" and current.Host:
        return _context_connection(current)
    return discover(env, root)


def _from_context(name: str, named_by: str) -> Connection:
    quoted = repr(name[:QUOTED_CHARS])
    try:
        found = None if name == "default" else ContextAPI.get_context(name)
    except Exception as exc:  # docker-py raises a bare Exception for a corrupted meta file
        raise DockerServiceError(f"context {quoted}", f"cannot read it: {exc}"[:QUOTED_CHARS]) from exc
    if name == "default":
        return Connection(DEFAULT_HOST, "context default", {"base_url": DEFAULT_HOST})
    if found is None or not found.Host:
        raise DockerServiceError(
            f"context {quoted}", f"no such context (named by {named_by}; `docker context ls` lists them)"
        )
    return _context_connection(found)


def _context_connection(context: Any) -> Connection:
    kwargs: dict[str, Any] = {"base_url": context.Host}
    tls = context.TLSConfig
    if tls:
        # docker-py marks a context that skips verification with verify=None, which requests takes
        # as "verify against the system's CAs": say False, as the CLI's SkipTLSVerify means.
        kwargs["tls"] = tls if tls.verify else TLSConfig(client_cert=tls.cert, ca_cert=tls.ca_cert, verify=False)
    return Connection(host=context.Host, source=f"context {context.Name}", client_kwargs=kwargs)
