"""Which daemon to talk to: --host, then DOCKER_HOST, then DOCKER_CONTEXT or the docker CLI's
current context, as the docker CLI itself decides."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from docker.context import ContextAPI
from docker.errors import DockerException
from docker.utils import kwargs_from_env

from dockerscope.service.errors import DockerServiceError

DEFAULT_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class Connection:
    """Where the daemon is and how to reach it (keyword arguments for docker-py's APIClient)."""

    host: str
    source: str
    client_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SocketPlace:
    """A well-known place of an engine's socket: `kind` says whose (`Docker`, `rootless Podman`…)."""

    kind: str
    path: str


def socket_places(environment: Mapping[str, str], root: str = "/") -> list[SocketPlace]:
    """Where engines keep their sockets, in the order they are tried; `root` prefixes the absolute
    ones (tests point it at a directory of their own)."""
    places = [SocketPlace("Docker socket", os.path.join(root, "var/run/docker.sock"))]
    runtime_dir = environment.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        places.append(SocketPlace("rootless Docker socket", os.path.join(runtime_dir, "docker.sock")))
        places.append(SocketPlace("rootless Podman socket", os.path.join(runtime_dir, "podman", "podman.sock")))
    places.append(SocketPlace("Podman socket", os.path.join(root, "run/podman/podman.sock")))
    return places


def found_sockets(environment: Mapping[str, str], root: str = "/") -> list[SocketPlace]:
    """The places of `socket_places` that hold a socket now (looked at, not connected to)."""
    found = []
    for place in socket_places(environment, root):
        try:
            mode = os.stat(place.path).st_mode
        except (OSError, ValueError):
            continue
        if stat.S_ISSOCK(mode):
            found.append(place)
    return found


def resolve_connection(host: str | None = None, environment: Mapping[str, str] | None = None) -> Connection:
    """Pick the daemon the docker CLI would use, unless `host` names one.

    Raises DockerServiceError when the environment's TLS settings are unusable."""
    env = os.environ if environment is None else environment
    if host:
        return Connection(host=host, source="--host", client_kwargs={"base_url": host})
    try:
        # docker-py reads os.environ when handed an empty mapping, so never hand it one.
        params = kwargs_from_env(environment=dict(env)) if env else {}
    except DockerException as exc:
        raise DockerServiceError(env.get("DOCKER_HOST", DEFAULT_HOST), str(exc)) from exc
    if "base_url" in params:
        return Connection(host=params["base_url"], source="DOCKER_HOST", client_kwargs=params)
    try:
        context = ContextAPI.get_context(env.get("DOCKER_CONTEXT") or None)
    except DockerException:
        context = None
    if context is not None and context.Host:
        kwargs: dict[str, Any] = {"base_url": context.Host}
        if context.TLSConfig:
            kwargs["tls"] = context.TLSConfig
        source = "default" if context.Name == "default" else f"context {context.Name}"
        return Connection(host=context.Host, source=source, client_kwargs=kwargs)
    return Connection(host=DEFAULT_HOST, source="default", client_kwargs={"base_url": DEFAULT_HOST})
