"""dockerscope never sends a daemon anything but GET and HEAD, checked twice: in the source (every
use of a docker-py client is on a fixed list of read-only calls) and on the wire (a tour of every
screen and key, and `dockerscope analyze`, through a proxy that refuses any other method)."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import pkgutil
import re
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import docker
import pytest
import requests
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import Static

import dockerscope
import dockerscope.ui
from apphelpers import (
    SIZE,
    highlight_container,
    highlight_image,
    highlight_image_id,
    image_list,
    layer_table,
    shown_names,
    wait_until,
    wait_until_live,
)
from conftest import APP_IMAGE, CHANGES_CONTAINER, REBUILT_IMAGE, TOOL_IMAGE, WASTE_IMAGE
from dockerscope.service import Connection, DockerService, HostCatalog
from dockerscope.service.demo import demo_source
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.changes_screen import ChangesScreen
from dockerscope.ui.compare_screen import CompareScreen
from dockerscope.ui.connection_screen import ConnectionScreen
from dockerscope.ui.container_list import ContainerList
from dockerscope.ui.diff_lines import DiffLines
from dockerscope.ui.extract_screen import ExtractScreen
from dockerscope.ui.file_diff_screen import FileDiffScreen
from dockerscope.ui.file_tree import FileTree
from dockerscope.ui.file_view_screen import ContentView, FileViewScreen
from dockerscope.ui.help_screen import HelpScreen
from dockerscope.ui.host_list_screen import HostListScreen
from dockerscope.ui.inspect_tree import InspectTree
from dockerscope.ui.layer_contents_screen import LayerContentsScreen
from dockerscope.ui.layer_info_screen import LayerInfoScreen
from images import first_build_of_rebuilt
from method_proxy import MethodProxy
from source_scan import dotted_name

PACKAGE_DIR = Path(dockerscope.__file__).parent

# docker-py APIClient calls that send only GET (or nothing), and the client attributes that are
# plain values. Anything else used on a client is reported with its file and line.
READ_ONLY_CALLS = frozenset(
    {
        "close",  # no request
        "containers",  # GET /containers/json
        "df",  # GET /system/df
        "diff",  # GET /containers/{id}/changes
        "events",  # GET /events
        "get_adapter",  # no request: requests' adapter for the daemon, whose pools the export watchdog watches
        "get_archive",  # GET /containers/{id}/archive
        "get_image",  # GET /images/{name}/get
        "history",  # GET /images/{name}/history
        "images",  # GET /images/json
        "info",  # GET /info
        "inspect_container",  # GET /containers/{id}/json
        "inspect_image",  # GET /images/{name}/json
        "ping",  # GET /_ping
        "top",  # GET /containers/{id}/top
        "version",  # GET /version
    }
)
CLIENT_VALUES = frozenset({"api_version", "base_url", "hooks"})
# The calls the app is built on: the scan must find each, or it is not looking at the client.
CALLS_IN_USE = frozenset(
    {
        "containers",
        "diff",
        "events",
        "get_archive",
        "get_image",
        "history",
        "images",
        "inspect_container",
        "inspect_image",
        "version",
    }
)

# The transports: they open connections (a socket pair to an ssh process) and set a client up
# (mount the adapter, pin the CA, set the negotiated version), and send nothing of their own but
# the version negotiation's GET /version, as docker-py's constructor does: the
# requests they carry are the checked code's. They may import network modules and set these up.
TRANSPORT_MODULES = frozenset({"dockerscope/service/ssh_transport.py", "dockerscope/service/api_clients.py"})
CLIENT_SETUP = frozenset({"_custom_adapter", "_version", "merge_environment_settings", "mount", "verify"})

# Names a docker-py client goes by in this code base (`client`, `self._client`, `api`).
CLIENT_NAMES = frozenset({"client", "api", "api_client", "docker_client"})
CLIENT_TYPES = frozenset(
    {"APIClient", "docker.APIClient", "docker.api.APIClient", "DockerClient", "docker.DockerClient"}
)
# The high-level client: containers.run, images.remove… one attribute away.
HIGH_LEVEL = frozenset({"from_env", "DockerClient"})
# Modules that open connections or speak HTTP themselves.
NETWORK_MODULES = frozenset({"aiohttp", "http", "httpx", "requests", "socket", "urllib", "urllib3", "websocket"})
# Methods that send a request whatever object they are called on (a requests session, an
# http.client connection, docker-py's private helpers).
SENDING_METHODS = frozenset(
    {"_delete", "_post", "_post_json", "_put", "patch", "post", "putrequest", "request", "urlopen"}
)
# A docker-py method with a compound name (remove_image, put_archive, prune_images…) is a daemon
# call whatever it is called on: reported even on a client the scan does not know by its name.
# Taken from the installed docker-py, so a method it gains is covered too.
DOCKER_PY_COMPOUND_CALLS = (
    frozenset(
        name
        for name in set(dir(docker.APIClient)) - set(dir(requests.Session))
        if "_" in name and not name.startswith("_") and callable(getattr(docker.APIClient, name))
    )
    - READ_ONLY_CALLS
)


@dataclass(frozen=True)
class Use:
    where: str
    name: str


@dataclass
class Scan:
    client_uses: list[Use]
    problems: list[str]


def _is_client_type(annotation: ast.expr | None) -> bool:
    """`docker.APIClient`, `APIClient | None`, `Optional[APIClient]`; not `list[APIClient]`."""
    if annotation is None:
        return False
    text = ast.unparse(annotation).strip("'\"")
    text = re.sub(r"^Optional\[(.*)\]$", r"\1", text)
    parts = {part.strip() for part in text.split("|")} - {"None"}
    return bool(parts) and parts <= CLIENT_TYPES


class _ClientScan:
    """Which names and attributes hold a client in one module. A module-wide over-approximation:
    a name that holds a client anywhere is a client everywhere, which can only report more."""

    def __init__(self, tree: ast.Module) -> None:
        self.names = set(CLIENT_NAMES)
        self.attributes = set(CLIENT_NAMES)
        for node in ast.walk(tree):
            if isinstance(node, ast.arg) and _is_client_type(node.annotation):
                self.names.add(node.arg)
            elif isinstance(node, ast.AnnAssign) and _is_client_type(node.annotation):
                self._bind(node.target)
        bindings = [(target, value) for node in ast.walk(tree) for target, value in self._assignments(node)]
        # Aliases of aliases: each round binds at least one more target, so this ends.
        while unbound := [(t, v) for t, v in bindings if self.is_client(v) and not self.is_client(t)]:
            for target, _ in unbound:
                self._bind(target)

    @staticmethod
    def _assignments(node: ast.AST) -> Iterator[tuple[ast.expr, ast.expr]]:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                yield target, node.value
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            yield node.target, node.value
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            yield node.optional_vars, node.context_expr

    def _bind(self, target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.names.add(target.id)
        elif isinstance(target, ast.Attribute):
            self.attributes.add(target.attr.lstrip("_"))

    def is_client(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.names
        if isinstance(node, ast.Attribute):
            return node.attr.lstrip("_") in self.attributes
        if isinstance(node, ast.Subscript):  # self._clients[0]
            return dotted_name(node.value).rstrip("s").endswith("client")
        if isinstance(node, ast.Call):
            name = dotted_name(node.func)
            if name == "getattr" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                return str(node.args[1].value).lstrip("_") in self.attributes
            # docker.APIClient(...), self._new_client(), self._client()
            return name.lower().endswith("client") or self.is_client(node.func)
        return False


def scan(source: str, filename: str) -> Scan:
    tree = ast.parse(source, filename)
    clients = _ClientScan(tree)
    result = Scan([], [])
    network_aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in NETWORK_MODULES:
                    network_aliases.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            names = {alias.name for alias in node.names}
            if root in NETWORK_MODULES:
                result.problems.append(f"{filename}:{node.lineno}: imports from {node.module}")
            elif root == "docker" and (node.module in {"docker.client", "docker.models"} or names & HIGH_LEVEL):
                result.problems.append(f"{filename}:{node.lineno}: imports the high-level docker client")

    transport = filename in TRANSPORT_MODULES
    if transport:
        result.problems = [problem for problem in result.problems if ": imports from " not in problem]
        network_aliases.clear()
    allowed = READ_ONLY_CALLS | CLIENT_VALUES | (CLIENT_SETUP if transport else frozenset())
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Attribute) and clients.is_client(node.value):
            result.client_uses.append(Use(where, node.attr))
            if node.attr not in allowed:
                result.problems.append(f"{where}: client.{node.attr} is not a read-only docker-py call")
        if isinstance(node, (ast.Attribute, ast.Name)) and dotted_name(node).rsplit(".", 1)[-1] in HIGH_LEVEL:
            result.problems.append(f"{where}: {dotted_name(node)}: the high-level docker client")
        if not isinstance(node, ast.Call):
            continue
        name = dotted_name(node.func)
        if name.split(".")[0] in network_aliases:
            result.problems.append(f"{where}: {name}() talks to the network itself")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in SENDING_METHODS:
            result.problems.append(f"{where}: .{node.func.attr}() sends a request")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in DOCKER_PY_COMPOUND_CALLS:
            if not clients.is_client(node.func.value):  # else reported above as a client use
                result.problems.append(f"{where}: {name}() is a docker-py call that is not read-only")
        elif name in {"getattr", "setattr", "delattr"} and node.args and clients.is_client(node.args[0]):
            attribute = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(attribute, ast.Constant) and attribute.value in READ_ONLY_CALLS | CLIENT_VALUES):
                result.problems.append(f"{where}: {name}() on a client with a name not on the read-only list")
    return result


def scan_package() -> Scan:
    total = Scan([], [])
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        found = scan(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE_DIR.parent)))
        total.client_uses += found.client_uses
        total.problems += found.problems
    return total


def test_the_code_calls_only_read_only_docker_py_methods() -> None:
    found = scan_package()
    assert found.problems == []
    seen = {use.name for use in found.client_uses}
    assert seen >= CALLS_IN_USE, f"the scan no longer finds {sorted(CALLS_IN_USE - seen)}: is it blind?"
    assert len(found.client_uses) >= 20
    assert any(use.where.startswith("dockerscope/service/") for use in found.client_uses)


FORBIDDEN_SOURCE = """
import docker
import requests as r
from docker import from_env
from urllib.request import urlopen

