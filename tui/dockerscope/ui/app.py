"""The Textual application: runs the watcher and routes what it learns to the screens.

Until the first snapshot, a failure shows the connection screen. Once data was shown, a failure
keeps it on screen, marked stale (the `stale` class on the explorer dims its panes; the status line
says since when), until fresh data arrives."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from dockerscope.sanitize import sanitize
from dockerscope.service import DockerServiceError, ImageSource, Watcher
from dockerscope.ui.container_list import ContainerList
from dockerscope.ui.explorer import ExplorerScreen
from dockerscope.ui.filter_input import FilterInput
from dockerscope.ui.image_list import ImageList
from dockerscope.ui.inspect_tree import InspectTree
from dockerscope.ui.layer_table import LayerTable
from dockerscope.ui.messages import WatchUpdated
from dockerscope.ui.object_list import ObjectList

if TYPE_CHECKING:
    from dockerscope.ui.connection_screen import ConnectionScreen


class DockerscopeApp(App[None]):
    TITLE = "dockerscope"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("r", "refresh", "Refresh", id="app.refresh"),
        Binding("1", "focus_pane('images')", "Images", show=False, id="app.pane1"),
        Binding("2", "focus_pane('inspect')", "Inspect", show=False, id="app.pane2"),
        Binding("3", "focus_pane('layers')", "Layers", show=False, id="app.pane3"),
        Binding("4", "focus_pane('containers')", "Containers", show=False, id="app.pane4"),
        Binding("tab", "app.focus_next", "Next pane", show=False),
        Binding("shift+tab", "app.focus_previous", "Previous pane", show=False),
    ]

    def __init__(self, source: ImageSource, interval: float, demo: Callable[[], ImageSource] | None = None) -> None:
        super().__init__()
        self.source = source
        # Opens the packaged demo, offered when the source does not answer.
        self.demo = demo
        self.watcher = Watcher(source, interval)
        self.explorer = ExplorerScreen(source)
        self._connection_screen: ConnectionScreen | None = None
        self._data_shown = False

    def on_mount(self) -> None:
        self.push_screen(self.explorer)
        self.run_worker(self._watch(), group="watch", exclusive=True)

    async def _watch(self) -> None:
        watcher = self.watcher
        async for update in watcher.updates():
            self.post_message(WatchUpdated(update, watcher))

    def action_refresh(self) -> None:
        self.watcher.poll_now()

    def on_watch_updated(self, message: WatchUpdated) -> None:
        if not self.is_running:  # an update that arrived while the app shuts down
            return
        if message.watcher is not None and message.watcher is not self.watcher:
            return  # from the source the demo replaced
        update = message.update
        if update.error is not None:
            self._show_failure(update.error)
            return
        assert update.snapshot is not None
        if self._connection_screen is not None:
            self._connection_screen = None
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
        self.watcher.stop()
        self.source.close()
        self.source = source
        self.watcher = Watcher(source, self.watcher.interval)
        self.explorer = ExplorerScreen(source)
        self._data_shown = False
        if self._connection_screen is not None:
            self._connection_screen = None
            self.pop_screen()
        self.switch_screen(self.explorer)
        self.run_worker(self._watch(), group="watch", exclusive=True)

    def action_focus_pane(self, pane: str) -> None:
        if self.screen is self.explorer:
            self.explorer.focus_pane(pane)

    def action_help(self) -> None:
        from dockerscope.ui.help_screen import HelpScreen
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
                    ("lists, tree", ObjectList.BINDINGS),
                ]
            )
        )

    def on_unmount(self) -> None:
        self.watcher.stop()
        self.source.close()


def create_app(source: ImageSource, interval: float, demo: Callable[[], ImageSource] | None = None) -> DockerscopeApp:
    """Build the app around an image source (a daemon's `DockerService`, or any other `ImageSource`).
    `interval`: seconds between the safety-net polls while the event stream is up, or between all
    polls when the source has no event stream. `demo`: opens the demo the no-daemon screen offers."""
    return DockerscopeApp(source, interval=interval, demo=demo)
