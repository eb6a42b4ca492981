"""The docker-py clients a `DockerService` talks through, the jobs that run on them, and the one
place where whatever those jobs raise becomes one of the service's errors."""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

import docker
import requests
from docker.errors import APIError, DockerException, NotFound

from dockerscope.service.api_clients import ClientMaker
from dockerscope.service.connection import Connection
from dockerscope.service.errors import (
    DaemonAnswerInvalid,
    DaemonError,
    DaemonPermissionDenied,
    DaemonUnreachable,
    DockerServiceError,
    ObjectNotFound,
)
from dockerscope.service.json_answer import decode_in_pieces
from dockerscope.service.layer_contents import ContentsUnavailable
from dockerscope.service.layer_files import ReadCancelled
from dockerscope.service.ssh_transport import SSHFailure
from dockerscope.service.threads import DaemonThreadPool
from dockerscope.service.values import text

T = TypeVar("T")

# Seconds a layer read may wait for the next bytes: a daemon builds a big export as it streams it.
LAYER_READ_TIMEOUT = 120.0
# A reason holds daemon text; this much of it is plenty to say what went wrong.
REASON_CHARS = 300
_PERMISSION = re.compile(r"permission denied|errno 13\b", re.IGNORECASE)
_TLS_HINT = (
    "Check the TLS material (DOCKER_CERT_PATH, or the context's): ca.pem must be the CA that signed the "
    "daemon's certificate, cert.pem and key.pem a client certificate that daemon's CA signed."
)
# (pattern, reason, hint): the TLS ones first, as their messages also say "connection" things.
_TLS_REASONS = (
    (
        re.compile(r"hostname mismatch|ip address mismatch|doesn't match", re.IGNORECASE),
        "TLS: the daemon's certificate is not made out to this host name or address",
    ),
    (re.compile(r"certificate has expired", re.IGNORECASE), "TLS: the daemon's certificate has expired"),
    (
        re.compile(r"certificate verify failed|CERTIFICATE_VERIFY_FAILED", re.IGNORECASE),
        "TLS: the daemon's certificate is not signed by the CA given (certificate verify failed)",
    ),
    (
        re.compile(r"unknown ca|bad certificate|certificate required|certificate unknown", re.IGNORECASE),
        "TLS: the daemon refused the client certificate",
    ),
    (
        re.compile(r"wrong version number|record layer failure|packet length too long", re.IGNORECASE),
        "TLS: the daemon does not speak TLS at this address",
    ),
    (re.compile(r"\bSSLError\b|\bSSL\b", re.IGNORECASE), "TLS: the secure connection failed"),
)
_REASONS = (
    (re.compile(r"no such file or directory|errno 2\b", re.IGNORECASE), "the socket does not exist"),
    (re.compile(r"connection refused", re.IGNORECASE), "connection refused"),
    (re.compile(r"timed out|timeout", re.IGNORECASE), "no answer (timed out)"),
    (
        re.compile(r"name or service not known|nodename nor servname|getaddrinfo", re.IGNORECASE),
        "host name not found",
    ),
)


