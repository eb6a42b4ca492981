"""Typed errors the service raises; the UI turns each into a message for the user.

The service promises that nothing else escapes its public methods (besides `ReadCancelled` from a
cancelled layer read): whatever a daemon answers, the caller gets one of these, with a `reason`
that may hold daemon text. Show `reason` only through the sanitiser, never as markup."""

from __future__ import annotations


class DockerServiceError(Exception):
    """Something went wrong talking to the daemon."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason

    @property
    def headline(self) -> str:
        """One line saying what kind of trouble this is."""
        return "The Docker daemon reported a problem"

    @property
    def hint(self) -> str:
        return ""


class DaemonUnreachable(DockerServiceError):
    """No daemon answers at the host: not running, wrong address, network or timeout."""

    @property
    def headline(self) -> str:
        return "Cannot reach the Docker daemon"

    @property
    def hint(self) -> str:
        return (
            "Is dockerd running? Check the address with --host or DOCKER_HOST, "
            "or start the daemon (systemctl start docker)."
        )


class DaemonPermissionDenied(DockerServiceError):
    """The daemon's socket exists but this user may not open it."""

    @property
    def headline(self) -> str:
        return "Not allowed to talk to the Docker daemon"

    @property
    def hint(self) -> str:
        return (
            "Is your user in the docker group? (sudo usermod -aG docker $USER, then log in again), "
            "or run dockerscope with the rights to open the socket."
        )


class DaemonError(DockerServiceError):
    """The daemon answered, with an error status (HTTP 500 and the like)."""

    @property
    def headline(self) -> str:
        return "The Docker daemon answered with an error"

    @property
    def hint(self) -> str:
        return "The daemon is running but failed to answer; its log may say why (journalctl -u docker)."


class DaemonAnswerInvalid(DockerServiceError):
    """The daemon answered something that is not what its API promises (wrong types, garbage)."""

    @property
    def headline(self) -> str:
        return "The Docker daemon's answer could not be read"

    @property
    def hint(self) -> str:
        return "Is this address really a Docker (or Docker-compatible) daemon?"


class ObjectNotFound(DockerServiceError):
    """The image or container was removed (or never existed)."""

    @property
    def headline(self) -> str:
        return "Not found"
