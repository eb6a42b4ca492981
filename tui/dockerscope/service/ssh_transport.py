"""`ssh://user@host[:port]` through the system's `ssh` client, as the docker CLI does it: each HTTP
connection is one `ssh … -- host docker system dial-stdio`, whose stdin and stdout are one end of a
socket pair. So ~/.ssh/config, agents, jump hosts and known hosts work as in a terminal.

docker-py's own ssh support needs paramiko even when told to shell out (its module imports it), and
hands ssh its pipes: no socket timeouts, no way to end a blocked read from another thread, and ssh's
stderr lands on the terminal, in the middle of the UI. A socket pair has all of that, and ssh's
stderr is kept to say why a connection failed ("Permission denied", "Host key verification
failed", no docker on the far side)."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass
from typing import Any

import docker
import requests
import urllib3.connection
import urllib3.connectionpool
from docker.transport.basehttpadapter import BaseHTTPAdapter

from dockerscope.service.errors import DockerServiceError

# Seconds ssh may take to connect and exchange banners: less than a request's timeout (10 s), so
# that ssh, not the request, gives up first and says why.
CONNECT_TIMEOUT = 8
# Bytes of ssh's stderr kept per connection: its complaint is at the start.
STDERR_KEPT = 4096
# Seconds a failed request waits for its ssh to exit and say why.
EXIT_WAIT = 3.0
# The first API version docker-py accepts; the real one is negotiated right after.
PLACEHOLDER_VERSION = "1.24"
_HOST = re.compile(r"[A-Za-z0-9._:\[\]%-]+")
_USER = re.compile(r"[A-Za-z0-9._@-]+")


@dataclass(frozen=True)
class SSHTarget:
    """Where to ssh to: from `ssh://[user@]host[:port]`."""

    host: str
    user: str | None = None
    port: int | None = None

    @property
    def name(self) -> str:
        """The far side as a message names it: user@host:port."""
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{user}{self.host}{port}"

    @property
    def shell_command(self) -> str:
        """How to try the same in a terminal: `ssh -p 2222 user@host`."""
        port = f"-p {self.port} " if self.port is not None else ""
        user = f"{self.user}@" if self.user else ""
        return f"ssh {port}{user}{self.host}"

    def command(self) -> list[str]:
        """The ssh command line. BatchMode: ssh must never prompt (for a password or an unknown
        host key): the terminal belongs to the UI, and a prompt would wait forever."""
        args = ["ssh", "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}"]
        if self.user:
            args += ["-l", self.user]
        if self.port is not None:
            args += ["-p", str(self.port)]
        return [*args, "--", self.host, "docker system dial-stdio"]


def parse_ssh_url(url: str) -> SSHTarget:
    """The target of an `ssh://` address; ValueError saying what is wrong with it."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "ssh":
        raise ValueError("not an ssh:// address")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("an ssh:// address names a user, a host and a port only")
    if parts.password is not None:
        raise ValueError("no password in an ssh:// address: use a key (ssh-agent, ~/.ssh/config)")
    host = parts.hostname or ""
    if not host or host.startswith("-") or not _HOST.fullmatch(host):
        raise ValueError("no valid host name in the ssh:// address")
    user = urllib.parse.unquote(parts.username) if parts.username else None
    if user is not None and (user.startswith("-") or not _USER.fullmatch(user)):
        raise ValueError("no valid user name in the ssh:// address")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port of the ssh:// address is not a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("the port of the ssh:// address is not a number from 1 to 65535")
    return SSHTarget(host, user, port)


class SSHFailure(requests.ConnectionError):
    """ssh exited before the daemon answered; `reason` and `hint` say why, in words."""

    def __init__(self, target: SSHTarget, reason: str, hint: str) -> None:
        super().__init__(f"ssh {target.name}: {reason}")
        self.reason = reason
        self.hint = hint


