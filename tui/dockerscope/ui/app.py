"""The Textual application: runs the watcher and routes what it learns to the screens.

`H` switches to another host without restarting: the old host's watcher, stream, threads and
screens go, and the app starts over on the new source as it did at launch.

Until the first snapshot, a failure shows the connection screen. Once data was shown, a failure
keeps it on screen, marked stale (the `stale` class on the explorer dims its panes; the status line
says since when), until fresh data arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType

from dockerscope.sanitize import sanitize
from dockerscope.service import DockerServiceError, HostCatalog, HostChoice, ImageSource, Watcher
from dockerscope.ui.container_list import ContainerList
from dockerscope.ui.explorer import ExplorerScreen
from dockerscope.ui.filter_input import FilterInput
from dockerscope.ui.image_list import ImageList
from dockerscope.ui.inspect_tree import InspectTree
from dockerscope.ui.layer_table import LayerTable
from dockerscope.ui.messages import WatchUpdated
from dockerscope.ui.object_list import ObjectList

if TYPE_CHECKING:
    from textual.screen import Screen

    from dockerscope.ui.connection_screen import ConnectionScreen


class DockerscopeApp(App[None]):
    TITLE = "dockerscope"
    CSS_PATH = "app.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("r", "refresh", "Refresh", id="app.refresh"),
        Binding("H", "hosts", "Hosts", id="app.hosts"),
        Binding("1", "focus_pane('images')", "Images", show=False, id="app.pane1"),
        Binding("2", "focus_pane('inspect')", "Inspect", show=False, id="app.pane2"),
        Binding("3", "focus_pane('layers')", "Layers", show=False, id="app.pane3"),
        Binding("4", "focus_pane('containers')", "Containers", show=False, id="app.pane4"),
        Binding("tab", "app.focus_next", "Next pane", show=False),
        Binding("shift+tab", "app.focus_previous", "Previous pane", show=False),
    ]

    def __init__(
        self,
        source: ImageSource,
        interval: float,
        hosts: HostCatalog | None = None,
        demo: Callable[[], ImageSource] | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.interval = interval
        # Opens the packaged demo, offered when the source does not answer.
        self.demo = demo
        self.watcher = Watcher(source, interval)
        self.explorer = ExplorerScreen(source)
        self._hosts = hosts
        # Hosts opened this session, so the host list offers them again (an archive is found nowhere else).
        self._opened = [HostChoice(source.host, "opened this session")]
        self._connection_screen: ConnectionScreen | None = None
        self._data_shown = False

    def on_mount(self) -> None:
        self.push_screen(self.explorer)
        self.run_worker(self._watch(self.watcher), group="watch", exclusive=True)

    async def _watch(self, watcher: Watcher) -> None:
        async for update in watcher.updates():
            self.post_message(WatchUpdated(update, watcher))

    def action_refresh(self) -> None:
        self.watcher.poll_now()

    def on_watch_updated(self, message: WatchUpdated) -> None:
        if not self.is_running or message.watcher is not self.watcher:
            return  # it arrived while the app shuts down, or is from a source the app switched away from
        update = message.update
        if update.error is not None:
            self._show_failure(update.error)
            return
        assert update.snapshot is not None
        if self._connection_screen is not None:
            # With what was opened over it (the host list, help): the explorer shows.
            connection_screen, self._connection_screen = self._connection_screen, None
            while connection_screen in self.screen_stack:
                self.pop_screen()
        self.explorer.show_snapshot(update.snapshot, live=update.live)
        self._data_shown = True
        self.explorer.remove_class("stale")

    def _show_failure(self, error: DockerServiceError) -> None:
        self.explorer.show_problem(error)
        if self._data_shown:
            self.explorer.add_class("stale")
        elif self._connection_screen is None:
            # Screens the first frame does not show load when first shown (tests/test_startup.py).
            from dockerscope.ui.connection_screen import ConnectionScreen

            self._connection_screen = ConnectionScreen(error, self.watcher.retry_interval)
            self.push_screen(self._connection_screen)
        else:
            self._connection_screen.show_error(error)

    def open_demo(self) -> None:
        """Show the demo in place of the source, which is closed (it never answered)."""
        if self.demo is None:
            return
        try:
            source = self.demo()
        except DockerServiceError as error:
            self.notify(sanitize(error.reason), severity="error", markup=False)
            return
        self._remember(HostChoice(source.host, "demo"))
        self.switch_source(source)

    def action_focus_pane(self, pane: str) -> None:
        if self.screen is self.explorer:
            self.explorer.focus_pane(pane)

    def action_help(self) -> None:
        from dockerscope.ui.compare_screen import CompareScreen
        from dockerscope.ui.file_diff_screen import FileDiffScreen
        from dockerscope.ui.file_tree import COPY_PATH, OPEN
        from dockerscope.ui.file_view_screen import FileViewScreen
        from dockerscope.ui.help_screen import HelpScreen
        from dockerscope.ui.host_list_screen import HostListScreen
        from dockerscope.ui.layer_contents_screen import LayerContentsScreen

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(
            HelpScreen(
                [
                    ("anywhere", self.BINDINGS),
                    ("lists", ExplorerScreen.BINDINGS),
                    ("images", ImageList.BINDINGS),
                    ("containers", ContainerList.BINDINGS),
                    ("filter", FilterInput.BINDINGS),
                    ("inspect", InspectTree.BINDINGS),
                    ("layers", LayerTable.BINDINGS),
                    ("layer contents", LayerContentsScreen.BINDINGS),
                    ("comparison", CompareScreen.BINDINGS),
                    ("file diff", FileDiffScreen.BINDINGS),
                    ("layer contents", [OPEN, COPY_PATH]),
                    ("file view", FileViewScreen.BINDINGS),
                    ("host list", HostListScreen.BINDINGS),
                    ("lists, tree", ObjectList.BINDINGS),
                ]
            )
        )

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P) offers what the keys do, not Textual's own commands."""
        yield SystemCommand("Switch host", "Contexts, DOCKER_HOST and engine sockets found here", self.action_hosts)
        yield SystemCommand("Refresh", "Ask the host for everything again now", self.action_refresh)
        if screen is self.explorer and self.explorer.marked_image is not None:
            yield SystemCommand(
                "Compare with marked image",
                "The marked image (A) beside the highlighted one (B): layers, config and files",
                self.explorer.action_compare,
            )
        yield SystemCommand("Keys", "Every key binding", self.action_help)
        yield SystemCommand("Quit", "Quit dockerscope", self.exit)

    def action_hosts(self) -> None:
        from dockerscope.ui.host_list_screen import HostListScreen

        if isinstance(self.screen, HostListScreen):
            return
        if self._hosts is None:
            self._hosts = HostCatalog()
        catalog = self._hosts
        self.push_screen(
            HostListScreen(catalog, catalog.choices(self._opened), self.source.host),
            callback=lambda choice: self._switch_to(catalog, choice),
        )

    def _switch_to(self, catalog: HostCatalog, choice: HostChoice | None) -> None:
        if choice is None or choice.address == self.source.host:
            return
        self.run_worker(self._open_and_switch(catalog, choice), group="open-host", exclusive=True)

    async def _open_and_switch(self, catalog: HostCatalog, choice: HostChoice) -> None:
        try:
            # Off the loop: an archive is read through to list its images (a gzip one, all of it).
            source = await asyncio.to_thread(catalog.open, choice)
        except DockerServiceError as error:
            self.notify(
                sanitize(f"{error.host}: {error.reason}"),
                title=sanitize(error.headline),
                severity="error",
                markup=False,
            )
            return
        self._remember(choice)
        self.switch_source(source)

    def _remember(self, choice: HostChoice) -> None:
        if all(opened.address != choice.address for opened in self._opened):
            self._opened.append(choice)

    def switch_source(self, source: ImageSource) -> None:
        """Show `source` instead of the current one: views start over, and the old source's
        watcher, event stream and threads are closed."""
        old_source = self.source
        self.watcher.stop()
        self.workers.cancel_group(self, "watch")
        self.source = source
        self.watcher = Watcher(source, self.interval)
        self._connection_screen = None
        self._data_shown = False
        # Everything above the default screen belonged to the old host: the explorer, the
        # connection screen, its layer views.
        while len(self.screen_stack) > 2:
            self.pop_screen()
        self.explorer = ExplorerScreen(source)
        self.switch_screen(self.explorer)
        self.run_worker(self._watch(self.watcher), group="watch", exclusive=True)
        # Closing joins nothing, but a stuck request must never hold up the UI.
        self.run_worker(old_source.close, thread=True, group="close")

    def on_unmount(self) -> None:
        self.watcher.stop()
        self.source.close()


def create_app(
    source: ImageSource,
    interval: float,
    hosts: HostCatalog | None = None,
    demo: Callable[[], ImageSource] | None = None,
) -> DockerscopeApp:
    """Build the app around an image source (a daemon's `DockerService`, or any other `ImageSource`).
    `interval`: seconds between the safety-net polls while the event stream is up, or between all
    polls when the source has no event stream. `hosts`: what `H` offers to switch to (by default
    the contexts, DOCKER_HOST and the engine sockets of this machine). `demo`: opens the demo the
    no-daemon screen offers."""
    return DockerscopeApp(source, interval=interval, hosts=hosts, demo=demo)
