"""Shared fixtures. Daemon tests need the private dockerd that scripts/test.sh starts; without it
they fail (never skip), so a CI run without a daemon is red. Every test that reaches the daemon
is marked `daemon` here, from its fixtures: `pytest -m "not daemon"` runs the rest without one."""

from __future__ import annotations

import ast
import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from dockerscope.service import Connection, DockerService
from images import import_tiny_image

# Layer listings are cached under XDG_CACHE_HOME: keep the tests' cache out of the user's. One
# directory per process (each pytest-xdist worker has its own), removed when the process ends.
_TEST_CACHE = tempfile.TemporaryDirectory(prefix="dockerscope-test-cache-")
os.environ["XDG_CACHE_HOME"] = _TEST_CACHE.name

# CPython before 3.11.8 and 3.12.2 counts the nesting of the AST it builds in one counter for the
# whole interpreter (python/cpython#106905): an AST built while another is under way makes that one
# fail with "SystemError: AST constructor recursion depth mismatch". The builder runs Python code in
# the middle whenever the collector runs (Hypothesis's gc callback, after its first test, for the
# rest of the session; finalizers), so another thread can take the GIL, or that code itself can
# print a traceback, for which 3.11 builds an AST per frame. pytest parsing a test file to show a
# failure then ends in INTERNALERROR. So: one AST at a time across threads, and none nested in a
# thread: the nested one fails instead (a printed traceback only loses its ^^^ markers).
_UNGUARDED_PARSE = ast.parse
_ONE_AST_AT_A_TIME = threading.Lock()
_building = threading.local()


def _parse_one_at_a_time(*args: Any, **kwargs: Any) -> Any:
    if getattr(_building, "active", False):
        raise RuntimeError("ast.parse during another ast.parse in this thread (python/cpython#106905)")
    with _ONE_AST_AT_A_TIME:
        _building.active = True
        try:
            return _UNGUARDED_PARSE(*args, **kwargs)
        finally:
            _building.active = False


if sys.version_info < (3, 11, 8) or (3, 12) <= sys.version_info < (3, 12, 2):
    ast.parse = _parse_one_at_a_time

APP_IMAGE = "dockerscope-test/app:1"
BASE_IMAGE = "dockerscope-test/base:1"
TOOL_IMAGE = "dockerscope-test/tool:1"
IMPORTED_IMAGE = "dockerscope-test/imported:1"
REBUILT_IMAGE = "dockerscope-test/rebuilt:1"
HUGE_IMAGE = "dockerscope-test/huge:1"
CHAIN_A_IMAGE = "dockerscope-test/chain-a:1"
CHAIN_B_IMAGE = "dockerscope-test/chain-b:1"
CHAIN_C_IMAGE = "dockerscope-test/chain-c:1"
# Layers that overwrite and delete files of lower layers, and an opaque directory.
WASTE_IMAGE = "dockerscope-test/waste:1"
FIXTURE_IMAGES = (
    APP_IMAGE,
    BASE_IMAGE,
    TOOL_IMAGE,
    IMPORTED_IMAGE,
    REBUILT_IMAGE,
    HUGE_IMAGE,
    CHAIN_A_IMAGE,
    CHAIN_B_IMAGE,
    CHAIN_C_IMAGE,
    WASTE_IMAGE,
)

RUNNING_CONTAINER = "dockerscope-test-running"
PAUSED_CONTAINER = "dockerscope-test-paused"
EXITED_CONTAINER = "dockerscope-test-exited"  # exited with code 3
CREATED_CONTAINER = "dockerscope-test-created"
CHANGES_CONTAINER = "dockerscope-test-changes"  # from the app image: added, changed and deleted files
FIXTURE_CONTAINERS = (RUNNING_CONTAINER, PAUSED_CONTAINER, EXITED_CONTAINER, CREATED_CONTAINER, CHANGES_CONTAINER)


