"""docker-py clients for a connection's keyword arguments, whatever the scheme of its address."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import docker

from dockerscope.service.ssh_transport import PLACEHOLDER_VERSION, SSHAdapter, ssh_adapter, ssh_api_client


class ClientMaker:
    """Makes the clients of one connection. Over ssh they share one adapter, and so its idle
    connections (each one an ssh process); `close` ends those."""

    def __init__(self, client_kwargs: Mapping[str, Any]) -> None:
        self._kwargs = client_kwargs
        self._lock = threading.Lock()
        self._ssh: SSHAdapter | None = None

    def open(self, version: str, timeout: float) -> docker.APIClient:
        """A client; `version` "auto" negotiates it (a request)."""
        base_url = str(self._kwargs.get("base_url") or "")
        if base_url.startswith("ssh://"):
            with self._lock:
                if self._ssh is None:
                    self._ssh = ssh_adapter(base_url, timeout)
                adapter = self._ssh
            return ssh_api_client(adapter, version, timeout)
        if not self._kwargs.get("tls"):
            return docker.APIClient(version=version, timeout=timeout, **self._kwargs)
        client = docker.APIClient(version=PLACEHOLDER_VERSION, timeout=timeout, **self._kwargs)
        if isinstance(client.verify, str):
            client.merge_environment_settings = _keeping_ca(client.merge_environment_settings, client.verify)
        client._version = str(client.version(api_version=False)["ApiVersion"]) if version == "auto" else version
        return client

    def close(self) -> None:
        """End the shared connections (the clients are closed by their owners); the next `open`
        starts afresh."""
        with self._lock:
            adapter, self._ssh = self._ssh, None
        if adapter is not None:
            adapter.shutdown()


def _keeping_ca(merge: Callable[..., dict[str, Any]], ca_file: str) -> Callable[..., dict[str, Any]]:
    """requests lets REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE replace a session's own CA file on every
    request: the daemon's certificate would then be checked against the system's CAs, and fail."""

    def merged(*args: Any, **kwargs: Any) -> dict[str, Any]:
        settings = merge(*args, **kwargs)
        settings["verify"] = ca_file
        return settings

    return merged
