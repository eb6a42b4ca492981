"""Typed errors the service raises; the UI turns each into a message for the user.

The service promises that nothing else escapes its public methods (besides `ReadCancelled` from a
cancelled layer read): whatever a daemon answers, the caller gets one of these, with a `reason`
that may hold daemon text. Show `reason` only through the sanitiser, never as markup.

Headlines say "the daemon", never "the Docker daemon": the engine behind a socket may be Podman."""

from __future__ import annotations

from collections.abc import Sequence


class DockerServiceError(Exception):
    """Something went wrong talking to the daemon."""

    def __init__(
        self, host: str, reason: str, *, hint: str = "", origin: str = "", searched: Sequence[str] = ()
    ) -> None:
        """`hint` replaces the kind's own advice (an ssh failure knows better); `origin` says where
        the address came from ("--host", "context NAME", …); `searched`, the sockets looked for
        when nothing named a daemon and none was found."""
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason
        self.origin = origin
        self.searched = tuple(searched)
        self._hint = hint

    @property
    def headline(self) -> str:
        """One line saying what kind of trouble this is."""
        return "The daemon reported a problem"

    @property
    def hint(self) -> str:
        return self._hint or self.default_hint

    @property
    def default_hint(self) -> str:
        return ""


class DaemonUnreachable(DockerServiceError):
    """No daemon answers at the host: not running, wrong address, network or timeout."""

    @property
    def headline(self) -> str:
        return "Cannot reach the daemon"

    @property
    def default_hint(self) -> str:
        if self.searched:
            return (
                "Start Docker (systemctl start docker) or Podman (systemctl --user start podman.socket). "
                "Or name a daemon with --host, --context or DOCKER_HOST."
            )
        if "podman" in self.host:
            return (
                "Is the Podman service running? (systemctl --user start podman.socket, or as root "
                "systemctl start podman.socket)"
            )
        if self.host.startswith("unix://"):
            return (
                "Is dockerd running? Check the address with --host or DOCKER_HOST, "
                "or start the daemon (systemctl start docker)."
            )
        return "Is the daemon running and listening there? Check the address, --context or DOCKER_HOST."


class DaemonPermissionDenied(DockerServiceError):
    """The daemon's socket exists but this user may not open it."""

    @property
    def headline(self) -> str:
        return "Not allowed to talk to the daemon"

    @property
    def default_hint(self) -> str:
        if "podman" in self.host:
            return (
                "A rootful Podman socket is root's: run dockerscope as root, or use your own rootless "
                "one (systemctl --user start podman.socket)."
            )
        return (
            "Is your user in the docker group? (sudo usermod -aG docker $USER, then log in again), "
            "or run dockerscope with the rights to open the socket."
        )


class DaemonError(DockerServiceError):
    """The daemon answered, with an error status (HTTP 500 and the like)."""

    @property
    def headline(self) -> str:
        return "The daemon answered with an error"

    @property
    def default_hint(self) -> str:
        return "The daemon is running but failed to answer; its log may say why (journalctl -u docker)."


class DaemonAnswerInvalid(DockerServiceError):
    """The daemon answered something that is not what its API promises (wrong types, garbage)."""

    @property
    def headline(self) -> str:
        return "The daemon's answer could not be read"

    @property
    def default_hint(self) -> str:
        return "Is this address really a Docker (or Docker-compatible) daemon?"


class ObjectNotFound(DockerServiceError):
    """The image or container was removed (or never existed)."""

    @property
    def headline(self) -> str:
        return "Not found"
