"""Write SVG screenshots of dockerscope, running against the daemon DOCKER_HOST names (the fixture
images of scripts/build-fixtures.sh), into screenshots/; the Podman scene runs against the Podman
service DOCKERSCOPE_PODMAN_HOST names (scripts/podman-private.sh, scripts/build-podman-fixtures.sh).

Usage: python scripts/screenshots.py [OUT_DIR [SCENE ...]]      (scripts/screenshots.sh does the whole job)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from dockerscope.service import (
    Connection,
    DockerService,
    HostCatalog,
    ImageSource,
    open_archive,
    resolve_connection,
)
from dockerscope.service.demo import demo_source
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.compare_screen import CompareScreen
from dockerscope.ui.connection_screen import ConnectionScreen
from dockerscope.ui.container_list import ContainerList
from dockerscope.ui.extract_screen import ExtractScreen
from dockerscope.ui.file_tree import FileTree
from dockerscope.ui.file_view_screen import ContentView, FileViewScreen
from dockerscope.ui.host_list_screen import HostListScreen
from dockerscope.ui.image_list import ImageList
from dockerscope.ui.inspect_tree import InspectTree
from dockerscope.ui.layer_contents_screen import LayerContentsScreen
from dockerscope.ui.layer_table import LayerTable
from dockerscope.ui.object_list import ObjectList

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from socket_proxy import SocketProxy  # the tests' proxy: a daemon the scene can cut

SIZE = (150, 44)
APP_IMAGE = "dockerscope-test/app:1"
CHAIN_IMAGE = "dockerscope-test/chain-c:1"
CHANGES_CONTAINER = "dockerscope-test-changes"
WASTE_IMAGE = "dockerscope-test/waste:1"
PODMAN_IMAGE = "localhost/dockerscope-test/podman-built:1"  # Podman keeps the registry part

Scene = Callable[[Pilot[None], DockerscopeApp], Awaitable[None]]


async def settle(pilot: Pilot[None], ready: Callable[[], bool], timeout: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not ready():
        if loop.time() > deadline:
            raise SystemExit("screenshots: the app did not reach the expected state")
        await pilot.pause(0.05)
    await pilot.pause(0.2)


async def highlight(pilot: Pilot[None], object_list: ObjectList[Any], pane_key: str, name: str) -> None:
    """Focus a list and move its cursor onto the object called `name`, by keys."""

    def names() -> list[str]:
        return [item.name for item in object_list.visible_items]

    await settle(pilot, lambda: name in names())
    await pilot.press(pane_key)
    target = names().index(name)
    while object_list.cursor_row != target:
        await pilot.press("down" if object_list.cursor_row < target else "up")


async def show_app_image(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await highlight(pilot, app.explorer.query_one(ImageList), "1", APP_IMAGE)
    tree = app.explorer.query_one(InspectTree)
    await settle(pilot, lambda: tree.root.label.plain == APP_IMAGE and app.explorer.query_one(LayerTable).row_count)


async def explorer(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await show_app_image(pilot, app)
    await settle(pilot, lambda: "unique" in str(app.explorer.query_one("#layer-summary", Static).render()))


async def show_container(pilot: Pilot[None], app: DockerscopeApp, name: str) -> None:
    await highlight(pilot, app.explorer.query_one(ContainerList), "4", name)
    summary = app.explorer.query_one("#layer-summary", Static)
    await settle(pilot, lambda: "writable layer" in str(summary.render()) and "unique" in str(summary.render()))


async def container(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await show_container(pilot, app, CHANGES_CONTAINER)


async def contents_shown(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await settle(
        pilot, lambda: isinstance(app.screen, LayerContentsScreen) and app.screen.query_one(FileTree).root.children
    )


async def container_changes(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await show_container(pilot, app, CHANGES_CONTAINER)
    await pilot.press("3", "enter")
    await contents_shown(pilot, app)


async def layer_contents(pilot: Pilot[None], app: DockerscopeApp, *keys: str) -> None:
    await highlight(pilot, app.explorer.query_one(ImageList), "1", WASTE_IMAGE)
    table = app.explorer.query_one(LayerTable)
    await settle(
        pilot,
        lambda: table.row_count > 0 and "unique" in str(app.explorer.query_one("#layer-summary", Static).render()),
    )
    await pilot.press("3")
    while "version-two" not in str(table.get_row_at(table.cursor_row)[-1]):
        await pilot.press("j")
    await pilot.press("enter")
    await contents_shown(pilot, app)
    await pilot.press(*keys)
    await pilot.pause(0.3)


async def layer_changes(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await layer_contents(pilot, app)


async def layer_filesystem(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await layer_contents(pilot, app, "a", "s")


async def extract_dialog(pilot: Pilot[None], app: DockerscopeApp) -> None:
    """`x` on /data in the layer's changes: the destination asked for."""
    await layer_contents(pilot, app)
    tree = app.screen.query_one(FileTree)
    while tree.cursor_node is None or tree.cursor_node.data is None or tree.cursor_node.data.path != "data":
        await pilot.press("j")
    await pilot.press("x")
    await settle(
        pilot,
        lambda: (
            isinstance(app.screen, ExtractScreen)
            and "file" in str(app.screen.query_one("#extract-what", Static).render())
        ),
    )


