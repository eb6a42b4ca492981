"""Remote daemons: `ssh://` through the system ssh client to a real sshd on loopback, and
`tcp://` with TLS to a second private dockerd (both started by scripts/test.sh), by address and
by docker CLI context. Every way of failing is one clear message naming the host, on the
connection screen and in `analyze`'s stderr."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from apphelpers import SIZE, highlight_image, shown_names, status_text, wait_until, wait_until_live
from conftest import APP_IMAGE, BASE_IMAGE, HUGE_IMAGE, WASTE_IMAGE, SSHServer, TLSDaemon
from dockerscope import analyze
from dockerscope.service import (
    Connection,
    DockerService,
    ProgressCallback,
    ReadProgress,
    resolve_connection,
    ssh_transport,
)
from dockerscope.service.layer_cache import LayerCache
from dockerscope.ui import create_app
from dockerscope.ui.connection_screen import ConnectionScreen
from dockerscope.ui.layer_contents_screen import LayerContentsScreen


def _tls_env(daemon: TLSDaemon, certs: Path) -> dict[str, str]:
    return {"DOCKER_HOST": daemon.host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs)}


def _problem_text(screen: object) -> str:
    if not isinstance(screen, ConnectionScreen):
        return ""
    return "".join(problem.render().plain for problem in screen.query("#connection-problem").results(Static))


def _analyze(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`dockerscope analyze ARGS` in this process (so a test's PATH and patches hold): exit code,
    stdout, stderr."""
    out = io.StringIO()
    code = analyze.main(list(args), out=out)
    return code, out.getvalue(), capsys.readouterr().err


async def _shows_images(connection_host: str, environment: Mapping[str, str], *names: str) -> None:
    service = DockerService(resolve_connection(connection_host or None, environment))
    app = create_app(service, interval=60)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(
                pilot,
                lambda: app.screen is app.explorer and all(name in shown_names(app) for name in names),
                timeout=30,
            )
            assert service.host in status_text(app)
            assert "Docker" in status_text(app)
            await wait_until_live(pilot, app)  # the event stream runs through ssh too
    finally:
        service.close()
    _wait_for_no_ssh_left()


# --- ssh:// ---------------------------------------------------------------------------------------


async def test_the_app_over_ssh_shows_the_daemons_images_and_names_the_host(ssh_client: SSHServer) -> None:
    await _shows_images(ssh_client.host, {}, APP_IMAGE, BASE_IMAGE, HUGE_IMAGE)


class ReportingService(DockerService):
    """The real service, keeping every progress report of a layer read."""

    def __init__(self, connection: Connection, cache: LayerCache) -> None:
        super().__init__(connection, cache=cache)
        self.reports: list[ReadProgress] = []

    async def image_contents(  # type: ignore[override]
        self, image_id: str, *, on_progress: ProgressCallback | None = None, **kwargs: Any
    ) -> Any:
        def kept(progress: ReadProgress) -> None:
            self.reports.append(progress)
            if on_progress is not None:
                on_progress(progress)

        return await super().image_contents(image_id, on_progress=kept, **kwargs)


async def test_layer_contents_over_ssh_come_from_the_export_stream_with_progress(
    ssh_client: SSHServer, tmp_path: Path
) -> None:
    service = ReportingService(resolve_connection(ssh_client.host, {}), LayerCache(tmp_path / "cache"))
    app = create_app(service, interval=60)
    try:
        async with app.run_test(size=SIZE) as pilot:
            # Every first request over ssh starts ssh and a docker CLI on the far side: slow under load.
            await wait_until(pilot, lambda: WASTE_IMAGE in shown_names(app), timeout=30)
            await highlight_image(pilot, app, WASTE_IMAGE, timeout=30)
            await pilot.press("3", "enter")
            await wait_until(pilot, lambda: isinstance(app.screen, LayerContentsScreen), timeout=30)
            contents_title = lambda: app.screen.query_one("#contents-title", Static).render().plain  # noqa: E731
            await wait_until(pilot, lambda: "read from export" in contents_title(), timeout=60)
            assert "layer 1 of 5" in contents_title()
    finally:
        service.close()
    assert len(service.reports) >= 2
    assert service.reports[-1].layers_done == service.reports[-1].layer_count == 5
    assert max(report.bytes_done for report in service.reports) > 1_000_000  # bytes as they came