# Every fixture that talks to the private dockerd (api, connection, service, throwaway_image and
# any fixture of a test module built on them) gets its address from this one.
DAEMON_FIXTURE = "docker_host"
# scripts/test.sh spreads the tests over three pytest-xdist workers (`--dist loadgroup`). The daemon
# tests share one daemon, and some assert on its whole image list or on the events it sends, so
# they run in this group: on one worker, one after the other (but for DAEMON_READER_MODULES).
DAEMON_GROUP = "daemon"
# Modules whose tests only read the fixture images and assert what must be there (never the whole
# list, never the events), and change nothing on the daemon: they run in a group of their own,
# beside the daemon group, so that group is not the one path every CI run waits for.
DAEMON_READER_MODULES = frozenset(
    {
        "test_archive_daemon",
        "test_compare_app",
        "test_copy_app",
        "test_extract_app",
        "test_file_view_app",
        "test_hosts",
        "test_memory",
        "test_remote",
        "test_zoom_app",
    }
)
DAEMON_READER_GROUP = "daemon-readers"


# The private Podman service (scripts/podman-private.sh): its tests are `daemon` tests too, in a
# group of their own (they share that service, not the dockerd), so the two groups can overlap.
PODMAN_FIXTURE = "podman_host"
PODMAN_GROUP = "podman"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker and before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `daemon` every test whose fixtures, directly or through other fixtures, need the daemon
    (or the Podman service), and put it in DAEMON_GROUP, DAEMON_READER_GROUP or PODMAN_GROUP."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if DAEMON_FIXTURE in names:
            item.add_marker(pytest.mark.daemon)
            reader = item.module is not None and item.module.__name__ in DAEMON_READER_MODULES
            item.add_marker(pytest.mark.xdist_group(DAEMON_READER_GROUP if reader else DAEMON_GROUP))
        elif PODMAN_FIXTURE in names:
            item.add_marker(pytest.mark.daemon)
            item.add_marker(pytest.mark.xdist_group(PODMAN_GROUP))
    # pytest-xdist hands out the groups in the order their first test comes: the long ones first, so
    # that none starts last and keeps the run waiting; the tests of no group fill in around them.
    items.sort(key=_group_rank)


# The groups that run one test after another on one worker, longest first (about 140, 70, 50 and
# 40 seconds of tests on the 2-core CI machine).
_SERIAL_GROUPS = (DAEMON_GROUP, DAEMON_READER_GROUP, PODMAN_GROUP, "misbehaving-event-stream")


def _group_rank(item: pytest.Item) -> int:
    mark = item.get_closest_marker("xdist_group")
    group = mark.args[0] if mark is not None and mark.args else None
    return _SERIAL_GROUPS.index(group) if group in _SERIAL_GROUPS else len(_SERIAL_GROUPS)


@pytest.fixture(scope="session")
def docker_host() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        pytest.fail("DOCKER_HOST is not set: run the suite with `bash scripts/test.sh`, which starts a daemon")
    try:
        docker.APIClient(base_url=host, version="auto", timeout=10).close()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Docker daemon answers at {host}: {exc}")
    return host


@pytest.fixture(scope="session")
def podman_host() -> str:
    """The private Podman service's address (DOCKERSCOPE_PODMAN_HOST, set by scripts/test.sh)."""
    host = os.environ.get("DOCKERSCOPE_PODMAN_HOST", "")
    if not host:
        pytest.fail(
            "DOCKERSCOPE_PODMAN_HOST is not set: run the suite with `bash scripts/test.sh`, which starts Podman"
        )
    try:
        client = docker.APIClient(base_url=host, version="auto", timeout=10)
        try:
            components = client.version(api_version=False).get("Components") or []
        finally:
            client.close()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Podman service answers at {host}: {exc}")
    if not any(str(component.get("Name", "")).startswith("Podman") for component in components):
        pytest.fail(f"the engine at {host} is not Podman")
    return host


def checked_client(host: str, images: Iterable[str], containers: Iterable[str], script: str) -> docker.APIClient:
    """A client on `host`, once the fixture images and containers `script` makes are found there."""
    client = docker.APIClient(base_url=host, version="auto", timeout=60)
    for image in images:
        try:
            client.inspect_image(image)
        except docker.errors.ImageNotFound:
            pytest.fail(f"fixture image {image} is missing at {host}: {script} makes it")
    for container in containers:
        try:
            client.inspect_container(container)
        except docker.errors.NotFound:
            pytest.fail(f"fixture container {container} is missing at {host}: {script} makes it")
    return client


