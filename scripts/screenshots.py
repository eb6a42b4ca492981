"""Write SVG screenshots of dockerscope, running against the daemon DOCKER_HOST names (the fixture
images of scripts/build-fixtures.sh), into screenshots/.

Usage: python scripts/screenshots.py [OUT_DIR]      (scripts/screenshots.sh does the whole job)
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot

from dockerscope.service import Connection, DockerService, resolve_connection
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.connection_screen import ConnectionScreen
from dockerscope.ui.image_list import ImageList
from dockerscope.ui.inspect_tree import InspectTree
from dockerscope.ui.layer_table import LayerTable

SIZE = (150, 44)
APP_IMAGE = "dockerscope-test/app:1"

Scene = Callable[[Pilot[None], DockerscopeApp], Awaitable[None]]


async def settle(pilot: Pilot[None], ready: Callable[[], bool], timeout: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not ready():
        if loop.time() > deadline:
            raise SystemExit("screenshots: the app did not reach the expected state")
        await pilot.pause(0.05)
    await pilot.pause(0.2)


async def show_app_image(pilot: Pilot[None], app: DockerscopeApp) -> None:
    images = app.explorer.query_one(ImageList)
    await settle(pilot, lambda: APP_IMAGE in [image.name for image in images.visible_items])
    target = [image.name for image in images.visible_items].index(APP_IMAGE)
    while images.cursor_row != target:
        await pilot.press("down" if images.cursor_row < target else "up")
    tree = app.explorer.query_one(InspectTree)
    await settle(pilot, lambda: tree.root.label.plain == APP_IMAGE and app.explorer.query_one(LayerTable).row_count)


async def explorer(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await show_app_image(pilot, app)


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


async def no_daemon(pilot: Pilot[None], app: DockerscopeApp) -> None:
    await settle(pilot, lambda: isinstance(app.screen, ConnectionScreen) and bool(app.screen.query("Static")))


SCENES: dict[str, tuple[Scene, bool]] = {
    "explorer": (explorer, True),
    "inspect-config": (inspect_config, True),
    "hostile-labels-in-layers": (hostile_layers, True),
    "filter": (filtered, True),
    "help": (help_screen, True),
    "no-daemon": (no_daemon, False),
}


async def take(name: str, scene: Scene, real_daemon: bool, out: Path) -> None:
    if real_daemon:
        connection = resolve_connection()
    else:
        host = "unix:///var/run/docker-not-running.sock"
        connection = Connection(host=host, source="screenshot", client_kwargs={"base_url": host})
    app = create_app(DockerService(connection), interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await scene(pilot, app)
        app.save_screenshot(filename=f"{name}.svg", path=str(out))
    print(f"wrote {out / name}.svg")


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (scene, real_daemon) in SCENES.items():
        await take(name, scene, real_daemon, out)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots")))