def test_docker_host_and_a_context_may_name_an_ssh_daemon(
    ssh_client: SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", ssh_client.host)
    code, out, err = _analyze(capsys, BASE_IMAGE, "--json")
    assert code == 0, err
    monkeypatch.delenv("DOCKER_HOST")
    _context_config(tmp_path, "over-ssh", ssh_client.host, None)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("DOCKER_CONTEXT", "over-ssh")
    code, again, err = _analyze(capsys, BASE_IMAGE, "--json")
    assert code == 0, err
    assert json.loads(again)["layers"] == json.loads(out)["layers"]


def test_a_remote_daemon_never_takes_the_fast_path(ssh_client: SSHServer, tls_daemon: TLSDaemon) -> None:
    for host in (ssh_client.host, tls_daemon.host):
        service = DockerService(resolve_connection(host, {}))
        assert not service.capabilities.fast_path
        service.close()


def test_analyze_over_ssh_reads_the_layers_from_the_export_stream(
    ssh_client: SSHServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _analyze(capsys, APP_IMAGE, "--host", ssh_client.host, "--no-cache", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["image"]["source"] == "export"
    assert report["layers"] and sum(layer["files"] for layer in report["layers"]) > 100


def test_analyze_over_ssh_refuses_the_overlay_source(ssh_client: SSHServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _analyze(capsys, APP_IMAGE, "--host", ssh_client.host, "--source", "overlay")
    assert code == 2
    assert "is not local" in err and ssh_client.host in err


def test_the_ssh_client_never_reads_the_users_ssh_directory(ssh_client: SSHServer) -> None:
    """The test's own ssh is the one found first in PATH, with the test's config."""
    found = shutil.which("ssh")
    assert found == str(ssh_client.directory / "bin" / "ssh")


def test_analyze_over_ssh_as_a_process_prints_the_report(ssh_client: SSHServer) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dockerscope", "analyze", BASE_IMAGE, "--host", ssh_client.host],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert BASE_IMAGE in result.stdout


# --- tcp:// with TLS ------------------------------------------------------------------------------


async def test_the_app_over_tcp_with_tls_shows_the_daemons_images(tls_daemon: TLSDaemon) -> None:
    await _shows_images("", _tls_env(tls_daemon, tls_daemon.certs), APP_IMAGE, BASE_IMAGE)


def _context_config(config: Path, name: str, host: str, certs: Path | None) -> None:
    """A docker CLI config directory with the context `name`, the current one, as `docker context
    create` writes it."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": False}
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}}))
    if certs is not None:
        tls = config / "contexts" / "tls" / digest / "docker"
        tls.mkdir(parents=True)
        for file in ("ca.pem", "cert.pem", "key.pem"):
            shutil.copy(certs / file, tls / file)
    (config / "config.json").write_text("{}")


async def test_a_context_with_tls_material_is_used_by_name(
    tls_daemon: TLSDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _context_config(tmp_path, "remote-tls", tls_daemon.host, tls_daemon.certs)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    connection = resolve_connection(None, {}, context="remote-tls")
    assert connection.source == "context remote-tls"
    service = DockerService(connection)
    app = create_app(service, interval=60)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.screen is app.explorer and APP_IMAGE in shown_names(app), timeout=30)
            assert tls_daemon.host in status_text(app)
    finally:
        service.close()


def test_analyze_takes_a_context_by_name(
    tls_daemon: TLSDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _context_config(tmp_path, "remote-tls", tls_daemon.host, tls_daemon.certs)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv("DOCKER_HOST")
    code, out, err = _analyze(capsys, BASE_IMAGE, "--context", "remote-tls", "--no-cache", "--json")
    assert code == 0, err
    assert json.loads(out)["image"]["source"] == "export"


def test_an_unknown_context_exits_2_naming_it(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    result = subprocess.run(
        [sys.executable, "-m", "dockerscope", "analyze", BASE_IMAGE, "--context", "nowhere"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "DOCKER_CONFIG": str(tmp_path)},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "dockerscope: context 'nowhere': no such context (named by --context; `docker context ls` lists them)"
    )


def test_host_and_context_together_are_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dockerscope", "--host", "tcp://127.0.0.1:1", "--context", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


# --- failures -------------------------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word (an ssh server that hangs)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


@pytest.fixture
def failure(
    request: pytest.FixtureRequest,
    ssh_client: SSHServer,
    tls_daemon: TLSDaemon,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    closed_port: int,
    silent_port: int,
) -> tuple[str, dict[str, str], str]:
    """(host, environment, expected message) for one way of failing, set up for real."""
    monkeypatch.setattr(ssh_transport, "CONNECT_TIMEOUT", 2)
    ssh, tls = ssh_client.host, tls_daemon.host
    ssh_name = ssh.removeprefix("ssh://")
    case: str = request.param
    if case == "wrong key":
        monkeypatch.setenv("DOCKERSCOPE_TEST_SSH_KEY", str(ssh_client.key("key-stranger")))
        return ssh, {}, f"ssh: permission denied: {ssh_name} did not accept the key"
    if case == "unknown host key":
        (tmp_path / "known_hosts").write_text("")
        monkeypatch.setenv("DOCKERSCOPE_TEST_SSH_KNOWN_HOSTS", str(tmp_path / "known_hosts"))
        return ssh, {}, f"ssh: the host key of {ssh_name} is not known (or has changed)"
    if case == "no docker there":
        monkeypatch.setenv("DOCKERSCOPE_TEST_SSH_KEY", str(ssh_client.key("key-nodocker")))
        return ssh, {}, f"no docker command on {ssh_name}"
    if case == "no daemon there":
        monkeypatch.setenv("DOCKERSCOPE_TEST_SSH_KEY", str(ssh_client.key("key-nodaemon")))
        return ssh, {}, f"no daemon answers on {ssh_name}"
    if case == "ssh port refused":
        return f"ssh://root@127.0.0.1:{closed_port}", {}, f"ssh: connection refused by root@127.0.0.1:{closed_port}"
    if case == "ssh host not answering":
        return f"ssh://root@127.0.0.1:{silent_port}", {}, f"ssh: root@127.0.0.1:{silent_port} cannot be reached"
    if case == "CA mismatch":
        certs = tmp_path / "certs"
        certs.mkdir()
        shutil.copy(tls_daemon.certs.parent / "other-ca" / "ca.pem", certs / "ca.pem")
        for file in ("cert.pem", "key.pem"):
            shutil.copy(tls_daemon.certs / file, certs / file)
        return "", _tls_env(tls_daemon, certs), "TLS: the daemon's certificate is not signed by the CA given"
    if case == "client certificate refused":
        certs = tmp_path / "certs"
        certs.mkdir()
        shutil.copy(tls_daemon.certs / "ca.pem", certs / "ca.pem")
        for file in ("cert.pem", "key.pem"):
            shutil.copy(tls_daemon.certs.parent / "other-ca" / file, certs / file)
        return "", _tls_env(tls_daemon, certs), "TLS: the daemon refused the client certificate"
    if case == "tcp port refused":
        return (
            "",
            _tls_env(tls_daemon, tls_daemon.certs) | {"DOCKER_HOST": f"tcp://127.0.0.1:{closed_port}"},
            ("connection refused"),
        )
    assert case == "wrong host name", case
    port = tls.rsplit(":", 1)[1]
    return (
        "",
        _tls_env(tls_daemon, tls_daemon.certs) | {"DOCKER_HOST": f"tcp://localhost:{port}"},
        ("TLS: the daemon's certificate is not made out to this host name or address"),
    )


FAILURES = [
    "wrong key",
    "unknown host key",
    "no docker there",
    "no daemon there",
    "ssh port refused",
    "ssh host not answering",
    "CA mismatch",
    "client certificate refused",
    "tcp port refused",
    "wrong host name",
]


@pytest.mark.parametrize("failure", FAILURES, indirect=True)
async def test_each_failure_is_one_clear_message_on_the_connection_screen(
    failure: tuple[str, dict[str, str], str], request: pytest.FixtureRequest
) -> None:
    host, environment, expected = failure
    case = request.node.callspec.params["failure"]
    connection = resolve_connection(host or None, environment)
    service = DockerService(connection)
    app = create_app(service, interval=3600)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: expected in _problem_text(app.screen), timeout=20)
            text = _problem_text(app.screen)
            assert "Cannot reach the daemon" in text
            assert f"Host:    {connection.host}" in text
            assert f"From:    {'--host' if host else 'DOCKER_HOST'}" in text
            assert "Traceback" not in text and "Error while fetching" not in text
            assert "Is dockerd running?" not in text  # the remote failure's own advice instead
            if case in ("wrong key", "unknown host key", "ssh host not answering"):
                assert "ssh -p " in text  # how to try the same in a terminal
    finally:
        service.close()


@pytest.mark.parametrize("failure", FAILURES, indirect=True)
def test_each_failure_is_one_clear_line_from_analyze(
    failure: tuple[str, dict[str, str], str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    host, environment, expected = failure
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code, out, err = _analyze(capsys, BASE_IMAGE, *(["--host", host] if host else []))
    assert code == 2
    assert out == ""
    target = host or environment["DOCKER_HOST"]
    assert err.startswith(f"dockerscope: {BASE_IMAGE}: Cannot reach the daemon ({target}): {expected}"), err
    assert err.count("\n") == 1


def _ssh_children() -> list[str]:
    """ssh processes this test process started that still run (or wait to be reaped)."""
    found = subprocess.run(["pgrep", "-P", str(os.getpid()), "-x", "ssh"], capture_output=True, text=True)
    return found.stdout.split()


def test_no_ssh_process_or_its_thread_is_left_behind(ssh_client: SSHServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert _analyze(capsys, BASE_IMAGE, "--host", ssh_client.host)[0] == 0
    _wait_for_no_ssh_left()


def _wait_for_no_ssh_left() -> None:
    """Every ssh this process started has ended, and the threads reading their stderr with them."""
    deadline = time.monotonic() + 20
    while (_ssh_children() or _ssh_threads()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ssh_children() == []
    assert _ssh_threads() == []


def _ssh_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "dockerscope-ssh"]
