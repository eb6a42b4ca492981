"""The image list pane: every image, sortable, filterable, dangling ones optional."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from dockerscope import clock
from dockerscope.service import ImageSummary
from dockerscope.ui.format import human_size, plain, relative_time

MIN_TAGS_WIDTH = 16
FIXED_COLUMNS = (("Id", "id", 12), ("Size", "size", 7), ("Created", "created", 14), ("Ctrs", "containers", 4))


class SortOrder(enum.Enum):
    NAME = "name"
    SIZE = "size"
    CREATED = "created"

    def following(self) -> SortOrder:
        members = list(SortOrder)
        return members[(members.index(self) + 1) % len(members)]


def _sort_key(order: SortOrder, image: ImageSummary) -> tuple[object, ...]:
    if order is SortOrder.SIZE:
        return (-image.size, image.name)
    if order is SortOrder.CREATED:
        created = image.created.timestamp() if image.created else 0.0
        return (-created, image.name)
    return (image.dangling, image.name, image.id)


def _matches(image: ImageSummary, needle: str) -> bool:
    if not needle:
        return True
    needle = needle.lower()
    return any(needle in tag.lower() for tag in image.tags) or needle in image.id.lower()


class ImageList(DataTable[Text]):
    """Rows keyed by image id, so the cursor stays on its image across refreshes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "Sort", id="images.sort"),
        Binding("d", "toggle_dangling", "Dangling", id="images.dangling"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    class ImageHighlighted(Message):
        def __init__(self, image: ImageSummary | None) -> None:
            super().__init__()
            self.image = image

    class ViewChanged(Message):
        """Sort, filter or dangling toggle changed what is listed."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._images: dict[str, ImageSummary] = {}
        self.sort_order = SortOrder.NAME
        self.filter_text = ""
        self.show_dangling = True
        self._shown: list[str] = []
        self._tags_column_width = 0

    def on_mount(self) -> None:
        self._add_columns()

    def _tags_width(self) -> int:
        """Tags take what the fixed-width columns leave, so sizes and times are never cut off."""
        fixed = sum(width for _, _, width in FIXED_COLUMNS)
        padding = 2 * self.cell_padding * (len(FIXED_COLUMNS) + 1)
        return max(MIN_TAGS_WIDTH, self.scrollable_content_region.width - fixed - padding - 1)

    def _add_columns(self) -> None:
        self._tags_column_width = self._tags_width()
        self.add_column("Tags", key="tags", width=self._tags_column_width)
        for label, key, width in FIXED_COLUMNS:
            self.add_column(label, key=key, width=width)

    def on_resize(self) -> None:
        if self._tags_width() == self._tags_column_width:
            return
        highlighted = self.highlighted_image
        self.clear(columns=True)
        self._add_columns()
        self._shown = []
        self._render_rows(keep=highlighted)

    @property
    def visible_images(self) -> list[ImageSummary]:
        return [self._images[key] for key in self._shown]

    @property
    def highlighted_image(self) -> ImageSummary | None:
        if not self._shown or not 0 <= self.cursor_row < len(self._shown):
            return None
        return self._images.get(self._shown[self.cursor_row])

    def show_images(self, images: Sequence[ImageSummary]) -> None:
        self._images = {image.id: image for image in images}
        self._render_rows()

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._render_rows()

    def _render_rows(self, keep: ImageSummary | None = None) -> None:
        now = clock.utc_now()
        wanted = sorted(
            (
                image
                for image in self._images.values()
                if (self.show_dangling or not image.dangling) and _matches(image, self.filter_text)
            ),
            key=lambda image: _sort_key(self.sort_order, image),
        )
        keys = [image.id for image in wanted]
        rows = {image.id: self._cells(image, now) for image in wanted}
        if keys == self._shown:
            for key, cells in rows.items():
                for column, cell in zip(("tags", *(key for _, key, _ in FIXED_COLUMNS)), cells, strict=True):
                    self.update_cell(key, column, cell)
            return
        previous = keep or self.highlighted_image
        previous_row = self.cursor_row
        self.clear()
        self._shown = keys
        for key in keys:
            self.add_row(*rows[key], key=key)
        if previous is not None and previous.id in rows:
            self.move_cursor(row=keys.index(previous.id), scroll=True)
        elif keys:
            # The highlighted image is gone: stay at the same height, on its neighbour.
            self.move_cursor(row=min(max(previous_row, 0), len(keys) - 1), scroll=True)
        self.post_message(self.ViewChanged())
        self.post_message(self.ImageHighlighted(self.highlighted_image))

    def _cells(self, image: ImageSummary, now: datetime) -> tuple[Text, ...]:
        tags = plain(", ".join(image.tags), max_chars=200) if image.tags else Text("<none>", style="dim")
        return (
            tags,
            Text(image.short_id),
            Text(human_size(image.size), justify="right"),
            Text(relative_time(image.created, now)),
            Text(str(image.containers), justify="right"),
        )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.post_message(self.ImageHighlighted(self.highlighted_image))

    def action_cycle_sort(self) -> None:
        self.sort_order = self.sort_order.following()
        self._render_rows()

    def action_toggle_dangling(self) -> None:
        self.show_dangling = not self.show_dangling
        self._render_rows()
