"""Enter on a layer: everything about one history entry, and which other images share its layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from dockerscope.service import LayerKind, LayerRow
from dockerscope.ui.format import human_size, plain

MAKES_LAYER = {LayerKind.LAYER: "yes", LayerKind.EMPTY: "no (metadata only)", LayerKind.UNKNOWN: "cannot tell"}


class LayerInfoScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,enter", "dismiss", "Close")]

    def __init__(self, row: LayerRow, sharers: Sequence[str] | None) -> None:
        super().__init__()
        self._row = row
        self._sharers = sharers

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="layer-info"):
            yield Static(self._describe())

    def _describe(self) -> Text:
        row = self._row
        text = Text.assemble((f"History entry {row.number}", "bold"), "\n\n")
        fields = [
            ("Instruction", row.instruction),
            ("Created by", row.created_by),
            ("Size", f"{human_size(row.size)} ({row.size:,} bytes)"),
            (
                "Makes a layer",
                {"layer": "yes", "empty": "no (metadata only)", "unknown": "cannot tell"}[row.kind.value],
            ),
            ("Diff id", row.diff_id or "—"),
            ("Chain id", row.chain_id or "—"),
            ("Comment", row.comment or "—"),
        ]
        for name, value in fields:
            text.append(f"{name:<14}", style="bold")
            text.append_text(plain(value, max_chars=4000))
            text.append("\n")
        text.append("\n")
        if self._sharers is None:
            text.append("Sharing with other images is still being worked out.", style="dim")
        elif not self._sharers:
            text.append("No other local image has this layer.", style="dim")
        else:
            text.append(f"Also in {len(self._sharers)} other image(s):\n", style="bold")
            for name in self._sharers:
                text.append("  ")
                text.append_text(plain(name, max_chars=200))
                text.append("\n")
        text.append("\nEsc closes", style="dim")
        return text
