"""`H`: the hosts dockerscope can show (contexts, DOCKER_HOST, engine sockets found here, what was
opened this session), each probed in the background; `Enter` switches to the highlighted one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from dockerscope.service import HostCatalog, HostChoice, HostProbe
from dockerscope.ui.format import plain
from dockerscope.ui.messages import HostProbed

STATE_COLUMN = "state"
ENGINE_COLUMN = "engine"


class HostListScreen(ModalScreen[HostChoice | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Switch to host", id="hosts.choose"),
        Binding("escape,q,H", "dismiss(None)", "Close", id="hosts.close"),
    ]

    def __init__(self, catalog: HostCatalog, choices: Sequence[HostChoice], current: str) -> None:
        super().__init__()
        self._catalog = catalog
        self._choices = list(choices)
        self._current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="hosts"):
            yield Static(Text("Hosts", style="bold"), id="hosts-title")
            yield DataTable(id="hosts-table", cursor_type="row")
            yield Static(Text("Enter switches to the highlighted host · Esc closes", style="dim"))

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("", key="current")
        table.add_column("Host", key="host")
        table.add_column("Found as", key="origin")
        table.add_column("Engine", key=ENGINE_COLUMN)
        table.add_column("State", key=STATE_COLUMN)
        for index, choice in enumerate(self._choices):
            table.add_row(
                Text("●", style="green") if choice.address == self._current else "",
                plain(choice.address, style="bold" if choice.address == self._current else "", max_chars=160),
                plain(choice.origin, max_chars=40),
                "",
                Text("probing…", style="dim"),
                key=str(index),
            )
            self.run_worker(self._probe(index, choice), group="probe")
        current = next((i for i, choice in enumerate(self._choices) if choice.address == self._current), 0)
        table.move_cursor(row=current)
        table.focus()

    async def _probe(self, index: int, choice: HostChoice) -> None:
        self.post_message(HostProbed(index, await self._catalog.probe(choice)))

    @on(HostProbed)
    def _show_probe(self, message: HostProbed) -> None:
        table = self.query_one(DataTable)
        probe: HostProbe = message.probe
        if probe.reachable:
            engine = plain(probe.label, max_chars=60)
            state = Text("answers", style="green")
        else:
            engine = Text("")
            state = plain(probe.problem, style="red", max_chars=60)
        table.update_cell(str(message.index), ENGINE_COLUMN, engine, update_width=True)
        table.update_cell(str(message.index), STATE_COLUMN, state, update_width=True)

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_choose()

    def action_choose(self) -> None:
        table = self.query_one(DataTable)
        if not self._choices:
            return
        self.dismiss(self._choices[table.cursor_row])
