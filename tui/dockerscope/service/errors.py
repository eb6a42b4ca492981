"""Typed errors the service raises; the UI turns each into a message for the user."""

from __future__ import annotations


class DockerServiceError(Exception):
    """Something went wrong talking to the daemon."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason

    @property
    def hint(self) -> str:
        return ""


class DaemonUnreachable(DockerServiceError):
    """No daemon answers at the host: not running, wrong address, network or timeout."""

    @property
    def hint(self) -> str:
        return (
            "Is dockerd running? Check the address with --host or DOCKER_HOST, "
            "or start the daemon (systemctl start docker)."
        )


class DaemonPermissionDenied(DockerServiceError):
    """The daemon's socket exists but this user may not open it."""

    @property
    def hint(self) -> str:
        return (
            "Is your user in the docker group? (sudo usermod -aG docker $USER, then log in again), "
            "or run dockerscope with the rights to open the socket."
        )


class ObjectNotFound(DockerServiceError):
    """The image or container was removed (or never existed)."""
