"""docker-py clients for a connection's keyword arguments, whatever the scheme of its address."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import docker

from dockerscope.service.ssh_transport import PLACEHOLDER_VERSION, ssh_api_client


def open_client(client_kwargs: Mapping[str, Any], version: str, timeout: float) -> docker.APIClient:
    """A client for the daemon `client_kwargs` names; `version` "auto" negotiates it (a request)."""
    base_url = str(client_kwargs.get("base_url") or "")
    if base_url.startswith("ssh://"):
        return ssh_api_client(base_url, version, timeout)
    if not client_kwargs.get("tls"):
        return docker.APIClient(version=version, timeout=timeout, **client_kwargs)
    client = docker.APIClient(version=PLACEHOLDER_VERSION, timeout=timeout, **client_kwargs)
    if isinstance(client.verify, str):
        client.merge_environment_settings = _keeping_ca(client.merge_environment_settings, client.verify)
    client._version = negotiated_version(client) if version == "auto" else version
    return client


def negotiated_version(client: docker.APIClient) -> str:
    """The daemon's API version, as docker-py's own negotiation asks for it (GET /version)."""
    return str(client.version(api_version=False)["ApiVersion"])


def _keeping_ca(merge: Callable[..., dict[str, Any]], ca_file: str) -> Callable[..., dict[str, Any]]:
    """requests lets REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE replace a session's own CA file on every
    request: the daemon's certificate would then be checked against the system's CAs, and fail."""

    def merged(*args: Any, **kwargs: Any) -> dict[str, Any]:
        settings = merge(*args, **kwargs)
        settings["verify"] = ca_file
        return settings

    return merged