_SSH_PROBLEMS = (
    (
        re.compile(r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \S+ host key is known"),
        "ssh: the host key of {host} is not known (or has changed)",
        "Check the key and accept it once with `{ssh}` in a terminal. dockerscope never prompts.",
    ),
    (
        re.compile(r"Permission denied"),
        "ssh: permission denied: {host} did not accept the key",
        "Check the user name, the key (ssh-add -l, IdentityFile in ~/.ssh/config) and authorized_keys "
        "on the far side. Try `{ssh}` in a terminal.",
    ),
    (
        # What `docker system dial-stdio` says when no daemon listens where the far side looks.
        re.compile(r"failed to open the raw stream|Cannot connect to the Docker daemon|dial unix"),
        "no daemon answers on {host} (docker system dial-stdio failed)",
        "Is dockerd running on the far side (systemctl start docker), and may this user use its socket?",
    ),
    (
        re.compile(r"Connection refused"),
        "ssh: connection refused by {host}",
        "Is sshd running there, on that port?",
    ),
    (
        re.compile(r"Could not resolve hostname|Name or service not known|not known"),
        "ssh: host name not found: {host}",
        "Check the host name (and Host entries in ~/.ssh/config).",
    ),
    (
        re.compile(r"No route to host|Network is unreachable|timed out|Connection reset|Connection closed"),
        "ssh: {host} cannot be reached",
        "Is the machine up and on this network? Try `{ssh}` in a terminal.",
    ),
    (
        re.compile(r"docker: (command )?not found|docker: No such file|exec: \"?docker|\bdocker\b.*not found"),
        "no docker command on {host}",
        "dockerscope runs `docker system dial-stdio` on the far side: install the docker CLI there "
        "(and check PATH for non-interactive ssh sessions).",
    ),
)


def describe_ssh_failure(target: SSHTarget, stderr: str, status: int | None) -> tuple[str, str]:
    """What went wrong, and what to do, from ssh's stderr and exit status."""
    for pattern, reason, hint in _SSH_PROBLEMS:
        if pattern.search(stderr):
            return reason.format(host=target.name), hint.format(ssh=target.shell_command)
    if status == 127:
        return (
            f"no docker command on {target.name}",
            "dockerscope runs `docker system dial-stdio` on the far side: install the docker CLI there.",
        )
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = f": {lines[-1]}" if lines else ""
    return (
        f"ssh to {target.name} ended (exit status {status}){said}",
        f"Try `{target.shell_command} docker version` in a terminal.",
    )


class _SSHConnection(urllib3.connection.HTTPConnection):
    """One HTTP connection: one ssh process running `docker system dial-stdio`."""

    def __init__(self, target: SSHTarget, timeout: float, on_connect: Any) -> None:
        super().__init__("localhost", timeout=timeout)
        self._target = target
        self._on_connect = on_connect
        self._stderr = bytearray()
        self._ended = threading.Event()
        self._terminated = False
        self.process: subprocess.Popen[bytes] | None = None

    def connect(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(
                self._target.command(),
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=subprocess.PIPE,
                # No controlling terminal: ssh cannot open /dev/tty to prompt, or write on the UI.
                start_new_session=True,
            )
        except OSError as error:
            ours.close()
            raise SSHFailure(
                self._target, f"cannot run the ssh client: {error.strerror or error}", "Install OpenSSH's client."
            ) from error
        finally:
            theirs.close()
        self.process = process
        threading.Thread(target=self._collect, args=(process,), name="dockerscope-ssh", daemon=True).start()
        ours.settimeout(self.timeout if isinstance(self.timeout, int | float) else None)
        self.sock = ours
        self._on_connect(self)

    def _collect(self, process: subprocess.Popen[bytes]) -> None:
        """Keep the start of ssh's stderr, and note when it has exited."""
        assert process.stderr is not None
        with process.stderr:
            while chunk := os.read(process.stderr.fileno(), 65536):
                if len(self._stderr) < STDERR_KEPT:
                    self._stderr += chunk[: STDERR_KEPT - len(self._stderr)]
        process.wait()
        self._ended.set()

    def failure(self, wait: float) -> tuple[str, str] | None:
        """Why ssh ended (reason, hint), after waiting up to `wait` seconds for it to; None while it
        runs, after a clean exit, or when dockerscope ended it and ssh had said nothing to explain."""
        if self.process is None or not self._ended.wait(wait):
            return None
        status = self.process.returncode
        if status == 0:
            return None
        stderr = self._stderr.decode(errors="replace")
        if self._terminated and not any(pattern.search(stderr) for pattern, _, _ in _SSH_PROBLEMS):
            return None
        return describe_ssh_failure(self._target, stderr, status)

    def close(self) -> None:
        super().close()
        # urllib3 closes a connection whose request failed at once: ssh may be exiting on its own
        # then, having said why on stderr, which `failure` still reads.
        if self.process is not None and self.process.poll() is None:
            self._terminated = True
            with contextlib.suppress(OSError):
                self.process.terminate()


class _SSHConnectionPool(urllib3.connectionpool.HTTPConnectionPool):
    def __init__(self, adapter: SSHAdapter, timeout: float, maxsize: int) -> None:
        super().__init__("localhost", timeout=timeout, maxsize=maxsize)
        self._adapter = adapter

    def _new_conn(self) -> _SSHConnection:
        return _SSHConnection(self._adapter.target, self._adapter.timeout, self._adapter.connected)


class SSHAdapter(BaseHTTPAdapter):  # type: ignore[misc]  # docker-py is untyped
    """requests' adapter for `http+docker://` URLs that reach the daemon through ssh."""

    def __init__(self, target: SSHTarget, timeout: float, max_pool_size: int = 10) -> None:
        self.target = target
        self.timeout = timeout
        self.max_pool_size = max_pool_size
        self._pool: _SSHConnectionPool | None = None
        self._recent: deque[_SSHConnection] = deque(maxlen=4)
        self._lock = threading.Lock()
        super().__init__()

    def connected(self, connection: _SSHConnection) -> None:
        self._recent.append(connection)

    def get_connection(self, url: str, proxies: Any = None) -> _SSHConnectionPool:
        """The one pool: every URL goes to the same daemon (docker-py keys its pools by the whole
        URL, so no connection would be reused from one path to another)."""
        with self._lock:
            if self._pool is None:
                self._pool = _SSHConnectionPool(self, self.timeout, self.max_pool_size)
            return self._pool

    def request_url(self, request: requests.PreparedRequest, proxies: Any) -> str:
        return str(request.path_url)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        try:
            return super().send(request, *args, **kwargs)  # type: ignore[no-any-return]
        except (requests.ConnectionError, requests.Timeout) as error:
            # A timed-out request waited long enough: ssh has said why by now, or it is still at it.
            found = self._failure(0 if isinstance(error, requests.Timeout) else EXIT_WAIT)
            if found is None:
                raise
            raise SSHFailure(self.target, *found) from error

    def _failure(self, wait: float) -> tuple[str, str] | None:
        """Why one of the latest connections' ssh ended, waiting up to `wait` seconds for one to
        (the clients of a service share this adapter: the failed request's connection is one of
        them, not surely the very latest)."""
        deadline = time.monotonic() + wait
        while True:
            for connection in reversed(list(self._recent)):
                if (found := connection.failure(0)) is not None:
                    return found
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def close(self) -> None:
        """Nothing: the adapter is shared by every client of a service, which closes its clients one
        by one (a layer read's own, when it is done). `shutdown` ends its connections."""

    def shutdown(self) -> None:
        """Close every pool, so each idle connection's ssh ends (a connection in use, such as an
        event stream's, ends when its stream is closed)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        super().close()


def ssh_adapter(base_url: str, timeout: float) -> SSHAdapter:
    """The adapter for an `ssh://` address, to be shared by the clients of one service: an idle
    connection any of them left is reused by the next request, as a new one costs an ssh handshake
    and a docker CLI start on the far side (half a second on loopback)."""
    try:
        target = parse_ssh_url(base_url)
    except ValueError as error:
        raise DockerServiceError(base_url, str(error)) from None
    return SSHAdapter(target, timeout)


def ssh_api_client(adapter: SSHAdapter, version: str, timeout: float) -> docker.APIClient:
    """A docker-py APIClient whose requests go through `adapter`, and so the system ssh client."""
    # A placeholder unix address gives the client its `http+docker://` routing; the adapter that
    # serves those URLs is then replaced by ssh's before the first request.
    client = docker.APIClient(base_url="unix:///dev/null", version=PLACEHOLDER_VERSION, timeout=timeout)
    client.mount("http+docker://", adapter)
    client._custom_adapter = adapter
    client._version = str(client.version(api_version=False)["ApiVersion"]) if version == "auto" else version
    return client