# What a malformed answer raises on its way through requests, docker-py and the parsers.
_ANSWER_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OverflowError)


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's text, cut short (it may quote a daemon's answer)."""
    try:
        message = str(exc)
    except Exception:  # an error whose text cannot even be made
        message = ""
    line = message.splitlines()[0] if message.strip() else type(exc).__name__
    return line[:REASON_CHARS]


def _describe_failure(exc: BaseException) -> str:
    message = _first_line(exc)
    for pattern, reason in _REASONS:
        if pattern.search(message):
            return reason
    return message


def _tls_failure(causes: Iterable[BaseException]) -> str | None:
    """What went wrong in a TLS handshake among the causes, in words; None if nothing did."""
    for cause in causes:
        if isinstance(cause, requests.exceptions.SSLError | ssl.SSLError):
            message = str(cause)
            for pattern, reason in _TLS_REASONS:
                if pattern.search(message):
                    return reason
    return None


def _http_status(causes: Iterable[BaseException]) -> tuple[int, str] | None:
    """The status and reason of an HTTP error answer among the causes (the version handshake wraps
    it in a plain DockerException)."""
    for cause in causes:
        response = getattr(cause, "response", None)
        if isinstance(cause, requests.HTTPError) and response is not None:
            return int(response.status_code), str(response.reason or "")[:REASON_CHARS]
    return None


def _is_malformed_answer(exc: BaseException) -> bool:
    """A parse or type error on a daemon's answer (requests' own URL and header errors are
    ValueErrors too, but they are about the address, not the answer)."""
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return True
    return isinstance(exc, _ANSWER_ERRORS) and not isinstance(exc, requests.RequestException)


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or current in seen:
            continue
        seen.append(current)
        stack.extend([current.__cause__, current.__context__, *current.args])
    return seen


class ClientPool:
    """Runs blocking docker-py calls for one daemon, each in a worker thread with its own
    APIClient (a requests session is not promised to be thread-safe), and counts the requests.

    `on_forget` is called whenever the clients are dropped, so what was learned from the daemon
    they talked to can be dropped with them.
    """

    def __init__(self, connection: Connection, timeout: float, on_forget: Callable[[], None]) -> None:
        self._connection = connection
        self._timeout = timeout
        self._on_forget = on_forget
        self._maker = ClientMaker(connection.client_kwargs)
        self._pool = DaemonThreadPool(workers=4, name="dockerscope")
        self._local = threading.local()
        self._clients: list[docker.APIClient] = []
        self._clients_lock = threading.Lock()
        self._api_version: str | None = None
        self._request_count = 0

    @property
    def host(self) -> str:
        return self._connection.host

    @property
    def request_count(self) -> int:
        """API requests sent so far (the version handshake of each new client included)."""
        return self._request_count

    @property
    def api_version(self) -> str | None:
        """The API version the clients negotiated; None until one has, and after `forget`."""
        return self._api_version

    def _count_request(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._request_count += 1

    def new_client(self, timeout: float | None = None) -> docker.APIClient:
        """A client of the caller's own; `forget` and `close` close it too."""
        with self._clients_lock:
            version = self._api_version or "auto"
        client = self._maker.open(version, timeout or self._timeout)
        client.hooks["response"].extend([self._count_request, decode_in_pieces])
        if version == "auto":
            self._request_count += 1  # the handshake ran before the hook was attached
        with self._clients_lock:
            self._api_version = client.api_version
            self._clients.append(client)
        return client

    def _client(self) -> docker.APIClient:
        client: docker.APIClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self.new_client()
        return client

    def forget(self) -> None:
        """Drop every client so the next call renegotiates (the daemon may have been replaced)."""
        with self._clients_lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
            self._api_version = None
        self._maker.close()
        self._local = threading.local()
        self._on_forget()

    def translate(self, exc: BaseException) -> DockerServiceError:
        """The typed error for whatever a call raised: every failure, whatever the daemon answered,
        becomes one of the service's errors, which says where the address came from."""
        error = self._translate(exc)
        if not error.origin:
            error.origin = self._connection.source
            error.searched = tuple(f"{place.description} {place.path}" for place in self._connection.searched)
        return error

    def _translate(self, exc: BaseException) -> DockerServiceError:
        host = self.host
        if isinstance(exc, DockerServiceError):
            return exc
        if isinstance(exc, NotFound):
            return ObjectNotFound(host, text(exc.explanation)[:REASON_CHARS] or "not found")
        if isinstance(exc, APIError):
            explanation = text(exc.explanation)[:REASON_CHARS] or _first_line(exc)
            status = exc.status_code
            return DaemonError(host, f"HTTP {status}: {explanation}" if status else explanation)
        causes = _causes(exc)
        for cause in causes:
            if isinstance(cause, SSHFailure):
                return DaemonUnreachable(host, cause.reason, hint=cause.hint)
        if (tls := _tls_failure(causes)) is not None:
            return DaemonUnreachable(host, tls, hint=_TLS_HINT)
        if (answer := _http_status(causes)) is not None:
            return DaemonError(host, f"HTTP {answer[0]} {answer[1]} ({_first_line(exc)})")
        if any(_is_malformed_answer(cause) for cause in causes):
            return DaemonAnswerInvalid(host, f"unexpected answer: {_first_line(exc)}")
        if _PERMISSION.search(_first_line(exc)) or any(isinstance(inner, PermissionError) for inner in causes):
            return DaemonPermissionDenied(host, "permission denied on the daemon socket")
        if isinstance(exc, DockerException | requests.RequestException | OSError):
            return DaemonUnreachable(host, _describe_failure(exc))
        return DaemonAnswerInvalid(host, f"unexpected answer: {type(exc).__name__}: {_first_line(exc)}")

    def submit(self, call: Callable[[docker.APIClient], T]) -> Future[T]:
        """Start `call` on a worker and its client; await it with `result_of`."""
        return self._pool.submit(lambda: call(self._client()))

    async def run(self, call: Callable[[docker.APIClient], T]) -> T:
        return await self.result_of(self.submit(call))

    async def in_worker(self, work: Callable[[], T]) -> T:
        """Work that needs no client but takes time in proportion to an answer: off the loop."""
        return await self.result_of(self._pool.submit(work))

    async def run_long(self, call: Callable[[docker.APIClient], T]) -> T:
        """A long job (reading layers) on a daemon thread and a client of its own, so polls and
        details never queue behind it."""
        job: Future[T] = Future()

        def work() -> None:
            try:
                client = self.new_client(timeout=LAYER_READ_TIMEOUT)
                try:
                    job.set_result(call(client))
                finally:
                    with self._clients_lock:
                        if client in self._clients:
                            self._clients.remove(client)
                    client.close()
            except BaseException as exc:
                if not job.done():
                    job.set_exception(exc)

        threading.Thread(target=work, name="dockerscope-layers", daemon=True).start()
        return await self.result_of(job)

    async def result_of(self, job: Future[T]) -> T:
        """The job's result. Whatever it raises leaves as one of the service's errors, except a
        cancelled read and a layer source that cannot be used, which the caller asked about."""
        try:
            return await asyncio.wrap_future(job)
        except (DockerServiceError, ReadCancelled, ContentsUnavailable):
            raise
        except Exception as exc:
            error = self.translate(exc)
            if isinstance(error, DaemonUnreachable | DaemonPermissionDenied):
                self.forget()
            raise error from exc

    def close(self) -> None:
        self._pool.shutdown()
        self.forget()