def remove(client: docker.APIClient, image_id: str) -> None:
    client.remove_image(image_id)

class Service:
    def _new_client(self) -> docker.APIClient:
        return docker.APIClient()

    def work(self, engine: docker.APIClient | None) -> None:
        self._new_client().create_container("busybox")
        engine.put_archive("c", "/", b"")
        self._engine = docker.APIClient()
        self._engine.kill("c")
        other = self._engine
        other._post("/build")
        getattr(other, "prune_images")()
        r.Session().get("http://daemon")
        self.session.post("/containers/create")
        docker.from_env().containers.run("busybox")
        with docker.APIClient() as low:
            low.tag("a", "b")

def purge(handle) -> None:
    handle.prune_images()
"""
CLEAN_SOURCE = """
import docker

class Service:
    def __init__(self) -> None:
        self._clients: list[docker.APIClient] = []

    def _client(self) -> docker.APIClient:
        return docker.APIClient(version="auto")

    def read(self, cache: object) -> None:
        client = self._client()
        client.hooks["response"].append(print)
        self._clients.append(client)
        cache.put("k", client.inspect_image("a"))
        stream = self._client().events(decode=True)
        stream.close()
        getattr(client, "api_version")
"""


def test_the_scan_names_the_file_and_line_of_every_write_and_passes_reads() -> None:
    problems = scan(FORBIDDEN_SOURCE, "bad.py").problems
    lines = {int(problem.split(":")[1]) for problem in problems}
    assert lines == {4, 5, 8, 15, 16, 18, 20, 21, 22, 23, 24, 26, 29}, problems
    assert "bad.py:8: client.remove_image is not a read-only docker-py call" in problems
    clean = scan(CLEAN_SOURCE, "good.py")
    assert clean.problems == []
    assert {use.name for use in clean.client_uses} == {"hooks", "inspect_image", "events"}


# The tour, on the wire.


@pytest.fixture
def proxy(short_tmp: Path, docker_host: str, api: docker.APIClient) -> Iterator[MethodProxy]:
    with MethodProxy(short_tmp / "read-only.sock", docker_host) as method_proxy:
        yield method_proxy


@pytest.fixture
async def app(
    proxy: MethodProxy, short_tmp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[DockerscopeApp]:
    connection = Connection(host=proxy.url, source="test", client_kwargs={"base_url": proxy.url})
    # The host list finds the proxy twice: as DOCKER_HOST and as a rootless Docker socket linking to it.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-contexts"))
    (short_tmp / "run").mkdir()
    (short_tmp / "run" / "docker.sock").symlink_to(proxy.url.removeprefix("unix://"))
    hosts = HostCatalog({"DOCKER_HOST": proxy.url, "XDG_RUNTIME_DIR": "/run"}, root=str(short_tmp))
    yield create_app(DockerService(connection), interval=2, hosts=hosts)


def bound_keys() -> set[tuple[type, str]]:
    """Every (class, key) of every BINDINGS list in dockerscope.ui."""
    keys: set[tuple[type, str]] = set()
    for module_info in pkgutil.iter_modules(dockerscope.ui.__path__, "dockerscope.ui."):
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or "BINDINGS" not in cls.__dict__:
                continue
            for binding in cls.__dict__["BINDINGS"]:
                key = binding.key if isinstance(binding, Binding) else binding[0]
                keys.update((cls, part.strip()) for part in key.split(","))
    return keys


class Tour:
    """Presses keys and remembers which bindings each press could reach: those of the focused
    widget, its ancestors, the screen and the app."""

    def __init__(self, pilot: Pilot[None], app: DockerscopeApp) -> None:
        self.pilot = pilot
        self.app = app
        self.pressed: set[tuple[type, str]] = set()
        self.keys: list[str] = []

    async def press(self, *keys: str) -> None:
        for key in keys:
            nodes: list[object] = [self.app, self.app.screen]
            node = self.app.focused
            while node is not None:
                nodes.append(node)
                node = node.parent
            self.pressed.update((cls, key) for target in nodes for cls in type(target).__mro__)
            self.keys.append(key)
            await self.pilot.press(key)

    async def type_text(self, text: str) -> None:
        """Characters into a focused input: no binding is meant."""
        await self.pilot.press(*text)

    async def until(self, condition: Callable[[], bool]) -> None:
        try:
            await wait_until(self.pilot, condition)
        except AssertionError as error:
            focused = type(self.app.focused).__name__
            pressed = " ".join(self.keys[-8:])
            raise AssertionError(
                f"{error}; on {type(self.app.screen).__name__}, focus on {focused}, last keys: {pressed}"
            ) from None


def contents_shown(app: DockerscopeApp) -> bool:
    return isinstance(app.screen, LayerContentsScreen) and app.screen.query_one(FileTree).last_line > 0


async def _images(tour: Tour, app: DockerscopeApp) -> None:
    await highlight_image(tour.pilot, app, TOOL_IMAGE)
    await tour.press("1", "s", "d", "j", "k", "y", "z", "z")
    everything = shown_names(app)
    await tour.press("slash")
    await tour.type_text("waste")
    await tour.press("enter")
    await tour.until(lambda: shown_names(app) == [WASTE_IMAGE])
    await tour.press("slash", "escape")
    await tour.until(lambda: shown_names(app) == everything)
    await tour.press("r", "2", "3", "4", "1", "tab", "tab", "shift+tab", "shift+tab")
    for close in ("escape", "q", "question_mark"):
        await tour.press("question_mark")
        await tour.until(lambda: isinstance(app.screen, HelpScreen))
        await tour.press(close)
        await tour.until(lambda: app.screen is app.explorer)


async def _containers_of_an_image(tour: Tour, app: DockerscopeApp) -> None:
    await highlight_image(tour.pilot, app, TOOL_IMAGE)
    await tour.press("c")
    await tour.until(lambda: isinstance(app.focused, ContainerList))
    await tour.press("a", "s", "j", "k")
    await highlight_container(tour.pilot, app, CHANGES_CONTAINER)
    await tour.press("i")
    await tour.until(
        lambda: app.focused is image_list(app) and shown_names(app)[image_list(app).cursor_row] == APP_IMAGE
    )


async def _inspect_tree(tour: Tour, app: DockerscopeApp) -> None:
    await tour.press("2")
    assert isinstance(app.focused, InspectTree)
    await tour.press("j", "enter", "space", "k", "plus", "minus", "y", "Y")


async def _layer_contents(tour: Tour, app: DockerscopeApp) -> None:
    await highlight_image(tour.pilot, app, WASTE_IMAGE)
    await tour.press("3")
    table = layer_table(app)
    while "version-two" not in table.get_row_at(table.cursor_row)[-1].plain:
        await tour.press("j")
    await tour.press("k", "j", "y", "enter")
    await tour.until(lambda: contents_shown(app))
    assert isinstance(app.focused, FileTree)
    await _file_view(tour, app, app.focused, "data/keep/config")
    await tour.press("j", "k", "y", "a", "s", "slash")
    await tour.type_text("conf")
    await tour.press("enter", "slash", "escape", "left_square_bracket", "right_square_bracket", "w")
    await _extract(tour, app)
    await tour.press("escape")
    await tour.until(lambda: app.screen is app.explorer)
    for close in ("escape", "q", "enter"):
        await tour.press("i")
        await tour.until(lambda: isinstance(app.screen, LayerInfoScreen))
        await tour.press(close)
        await tour.until(lambda: app.screen is app.explorer)


async def _extract(tour: Tour, app: DockerscopeApp) -> None:
    """`x` and `Esc` back, then `x` again written to a temporary directory."""
    contents = app.screen
    await tour.press("x")
    await tour.until(lambda: isinstance(app.screen, ExtractScreen))
    await tour.press("escape")
    await tour.until(lambda: app.screen is contents)
    await tour.press("x")
    await tour.until(lambda: isinstance(app.screen, ExtractScreen))
    what = app.screen.query_one("#extract-what", Static)
    await tour.until(lambda: "file" in what.render().plain)
    with tempfile.TemporaryDirectory(prefix="ds-extract-") as where:
        await tour.type_text(os.path.join(where, "out"))
        await tour.press("enter")
        await tour.until(lambda: app.screen is contents)
        assert os.path.lexists(os.path.join(where, "out"))


async def _file_view(tour: Tour, app: DockerscopeApp, tree: FileTree, path: str) -> None:
    """Enter on a file of the tree, every key of the file view, and back."""
    while tree.cursor_node is None or tree.cursor_node.data is None or tree.cursor_node.data.path != path:
        await tour.press("j")
    await tour.press("enter")
    await tour.until(lambda: isinstance(app.screen, FileViewScreen) and app.screen.query_one(ContentView).display)
    await tour.press("j", "k", "G", "g", "h", "h", "escape")
    await tour.until(lambda: isinstance(app.screen, LayerContentsScreen))


async def _writable_layer(tour: Tour, app: DockerscopeApp) -> None:
    await highlight_container(tour.pilot, app, CHANGES_CONTAINER)
    table = layer_table(app)
    await tour.until(lambda: table.get_row_at(table.row_count - 1)[0].plain == "RW")
    await tour.press("3")
    while table.cursor_row < table.row_count - 1:
        await tour.press("j")
    await tour.press("enter")
    await tour.until(lambda: contents_shown(app))
    await tour.press("escape")
    await tour.until(lambda: app.screen is app.explorer)
    for close in ("escape", "q"):
        await tour.press("i")
        await tour.until(lambda: isinstance(app.screen, ChangesScreen))
        await tour.press(close)
        await tour.until(lambda: app.screen is app.explorer)


async def _compare(tour: Tour, app: DockerscopeApp, first_build: str) -> None:
    """Mark the rebuilt image's first build, compare it with the tagged one, every pane and key,
    and the diff of the file the two builds wrote differently."""
    await tour.press("1", "equals_sign")  # nothing marked yet: a notification
    if not image_list(app).show_dangling:  # hidden since the image tour
        await tour.press("d")
    await highlight_image_id(tour.pilot, app, first_build)
    await tour.press("space", "space", "space")
    await highlight_image(tour.pilot, app, REBUILT_IMAGE)
    await tour.press("equals_sign")
    await tour.until(lambda: isinstance(app.screen, CompareScreen))
    await tour.press("2", "1", "3")
    await tour.until(lambda: isinstance(app.focused, FileTree))
    await tour.press("s", "slash")
    await tour.type_text("round")
    await tour.press("enter", "enter")
    await tour.until(lambda: isinstance(app.screen, FileDiffScreen) and bool(app.screen.query_one(DiffLines).lines))
    await tour.press("escape")
    await tour.until(lambda: isinstance(app.screen, CompareScreen))
    await tour.press("escape")
    await tour.until(lambda: app.screen is app.explorer)


async def _host_list(tour: Tour, app: DockerscopeApp) -> None:
    """Every key of the host list; `Enter` last, on the second address, switches hosts."""
    for close in ("escape", "q", "H", "enter"):
        await tour.press("H")
        await tour.until(lambda: isinstance(app.screen, HostListScreen))
        await tour.press(close)
        await tour.until(lambda: app.screen is app.explorer)
    explorer = app.explorer
    await tour.press("H")
    await tour.until(lambda: isinstance(app.screen, HostListScreen))
    await tour.press("down", "enter")
    await tour.until(lambda: app.explorer is not explorer and app.screen is app.explorer)
    await wait_until_live(tour.pilot, app)


async def _no_daemon_screen() -> set[tuple[type, str]]:
    """The keys of the no-daemon screen, on an app whose daemon does not answer: `d` opens the
    packaged demo, which sends nothing anywhere."""
    host = "tcp://127.0.0.1:1"
    service = DockerService(Connection(host=host, source="test", client_kwargs={"base_url": host}))
    app = create_app(service, interval=2, demo=demo_source)
    async with app.run_test(size=SIZE) as pilot:
        tour = Tour(pilot, app)
        await tour.until(lambda: isinstance(app.screen, ConnectionScreen))
        await tour.press("d")
        await tour.until(lambda: app.screen is app.explorer and bool(shown_names(app)))
    return tour.pressed


async def test_a_tour_of_every_screen_and_key_sends_only_gets(
    app: DockerscopeApp, proxy: MethodProxy, api: docker.APIClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        tour = Tour(pilot, app)
        await wait_until_live(pilot, app)
        await _images(tour, app)
        await _containers_of_an_image(tour, app)
        await _inspect_tree(tour, app)
        await _layer_contents(tour, app)
        await _writable_layer(tour, app)
        await _compare(tour, app, first_build_of_rebuilt(api))
        await _host_list(tour, app)
        await tour.press("q")
        await tour.until(lambda: not app.is_running)
    pressed = tour.pressed | await _no_daemon_screen()
    missed = sorted(f"{cls.__name__}: {key}" for cls, key in bound_keys() - pressed)
    assert missed == [], "the tour skips these keys"
    assert proxy.refused == []
    paths = {re.sub(r"/(sha256:)?[0-9a-f]{12,}(?=/)", "/{id}", request.path) for request in proxy.requests}
    assert {
        "/version",
        "/images/json",
        "/containers/json",
        "/events",
        "/images/{id}/json",
        "/images/{id}/history",
        "/containers/{id}/json",
        "/containers/{id}/changes",
    } <= paths
    assert len(proxy.requests) >= 30


def run_analyze(proxy: MethodProxy, *arguments: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "dockerscope", "analyze", WASTE_IMAGE, "--json", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DOCKER_HOST": proxy.url},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_analyze_sends_only_gets_and_the_export_stream_arrives_whole(proxy: MethodProxy) -> None:
    default = run_analyze(proxy)  # overlay2 directories or the layer cache
    exported = run_analyze(proxy, "--source", "export", "--no-cache")
    assert proxy.refused == []
    assert any(re.fullmatch(r"/images/(sha256:)?[0-9a-f]{64}/get", request.path) for request in proxy.requests)
    assert exported["image"]["source"] == "export"  # type: ignore[index]
    assert exported["layers"] == default["layers"]


def test_extract_sends_only_gets(proxy: MethodProxy, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dockerscope", "extract", WASTE_IMAGE, "/data", "-o", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DOCKER_HOST": proxy.url},
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert proxy.refused == []
    assert (tmp_path / "data" / "keep" / "config").read_text() == "version-two\n"


def test_the_proxy_refuses_a_write_before_the_daemon_sees_it(proxy: MethodProxy, api: docker.APIClient) -> None:
    """Without this, a tour with no refusals could mean a proxy that lets everything through."""
    client = docker.APIClient(base_url=proxy.url, version="auto", timeout=10)
    try:
        with pytest.raises(docker.errors.APIError) as refused:
            client.tag(WASTE_IMAGE, "dockerscope-test/read-only-probe", "tmp")
        assert refused.value.status_code == 405
        assert client.inspect_image(WASTE_IMAGE)["Id"]
    finally:
        client.close()
    assert [(request.method, request.path) for request in proxy.refused] == [("POST", f"/images/{WASTE_IMAGE}/tag")]
    with pytest.raises(docker.errors.ImageNotFound):
        api.inspect_image("dockerscope-test/read-only-probe:tmp")


class _TinyDaemon(socketserver.StreamRequestHandler):
    """Answers HEAD and GET with five bytes, and `GET /upgrade` with 101, then echoes."""

    server: _TinyServer

    def handle(self) -> None:
        while line := self.rfile.readline():
            method, target, _ = line.decode().split(" ", 2)
            self.server.seen.append(method)
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            if target == "/upgrade":
                self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
                while data := self.request.recv(4096):
                    self.request.sendall(data)
                return
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + (b"" if method == "HEAD" else b"hello"))


class _TinyServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    seen: list[str]


def _read_answer(reader: BinaryIO, has_body: bool = True) -> tuple[str, bytes]:
    """The status line of the next answer and its Content-Length body (none after HEAD or 101)."""
    status = reader.readline().decode().strip()
    length = 0
    while (line := reader.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, reader.read(length) if has_body else b""


def test_the_proxy_frames_head_chunked_bodies_and_upgrades(short_tmp: Path) -> None:
    """What docker-py rarely sends, on one keep-alive connection: HEAD (a length, no body), a
    refused POST with a chunked body, then an upgrade piped both ways."""
    with _TinyServer(str(short_tmp / "tiny.sock"), _TinyDaemon) as tiny:
        tiny.seen = []
        threading.Thread(target=tiny.serve_forever, daemon=True).start()
        with MethodProxy(short_tmp / "proxy.sock", f"unix://{short_tmp / 'tiny.sock'}") as proxy:
            with socket.socket(socket.AF_UNIX) as connection:
                connection.settimeout(10)
                connection.connect(str(proxy.path))
                reader = connection.makefile("rb")
                connection.sendall(b"HEAD /thing HTTP/1.1\r\nHost: docker\r\n\r\n")
                assert _read_answer(reader, has_body=False) == ("HTTP/1.1 200 OK", b"")
                connection.sendall(
                    b"POST /thing HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n"
                )
                status, body = _read_answer(reader)
                assert status == "HTTP/1.1 405 Method Not Allowed"
                assert b"POST /thing refused" in body
                connection.sendall(b"GET /thing HTTP/1.1\r\nHost: docker\r\n\r\n")
                assert _read_answer(reader) == ("HTTP/1.1 200 OK", b"hello")
                connection.sendall(b"GET /upgrade HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n\r\n")
                assert _read_answer(reader, has_body=False)[0] == "HTTP/1.1 101 Switching Protocols"
                connection.sendall(b"raw bytes")
                assert reader.read(9) == b"raw bytes"
            assert [request.method for request in proxy.requests] == ["HEAD", "POST", "GET", "GET"]
            assert len({request.connection for request in proxy.requests}) == 1
        tiny.shutdown()
    assert tiny.seen == ["HEAD", "GET", "GET"]
