"""Helpers for driving the app with Pilot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets import Static

from dockerscope.ui import DockerscopeApp
from dockerscope.ui.container_list import ContainerList
from dockerscope.ui.image_list import ImageList
from dockerscope.ui.inspect_tree import InspectTree
from dockerscope.ui.layer_table import LayerTable
from dockerscope.ui.object_list import ObjectList

SIZE = (150, 45)


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {condition.__doc__ or condition}")
        await pilot.pause(0.02)
        await asyncio.sleep(0)


def image_list(app: DockerscopeApp) -> ImageList:
    return app.explorer.query_one(ImageList)


def inspect_tree(app: DockerscopeApp) -> InspectTree:
    return app.explorer.query_one(InspectTree)


def layer_table(app: DockerscopeApp) -> LayerTable:
    return app.explorer.query_one(LayerTable)


def status_text(app: DockerscopeApp) -> str:
    return app.explorer.query_one("#status", Static).render().plain


async def wait_until_live(pilot: Pilot[None], app: DockerscopeApp) -> None:
    """Until the status line says the event stream is followed (it opens beside the first poll)."""
    await wait_until(pilot, lambda: "● live" in status_text(app))


def shown_names(app: DockerscopeApp) -> list[str]:
    return [image.name for image in image_list(app).visible_items]


def tree_title(app: DockerscopeApp) -> str:
    return inspect_tree(app).root.label.plain


async def _highlight(
    pilot: Pilot[None],
    app: DockerscopeApp,
    pane_key: str,
    names: Callable[[], list[str]],
    name: str,
    timeout: float = 10.0,
) -> None:
    """Focus a list with its number key, move its cursor onto `name` with the arrow keys, and
    wait (up to `timeout` seconds) for the details to arrive."""
    await wait_until(pilot, lambda: name in names())
    await pilot.press(pane_key)
    object_list = app.focused
    assert isinstance(object_list, ObjectList)
    # Where it stands is asked again at every step: tests on other workers add images meanwhile.
    while (target := names().index(name)) != object_list.cursor_row:
        await pilot.press("down" if object_list.cursor_row < target else "up")
    await wait_until(pilot, lambda: tree_title(app) == name and layer_table(app).row_count > 0, timeout=timeout)


async def highlight_image(pilot: Pilot[None], app: DockerscopeApp, name: str, timeout: float = 10.0) -> None:
    await _highlight(pilot, app, "1", lambda: shown_names(app), name, timeout)


def container_list(app: DockerscopeApp) -> ContainerList:
    return app.explorer.query_one(ContainerList)


def shown_containers(app: DockerscopeApp) -> list[str]:
    return [container.name for container in container_list(app).visible_items]


async def highlight_container(pilot: Pilot[None], app: DockerscopeApp, name: str) -> None:
    await _highlight(pilot, app, "4", lambda: shown_containers(app), name)


async def highlight_image_id(pilot: Pilot[None], app: DockerscopeApp, image_id: str) -> None:
    """Focus the image list and move its cursor onto the image with this id (a dangling image
    has no name to find it by)."""
    images = image_list(app)
    await wait_until(pilot, lambda: any(image.id == image_id for image in images.visible_items))
    await pilot.press("1")
    while (
        target := next(index for index, image in enumerate(images.visible_items) if image.id == image_id)
    ) != images.cursor_row:
        await pilot.press("down" if images.cursor_row < target else "up")
