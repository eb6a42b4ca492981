"""Switching hosts in the app (`H`): the list of hosts found, their probes, and a switch that leaves
nothing of the old host running."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable

from apphelpers import SIZE, highlight_image, shown_names, status_text, wait_until, wait_until_live
from archives import docker_save, layer, step, write_tar
from conftest import APP_IMAGE, BASE_IMAGE
from dockerscope.service import Connection, DockerService, HostCatalog, HostChoice, open_archive
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.connection_screen import ConnectionScreen
from dockerscope.ui.host_list_screen import HostListScreen
from socket_proxy import SocketProxy


@pytest.fixture
def runtime_dir(short_tmp: Path) -> Path:
    directory = short_tmp / "run"
    directory.mkdir()
    return directory


def _listening_socket(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()
    return listener


@pytest.fixture
def no_contexts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A docker CLI config directory of the test's own (contexts live there)."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return tmp_path / "docker-config"


def _add_context(config: Path, name: str, host: str) -> None:
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (config / "config.json").write_text("{}")
    document = {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}
    (meta / "meta.json").write_text(json.dumps(document))


def test_the_list_holds_docker_host_contexts_and_the_sockets_found_in_order_once_each(
    short_tmp: Path, no_contexts: Path
) -> None:
    root = short_tmp / "root"
    runtime = root / "run/user/0"
    sockets = [
        _listening_socket(root / "var/run/docker.sock"),
        _listening_socket(runtime / "podman" / "podman.sock"),
    ]
    # Not sockets: a file where rootless Docker's socket would be, a directory for rootful Podman's.
    (runtime / "docker.sock").write_text("not a socket")
    (root / "run/podman/podman.sock").mkdir(parents=True)
    _add_context(no_contexts, "far", "ssh://someone@far.example")
    environment = {"DOCKER_HOST": "tcp://127.0.0.1:2375", "XDG_RUNTIME_DIR": "/run/user/0"}
    try:
        catalog = HostCatalog(environment, root=str(root))
        opened = [HostChoice("/images/app.tar", "opened this session"), HostChoice("tcp://127.0.0.1:2375", "x")]
        choices = catalog.choices(opened)
    finally:
        for listener in sockets:
            listener.close()
    assert [(choice.address, choice.origin) for choice in choices] == [
        ("tcp://127.0.0.1:2375", "DOCKER_HOST"),
        ("ssh://someone@far.example", "context far"),
        (f"unix://{root}/var/run/docker.sock", "Docker socket"),
        (f"unix://{runtime}/podman/podman.sock", "rootless Podman socket"),
        ("/images/app.tar", "opened this session"),
    ]


async def test_a_probe_names_the_engine_or_says_why_there_is_no_answer(
    docker_host: str, short_tmp: Path, no_contexts: Path
) -> None:
    catalog = HostCatalog({})
    answering = await catalog.probe(HostChoice(docker_host, "test"))
    assert answering.reachable
    assert (answering.engine, answering.api_version) == ("Docker", "1.41")
    assert answering.engine_version
    silent = await catalog.probe(HostChoice(f"unix://{short_tmp}/nothing.sock", "test"))
    assert not silent.reachable
    assert silent.problem


def _dockerscope_threads() -> set[threading.Thread]:
    """Every thread but the main one and the event loop's executor (`asyncio_N`, where Textual runs
    thread workers: a bounded pool kept for the next one, whoever asks)."""
    return {
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread() and not thread.name.startswith("asyncio_")
    }


@pytest.fixture
def second_address(docker_host: str, runtime_dir: Path) -> Iterator[str]:
    """The private daemon under a second address: a rootless-Docker-like socket that links to it."""
    link = runtime_dir / "docker.sock"
    link.symlink_to(docker_host.removeprefix("unix://"))
    yield f"unix://{link}"


def _hosts_table(app: DockerscopeApp) -> DataTable[object]:
    return app.screen.query_one("#hosts-table", DataTable)


def _cell(app: DockerscopeApp, row: int, column: str) -> str:
    return str(_hosts_table(app).get_cell(str(row), column))


async def test_enter_in_the_host_list_switches_hosts_and_leaves_no_thread_of_the_old_one(
    docker_host: str, short_tmp: Path, second_address: str, no_contexts: Path, api: object
) -> None:
    # The runtime directory is `root` + /run: the second address is <short_tmp>/run/docker.sock.
    catalog = HostCatalog({"DOCKER_HOST": docker_host, "XDG_RUNTIME_DIR": "/run"}, root=str(short_tmp))
    service = DockerService(Connection(docker_host, "DOCKER_HOST", {"base_url": docker_host}))
    app = create_app(service, interval=3600, hosts=catalog)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until_live(pilot, app)
        await highlight_image(pilot, app, APP_IMAGE)
        await pilot.pause(0.5)
        settled = len(_dockerscope_threads())

        await pilot.press("H")
        await wait_until(pilot, lambda: isinstance(app.screen, HostListScreen))
        await wait_until(pilot, lambda: "probing" not in _cell(app, 0, "state") + _cell(app, 1, "state"))
        assert "Docker" in _cell(app, 0, "engine") and "answers" in _cell(app, 0, "state")
        assert "Docker" in _cell(app, 1, "engine") and "rootless Docker socket" in _cell(app, 1, "origin")
        assert "●" in _cell(app, 0, "current")

        for address, row in ((second_address, 1), (docker_host, 0), (second_address, 1)):
            explorer = app.explorer
            if not isinstance(app.screen, HostListScreen):
                await pilot.press("H")
                await wait_until(pilot, lambda: isinstance(app.screen, HostListScreen))
            _hosts_table(app).move_cursor(row=row)
            await pilot.press("enter")
            await wait_until(pilot, lambda old=explorer: app.explorer is not old and app.screen is app.explorer)
            await wait_until_live(pilot, app)
            assert address in status_text(app)
            assert app.source.host == address
            # The views start over on the new host: the first image is highlighted, not the old one.
            await wait_until(pilot, lambda: len(shown_names(app)) > 0)
            assert {APP_IMAGE, BASE_IMAGE} <= set(shown_names(app))
            assert len(app.screen_stack) == 2

        await pilot.pause(0.5)
        await wait_until(pilot, lambda: len(_dockerscope_threads()) <= settled, timeout=15)
        assert explorer not in app.screen_stack


async def test_the_palette_offers_the_host_list(docker_host: str, no_contexts: Path, api: object) -> None:
    catalog = HostCatalog({"DOCKER_HOST": docker_host}, root="/nonexistent")
    service = DockerService(Connection(docker_host, "DOCKER_HOST", {"base_url": docker_host}))
    app = create_app(service, interval=3600, hosts=catalog)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until_live(pilot, app)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        for key in "switch host":
            await pilot.press("space" if key == " " else key)
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, HostListScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.explorer)
        assert app.source is service


def test_no_socket_anywhere_lists_nothing_but_what_is_set(short_tmp: Path, no_contexts: Path) -> None:
    assert HostCatalog({"XDG_RUNTIME_DIR": str(short_tmp)}, root=str(short_tmp)).choices() == []


async def test_the_demo_is_a_host_the_list_can_open_again(no_contexts: Path) -> None:
    catalog = HostCatalog({}, root="/nonexistent")
    demo = HostChoice("dockerscope demo", "demo")
    probe = await catalog.probe(demo)
    assert probe.reachable and probe.engine == "Docker"
    source = catalog.open(demo)
    try:
        assert (await source.daemon_info()).demo
        assert len((await source.snapshot()).images) > 0
    finally:
        source.close()


async def test_an_archive_opened_this_session_is_offered_again_after_switching_away(
    docker_host: str, short_tmp: Path, no_contexts: Path, api: object
) -> None:
    base = layer({"etc/os-release": b"ID=test\n"})
    saved = write_tar(short_tmp / "saved.tar", docker_save([(["archived/app:1"], [base], [step("ADD base")])]))
    catalog = HostCatalog({"DOCKER_HOST": docker_host}, root="/nonexistent")
    app = create_app(open_archive(str(saved)), interval=3600, hosts=catalog)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: shown_names(app) == ["archived/app:1"])
        await pilot.press("H")
        await wait_until(pilot, lambda: isinstance(app.screen, HostListScreen))
        # DOCKER_HOST first, then the archive (opened this session), probed without a daemon.
        await wait_until(pilot, lambda: "probing" not in _cell(app, 1, "state"))
        assert str(saved) in _cell(app, 1, "host") and "archive" in _cell(app, 1, "engine")
        assert "●" in _cell(app, 1, "current")
        await pilot.press("up", "enter")
        await wait_until(pilot, lambda: app.source.host == docker_host and APP_IMAGE in shown_names(app))
        await pilot.press("H")
        await wait_until(pilot, lambda: isinstance(app.screen, HostListScreen))
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: app.screen is app.explorer and shown_names(app) == ["archived/app:1"])
        assert app.source.host == str(saved)


async def test_from_the_no_daemon_screen_h_reaches_a_host_that_answers(
    docker_host: str, short_tmp: Path, no_contexts: Path, api: object
) -> None:
    dead = f"unix://{short_tmp}/dead.sock"
    catalog = HostCatalog({"DOCKER_HOST": docker_host}, root="/nonexistent")
    app = create_app(DockerService(Connection(dead, "--host", {"base_url": dead})), interval=3600, hosts=catalog)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ConnectionScreen))
        await pilot.press("H")
        await wait_until(pilot, lambda: isinstance(app.screen, HostListScreen))
        await wait_until(pilot, lambda: "answers" in _cell(app, 0, "state") and "probing" not in _cell(app, 1, "state"))
        assert dead in _cell(app, 1, "host") and "●" in _cell(app, 1, "current")
        await pilot.press("up", "enter")
        await wait_until_live(pilot, app)
        assert app.screen is app.explorer and len(app.screen_stack) == 2
        assert APP_IMAGE in shown_names(app) and docker_host in status_text(app)


async def test_when_the_daemon_answers_under_an_open_host_list_the_explorer_shows(
    docker_host: str, short_tmp: Path, no_contexts: Path, api: object
) -> None:
    """The connection screen goes with whatever was opened over it (here the host list): the
    explorer shows, and nothing is left on top of it."""
    proxy = SocketProxy(short_tmp / "late.sock", docker_host.removeprefix("unix://"))
    late = f"unix://{proxy.path}"
    app = create_app(
        DockerService(Connection(late, "--host", {"base_url": late})),
        interval=3600,
        hosts=HostCatalog({}, root="/nonexistent"),
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ConnectionScreen))
        await pilot.press("H")
        await wait_until(pilot, lambda: isinstance(app.screen, HostListScreen))
        await proxy.start()
        try:
            await wait_until(pilot, lambda: app.screen is app.explorer and APP_IMAGE in shown_names(app), timeout=15)
            assert len(app.screen_stack) == 2
        finally:
            await proxy.stop()


@pytest.mark.parametrize(
    "meta",
    ["{not json", '{"Name": "x", "Metadata": {}, "Endpoints": 5}'],
    ids=["not JSON", "endpoints not a mapping"],
)
def test_a_broken_context_file_costs_the_contexts_not_the_list(short_tmp: Path, no_contexts: Path, meta: str) -> None:
    """docker-py reads all contexts or none: one unreadable file leaves DOCKER_HOST and the sockets."""
    _add_context(no_contexts, "fine", "tcp://127.0.0.1:9")
    broken = no_contexts / "contexts" / "meta" / hashlib.sha256(b"x").hexdigest()
    broken.mkdir(parents=True)
    (broken / "meta.json").write_text(meta)
    choices = HostCatalog({"DOCKER_HOST": "tcp://127.0.0.1:2375"}, root=str(short_tmp)).choices()
    assert [choice.address for choice in choices] == ["tcp://127.0.0.1:2375"]