@pytest.fixture(scope="session")
def api(docker_host: str) -> Iterator[docker.APIClient]:
    client = checked_client(docker_host, FIXTURE_IMAGES, FIXTURE_CONTAINERS, "scripts/build-fixtures.sh")
    yield client
    client.close()


@pytest.fixture
def connection(docker_host: str) -> Connection:
    return Connection(host=docker_host, source="test", client_kwargs={"base_url": docker_host})


@pytest.fixture
def service(connection: Connection, api: docker.APIClient) -> Iterator[DockerService]:
    docker_service = DockerService(connection)
    yield docker_service
    docker_service.close()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory path: unix socket paths must stay under 108 bytes."""

    with tempfile.TemporaryDirectory(prefix="ds-") as name:
        yield Path(name)


THROWAWAY_IMAGE = "dockerscope-test/throwaway:tmp"


@pytest.fixture
def throwaway_image(api: docker.APIClient) -> Iterator[str]:
    """An image imported as THROWAWAY_IMAGE for one test and removed afterwards; yields its id."""
    image_id = import_tiny_image(api, THROWAWAY_IMAGE)
    yield image_id
    with contextlib.suppress(docker.errors.NotFound):
        api.remove_image(image_id, force=True)


@dataclass(frozen=True)
class SSHServer:
    """The private sshd of scripts/sshd-private.sh, whose key leads to the private dockerd."""

    host: str  # ssh://root@127.0.0.1:PORT
    directory: Path  # bin/ssh (the test's ssh client), known_hosts and the keys

    def key(self, name: str = "key") -> Path:
        """key, key-nodocker, key-nodaemon or key-stranger (see scripts/sshd-private.sh)."""
        return self.directory / name


@pytest.fixture(scope="session")
def ssh_server(docker_host: str) -> SSHServer:
    host = os.environ.get("DOCKERSCOPE_TEST_SSH_HOST", "")
    directory = os.environ.get("DOCKERSCOPE_TEST_SSH_DIR", "")
    if not host or not directory:
        pytest.fail("DOCKERSCOPE_TEST_SSH_HOST is not set: `bash scripts/test.sh` starts sshd")
    if not (Path(directory) / "bin" / "ssh").is_file():
        pytest.fail(f"the test's ssh client {directory}/bin/ssh is missing: scripts/sshd-private.sh makes it")
    return SSHServer(host, Path(directory))


@pytest.fixture
def ssh_client(ssh_server: SSHServer, monkeypatch: pytest.MonkeyPatch) -> SSHServer:
    """The sshd, with the test's `ssh` first in PATH (its key and known_hosts, never ~/.ssh)."""
    monkeypatch.setenv("PATH", f"{ssh_server.directory / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.delenv("DOCKERSCOPE_TEST_SSH_KEY", raising=False)
    monkeypatch.delenv("DOCKERSCOPE_TEST_SSH_KNOWN_HOSTS", raising=False)
    return ssh_server


@dataclass(frozen=True)
class TLSDaemon:
    """The second private dockerd of scripts/dockerd-tls.sh, on tcp://127.0.0.1:PORT with --tlsverify."""

    host: str
    certs: Path  # ca.pem, cert.pem, key.pem of a client; ../other-ca/ holds a CA that signed nothing of it


@pytest.fixture(scope="session")
def tls_daemon(docker_host: str) -> TLSDaemon:
    host = os.environ.get("DOCKERSCOPE_TEST_TLS_HOST", "")
    certs = os.environ.get("DOCKERSCOPE_TEST_TLS_CERTS", "")
    if not host or not certs:
        pytest.fail("DOCKERSCOPE_TEST_TLS_HOST is not set: run the suite with `bash scripts/test.sh`, which starts it")
    if not (Path(certs) / "ca.pem").is_file():
        pytest.fail(f"the client certificates in {certs} are missing: scripts/dockerd-tls.sh makes them")
    return TLSDaemon(host, Path(certs))
