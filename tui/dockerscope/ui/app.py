"""The Textual application: polls the service and routes results to the screens."""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from dockerscope.service import DockerService, DockerServiceError
from dockerscope.ui.connection_screen import ConnectionScreen
from dockerscope.ui.container_list import ContainerList
from dockerscope.ui.explorer import ExplorerScreen
from dockerscope.ui.filter_input import FilterInput
from dockerscope.ui.help_screen import HelpScreen
from dockerscope.ui.image_list import ImageList
from dockerscope.ui.inspect_tree import InspectTree
from dockerscope.ui.layer_table import LayerTable
from dockerscope.ui.messages import DaemonFailed, SnapshotReady
from dockerscope.ui.object_list import ObjectList

# While the daemon is unreachable, retry at least this often.
MAX_RETRY_SECONDS = 2.0


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

    def __init__(self, service: DockerService, interval: float = 2.0) -> None:
        super().__init__()
        self.service = service
        self.interval = interval
        self.explorer = ExplorerScreen(service)
        self._polling = False
        self._last_poll = 0.0
        self._connection_screen: ConnectionScreen | None = None

    def on_mount(self) -> None:
        self.push_screen(self.explorer)
        self.set_interval(min(self.interval, MAX_RETRY_SECONDS), self._tick)
        self.action_refresh()

    def _tick(self) -> None:
        """Poll at the chosen interval; while disconnected, retry at least every 2 s."""
        if self._connection_screen is not None or time.monotonic() - self._last_poll >= self.interval - 0.01:
            self.action_refresh()

    def action_refresh(self) -> None:
        if self._polling:
            return
        self._polling = True
        self._last_poll = time.monotonic()
        self.run_worker(self._poll(), group="poll")

    async def _poll(self) -> None:
        try:
            snapshot = await self.service.snapshot()
        except DockerServiceError as error:
            self.post_message(DaemonFailed(error))
        else:
            self.post_message(SnapshotReady(snapshot))
        finally:
            self._polling = False

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        if not self.is_running:  # a poll that finished while the app shuts down
            return
        if self._connection_screen is not None:
            self._connection_screen = None
            self.pop_screen()
        self.explorer.show_snapshot(message.snapshot)

    def on_daemon_failed(self, message: DaemonFailed) -> None:
        if not self.is_running:
            return
        self.explorer.show_problem(message.error)
        if self._connection_screen is None:
            self._connection_screen = ConnectionScreen(message.error, min(self.interval, MAX_RETRY_SECONDS))
            self.push_screen(self._connection_screen)
        else:
            self._connection_screen.show_error(message.error)

    def action_focus_pane(self, pane: str) -> None:
        if self.screen is self.explorer:
            self.explorer.focus_pane(pane)

    def action_help(self) -> None:
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
                    ("lists, tree", ObjectList.BINDINGS),
                ]
            )
        )

    def on_unmount(self) -> None:
        self.service.close()


def create_app(service: DockerService, interval: float = 2.0) -> DockerscopeApp:
    """Build the app around a service, so tests can hand it any daemon."""
    return DockerscopeApp(service, interval=interval)
