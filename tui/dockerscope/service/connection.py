"""Which daemon to talk to: --host, then DOCKER_HOST, then DOCKER_CONTEXT or the docker CLI's
current context, as the docker CLI itself decides."""

from __future__ import annotations

import os
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
