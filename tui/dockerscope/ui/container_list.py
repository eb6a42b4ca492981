"""The containers pane: every container in every state, optionally those of one image."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.reactive import var

from dockerscope.service import ContainerSummary, ImageSummary, short_id
from dockerscope.ui.format import plain, relative_time, relative_time_changes_at
from dockerscope.ui.object_list import ObjectList

STATE_STYLES = {
    "running": "green",
    "paused": "yellow",
    "restarting": "yellow",
    "exited": "red",
    "dead": "bold red",
    "created": "cyan",
    "removing": "dim",
}


class ContainerList(ObjectList[ContainerSummary]):
    COLUMNS: ClassVar[tuple[tuple[str, str, int | None], ...]] = (
        ("Name", "name", None),
        ("State", "state", 10),
        ("Image", "image", 24),
        ("Created", "created", 14),
        ("Status", "status", 22),
    )
    SORT_ORDERS: ClassVar[tuple[str, ...]] = ("name", "state", "image", "created")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "Sort", id="containers.sort"),
        Binding("i", "screen.image_of_container", "Its image", id="containers.image"),
        Binding("a", "all_containers", "All containers", id="containers.all"),
    ]

    # Only the containers of this image (None: all of them). A view setting like ObjectList's: setting
    # it shows the list again, also to the scope it has (`c` twice on one image, `a` with no scope).
    image_scope: var[ImageSummary | None] = var(None, init=False, always_update=True)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._image_names: dict[str, str] = {}

    def set_image_names(self, images: dict[str, str]) -> None:
        """Image id → name, to show a container's image by its tag while the tag exists."""
        if images != self._image_names:
            self._image_names = images
            self.forget_cells()

    def image_label(self, item: ContainerSummary) -> str:
        """The image's tag; its short id when the tag is gone (as `docker ps` does)."""
        if item.image and not item.image.startswith("sha256:") and item.image != item.image_id:
            return item.image
        return self._image_names.get(item.image_id) or short_id(item.image_id)

    def item_key(self, item: ContainerSummary) -> str:
        return item.id

    def cells(self, item: ContainerSummary, now: datetime) -> tuple[Text, ...]:
        state = item.state if item.exit_code is None else f"{item.state} ({item.exit_code})"
        return (
            plain(item.name, max_chars=200),
            plain(state, style=STATE_STYLES.get(item.state, ""), max_chars=60),
            plain(self.image_label(item), max_chars=200),
            Text(relative_time(item.created, now)),
            plain(item.status, max_chars=200),
        )

    def cells_expire(self, item: ContainerSummary, now: datetime) -> datetime | None:
        return relative_time_changes_at(item.created, now)

    def sort_key(self, item: ContainerSummary) -> tuple[object, ...]:
        order = self.sort_by  # once: a reactive costs more to read than a plain attribute
        if order == "state":
            return (item.state, item.name)
        if order == "image":
            return (self.image_label(item), item.name)
        if order == "created":
            return (-(item.created.timestamp() if item.created else 0.0), item.name)
        return (item.name, item.id)

    def matches(self, item: ContainerSummary, needle: str) -> bool:
        return any(needle in text.lower() for text in (item.name, item.id, item.state, self.image_label(item)))

    def listed(self) -> Callable[[ContainerSummary], bool] | None:
        scope = self.image_scope
        return None if scope is None else lambda item: item.image_id == scope.id

    def view_notes(self) -> list[str]:
        scope = [f"image {self.image_scope.name}"] if self.image_scope else []
        return [*scope, *super().view_notes()]

    def _watch_image_scope(self) -> None:
        self.refresh_rows()

    def action_all_containers(self) -> None:
        self.image_scope = None
