"""The image list pane: every image, sortable, filterable, dangling ones optional; `Space` marks
one to compare with (`=`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.reactive import var

from dockerscope.service import ImageSummary
from dockerscope.ui.format import human_size, plain, relative_time, relative_time_changes_at
from dockerscope.ui.object_list import ObjectList


class ImageList(ObjectList[ImageSummary]):
    COLUMNS: ClassVar[tuple[tuple[str, str, int | None], ...]] = (
        ("Tags", "tags", None),
        ("Id", "id", 12),
        ("Size", "size", 7),
        ("Created", "created", 14),
        ("Ctrs", "containers", 4),
    )
    SORT_ORDERS: ClassVar[tuple[str, ...]] = ("name", "size", "created")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "Sort", id="images.sort"),
        Binding("d", "toggle_dangling", "Dangling", id="images.dangling"),
        Binding("c", "screen.containers_of_image", "Its containers", id="images.containers"),
        Binding("space", "toggle_mark", "Mark", id="images.mark"),
        Binding("equals_sign", "screen.compare", "Compare with marked", id="images.compare"),
    ]

    show_dangling = var(True, init=False)

    # The image marked for a comparison, while it exists.
    marked_id: str | None = None

    def item_key(self, item: ImageSummary) -> str:
        return item.id

    @property
    def marked(self) -> ImageSummary | None:
        return self.find(self.marked_id) if self.marked_id is not None else None

    def cells(self, item: ImageSummary, now: datetime) -> tuple[Text, ...]:
        tags = plain(", ".join(item.tags), max_chars=200) if item.tags else Text("<none>", style="dim")
        if item.id == self.marked_id:
            tags = Text.assemble(("● ", "bold magenta"), tags)
        return (
            tags,
            plain(item.short_id),
            Text(human_size(item.size), justify="right"),
            Text(relative_time(item.created, now)),
            Text(f"{item.containers:d}", justify="right"),
        )

    def cells_expire(self, item: ImageSummary, now: datetime) -> datetime | None:
        return relative_time_changes_at(item.created, now)

    def sort_key(self, item: ImageSummary) -> tuple[object, ...]:
        order = self.sort_by  # once: a reactive costs more to read than a plain attribute
        if order == "size":
            return (-item.size, item.name)
        if order == "created":
            return (-(item.created.timestamp() if item.created else 0.0), item.name)
        return (item.dangling, item.name, item.id)

    def matches(self, item: ImageSummary, needle: str) -> bool:
        return any(needle in tag.lower() for tag in item.tags) or needle in item.id.lower()

    def listed(self) -> Callable[[ImageSummary], bool] | None:
        return None if self.show_dangling else lambda item: not item.dangling

    def view_notes(self) -> list[str]:
        marked = self.marked
        return [
            *super().view_notes(),
            *([] if self.show_dangling else ["dangling hidden"]),
            *([f"marked: {marked.name if marked.tags else marked.short_id}"] if marked else []),
        ]

    def show_items(self, items: Sequence[ImageSummary]) -> None:
        super().show_items(items)
        if self.marked_id is not None and self.find(self.marked_id) is None:
            self.marked_id = None  # the marked image is gone

    def action_toggle_mark(self) -> None:
        """Mark the highlighted image for `=`, or unmark it; one image is marked at a time."""
        image = self.highlighted_item
        if image is None:
            return
        previous, self.marked_id = self.marked_id, None if image.id == self.marked_id else image.id
        self.forget_cells(*(key for key in (previous, image.id) if key is not None))
        self.refresh_rows()

    def _watch_show_dangling(self) -> None:
        self.refresh_rows()

    def show_all(self, keep: ImageSummary) -> None:
        """List every image, dangling or not, unfiltered, with the cursor on `keep`: both settings
        change at once, in one refresh."""
        self.set_reactive(ImageList.show_dangling, True)
        self.set_reactive(ImageList.filter_text, "")
        self.refresh_rows(keep)

    def action_toggle_dangling(self) -> None:
        self.show_dangling = not self.show_dangling
