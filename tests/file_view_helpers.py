"""Pilot steps of the file view tests: move onto a file of a layer's contents and open it, and read
what the view shows (`open_layer` is the layer contents tests')."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Static

from apphelpers import wait_until
from dockerscope.ui import DockerscopeApp
from dockerscope.ui.file_tree import FileTree
from dockerscope.ui.file_view_screen import ContentView, FileViewScreen


def tree(app: DockerscopeApp) -> FileTree:
    return app.screen.query_one(FileTree)


async def open_file(pilot: Pilot[None], app: DockerscopeApp, path: str) -> FileViewScreen:
    """Move the tree's cursor onto `path` with j and Space (opening the directories on the way,
    closing the others) and press Enter; wait for the file view to show the contents."""
    file_tree = tree(app)
    await pilot.press("home")
    for _ in range(200):
        node = file_tree.cursor_node
        data = node.data if node is not None else None
        if data is not None and data.path == path:
            break
        on_the_way = data is not None and path.startswith(data.path + "/")
        if node is not None and node.allow_expand and on_the_way != node.is_expanded:
            await pilot.press("space")  # open the directories on the way, close the others
        else:
            await pilot.press("j")
    else:
        raise AssertionError(f"{path} is not in the tree")
    await pilot.press("enter")
    await wait_until(
        pilot, lambda: isinstance(app.screen, FileViewScreen) and app.screen.query_one(ContentView).display
    )
    await pilot.pause()
    assert isinstance(app.screen, FileViewScreen)
    return app.screen


def title(screen: FileViewScreen) -> str:
    return screen.query_one("#file-title", Static).render().plain


def shown(screen: FileViewScreen) -> list[str]:
    return [line.rstrip() for line in screen.query_one(ContentView).shown_lines() if line.strip()]