async def file_view(pilot: Pilot[None], app: DockerscopeApp) -> None:
    """The filesystem as of the waste image's layer 4, and Enter on a symlink: the file it leads to."""
    await layer_contents(pilot, app, "a")
    tree = app.screen.query_one(FileTree)
    for _ in range(100):
        node = tree.cursor_node
        data = node.data if node is not None else None
        if data is not None and data.path == "data/config.symlink":
            break
        bin_open = node is not None and node.is_expanded and data is not None and data.path == "bin"
        await pilot.press("space" if bin_open else "j")  # close bin/ and its 400 links
    await pilot.press("enter")
    await settle(pilot, lambda: isinstance(app.screen, FileViewScreen) and app.screen.query_one(ContentView).display)


async def base_image(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await highlight(pilot, app.explorer.query_one(ImageList), "1", CHAIN_IMAGE)
    await settle(pilot, lambda: "base: " in str(app.explorer.query_one("#layer-summary", Static).render()))


async def inspect_config(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await show_app_image(pilot, app)
    tree = app.explorer.query_one(InspectTree)
    await pilot.press("2")
    config = next(node for node in tree.root.children if node.label.plain.startswith("Config "))
    while tree.cursor_node is not config:
        await pilot.press("j")
    await pilot.press("enter")
    await settle(pilot, lambda: len(config.children) > 0)
    labels = next(node for node in config.children if node.label.plain.startswith("Labels "))
    while tree.cursor_node is not labels:
        await pilot.press("j")
    await pilot.press("enter")
    await settle(pilot, lambda: len(labels.children) > 0)
    await pilot.press(*"j" * len(labels.children))


async def hostile_layers(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await show_app_image(pilot, app)
    table = app.explorer.query_one(LayerTable)
    await pilot.press("3")
    while table.cursor_row < table.row_count - 1:
        await pilot.press("j")
    await pilot.pause(0.2)


async def filtered(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await show_app_image(pilot, app)
    await pilot.press("slash", *"test/t")
    await pilot.pause(0.3)


async def help_screen(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await show_app_image(pilot, app)
    await pilot.press("question_mark")
    await pilot.pause(0.3)


async def demo(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await highlight(pilot, app.explorer.query_one(ContainerList), "4", "web")
    await highlight(pilot, app.explorer.query_one(ImageList), "1", "demo/web:1")
    await settle(pilot, lambda: "unique" in str(app.explorer.query_one("#layer-summary", Static).render()))


async def podman(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await highlight(pilot, app.explorer.query_one(ImageList), "1", PODMAN_IMAGE)
    await settle(pilot, lambda: "base: " in str(app.explorer.query_one("#layer-summary", Static).render()))


async def no_daemon(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await settle(pilot, lambda: isinstance(app.screen, ConnectionScreen) and bool(app.screen.query("Static")))


# How a scene reaches the daemon: directly, not at all, through a proxy cut once the scene is set,
# not at all but with the packaged demo, or the Podman service; or an archive, no daemon in between.
DAEMON, NO_DAEMON, DAEMON_LOST, DEMO, PODMAN = "daemon", "no daemon", "daemon lost", "demo", "podman"
# The app on a `docker save` of these fixture images.
ARCHIVE = "archive"
ARCHIVE_IMAGES = (APP_IMAGE, "dockerscope-test/base:1", CHAIN_IMAGE, WASTE_IMAGE)


def save_archive() -> Path:
    """A `docker save` of ARCHIVE_IMAGES from the daemon DOCKER_HOST names, at a stable path (the
    status line shows it)."""
    path = Path(tempfile.gettempdir(), "dockerscope-fixtures.tar")
    subprocess.run(["docker", "save", "-o", str(path), *ARCHIVE_IMAGES], check=True)
    return path


async def archive_session(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await explorer(pilot, app)


def host_catalog() -> HostCatalog:
    """What `H` lists in the screenshots: DOCKER_HOST, a context whose daemon refuses (port 9 on
    loopback), and the Podman service as a rootless Podman socket would be found."""
    scratch = Path(tempfile.mkdtemp(prefix="ds-hosts-"))
    config = scratch / "docker-config"
    meta = config / "contexts" / "meta" / hashlib.sha256(b"staging").hexdigest()
    meta.mkdir(parents=True)
    (config / "config.json").write_text("{}")
    endpoint = {"Host": "tcp://127.0.0.1:9", "SkipTLSVerify": False}
    (meta / "meta.json").write_text(json.dumps({"Name": "staging", "Metadata": {}, "Endpoints": {"docker": endpoint}}))
    os.environ["DOCKER_CONFIG"] = str(config)
    podman = os.environ.get("DOCKERSCOPE_PODMAN_HOST", "")
    if podman:
        (scratch / "podman").mkdir()
        (scratch / "podman" / "podman.sock").symlink_to(podman.removeprefix("unix://"))
    environment = {"DOCKER_HOST": resolve_connection().host, "XDG_RUNTIME_DIR": str(scratch)}
    return HostCatalog(environment, root=str(scratch / "no-root"))


async def host_list(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await show_app_image(pilot, app)
    await pilot.press("H")
    await settle(pilot, lambda: isinstance(app.screen, HostListScreen))
    table = app.screen.query_one(DataTable)
    await settle(
        pilot,
        lambda: all("probing" not in str(table.get_cell_at(Coordinate(row, 4))) for row in range(table.row_count)),
    )


async def comparison(pilot: Pilot[None], app: DockerscopeApp) -> None:
    """The app image (marked with Space) compared with `=` to an image of the chain on the same base."""
    await show_app_image(pilot, app)
    await pilot.press("space")
    await highlight(pilot, app.explorer.query_one(ImageList), "1", CHAIN_IMAGE)
    await pilot.press("equals_sign")
    await settle(pilot, lambda: isinstance(app.screen, CompareScreen))
    summary = app.screen.query_one("#layers-summary", Static)
    await settle(pilot, lambda: "shared base: dockerscope-test/base:1" in str(summary.render()))


SCENES: dict[str, tuple[Scene, str]] = {
    "explorer": (explorer, DAEMON),
    "container": (container, DAEMON),
    "container-changes": (container_changes, DAEMON),
    "layer-changes": (layer_changes, DAEMON),
    "layer-filesystem": (layer_filesystem, DAEMON),
    "extract": (extract_dialog, DAEMON),
    "file-view": (file_view, DAEMON),
    "base-image": (base_image, DAEMON),
    "inspect-config": (inspect_config, DAEMON),
    "hostile-labels-in-layers": (hostile_layers, DAEMON),
    "filter": (filtered, DAEMON),
    "help": (help_screen, DAEMON),
    "no-daemon": (no_daemon, NO_DAEMON),
    "daemon-lost": (explorer, DAEMON_LOST),
    "demo": (demo, DEMO),
    "podman": (podman, PODMAN),
    "archive": (archive_session, ARCHIVE),
    "hosts": (host_list, DAEMON),
    "compare": (comparison, DAEMON),
}


async def take(name: str, scene: Scene, mode: str, out: Path) -> None:
    proxy: SocketProxy | None = None
    if mode == NO_DAEMON:
        host = "unix:///var/run/docker-not-running.sock"
        connection = Connection(host=host, source="--host", client_kwargs={"base_url": host})
    elif mode == DAEMON_LOST:
        daemon = resolve_connection().host
        proxy = SocketProxy(Path(tempfile.mkdtemp(prefix="ds-")) / "docker.sock", daemon.removeprefix("unix://"))
        await proxy.start()
        host = f"unix://{proxy.path}"
        connection = Connection(host=host, source="screenshot", client_kwargs={"base_url": host})
    elif mode == PODMAN:
        host = os.environ.get("DOCKERSCOPE_PODMAN_HOST") or sys.exit("screenshots: DOCKERSCOPE_PODMAN_HOST is not set")
        connection = Connection(host=host, source="screenshot", client_kwargs={"base_url": host})
    else:
        connection = resolve_connection()
    source: ImageSource
    if mode == DEMO:
        source = demo_source()
    elif mode == ARCHIVE:
        source = open_archive(str(save_archive()))
    else:
        source = DockerService(connection)
    app = create_app(source, interval=60, demo=demo_source, hosts=host_catalog() if name == "hosts" else None)
    async with app.run_test(size=SIZE) as pilot:
        if mode in (DAEMON, DAEMON_LOST, PODMAN):
            await settle(pilot, lambda: app.watcher.live)
        await scene(pilot, app)
        if proxy is not None:
            await proxy.stop()
            await settle(pilot, lambda: app.explorer.has_class("stale"))
            await pilot.pause(0.3)
        app.save_screenshot(filename=f"{name}.svg", path=str(out))
    print(f"wrote {out / name}.svg")


async def main(out: Path, names: list[str]) -> None:
    """Take the scenes called `names`, every scene when none is named."""
    out.mkdir(parents=True, exist_ok=True)
    for name, (scene, mode) in SCENES.items():
        if not names or name in names:
            await take(name, scene, mode, out)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots"), sys.argv[2:]))
