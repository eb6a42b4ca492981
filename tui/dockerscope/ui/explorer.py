"""The main screen: image list, inspect tree and layer stack."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from dockerscope.service import DockerService, DockerServiceError, ImageSummary, LayerStack, Snapshot
from dockerscope.ui.filter_input import FilterInput
from dockerscope.ui.format import human_size, plain
from dockerscope.ui.image_list import ImageList
from dockerscope.ui.inspect_tree import InspectTree
from dockerscope.ui.layer_table import LayerTable
from dockerscope.ui.messages import DetailFailed, DetailReady
from dockerscope.ui.status_bar import StatusBar

# Holding an arrow key skims through images; wait this long on one before fetching its details.
DETAIL_DEBOUNCE_SECONDS = 0.06


class ExplorerScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="images.filter"),
    ]

    def __init__(self, service: DockerService) -> None:
        super().__init__()
        self._service = service
        self._shown_image: ImageSummary | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="images-pane", classes="pane"):
            yield FilterInput(returns_focus_to="#images", id="filter")
            yield ImageList(id="images")
        with Horizontal(id="details"):
            with Vertical(id="inspect-pane", classes="pane"):
                yield InspectTree(id="inspect")
            with Vertical(id="layers-pane", classes="pane"):
                yield LayerTable(id="layers")
                yield Static(id="layer-summary")
        yield StatusBar(id="status")
        yield Footer()

    def focus_pane(self, pane_id: str) -> None:
        self.set_focus(self.query_one(f"#{pane_id}"))

    def on_mount(self) -> None:
        self.query_one("#images-pane").border_title = "1 Images"
        self.query_one("#inspect-pane").border_title = "2 Inspect"
        self.query_one("#layers-pane").border_title = "3 Layers"
        self.query_one(FilterInput).display = False
        self.query_one(StatusBar).show_connecting(self._service.host)
        self.query_one(ImageList).focus()

    def show_snapshot(self, snapshot: Snapshot) -> None:
        self.query_one(StatusBar).show_snapshot(snapshot)
        self.query_one(ImageList).show_images(snapshot.images)
        self._update_images_title()

    def show_problem(self, error: DockerServiceError) -> None:
        self.query_one(StatusBar).show_problem(error)

    def _update_images_title(self) -> None:
        images = self.query_one(ImageList)
        pane = self.query_one("#images-pane")
        parts = [f"sort: {images.sort_order.value}"]
        if images.filter_text:
            parts.append("filtered")
        if not images.show_dangling:
            parts.append("dangling hidden")
        pane.border_subtitle = f"{len(images.visible_images)} shown · " + " · ".join(parts)

    @on(ImageList.ViewChanged)
    def _view_changed(self) -> None:
        self._update_images_title()

    def action_filter(self) -> None:
        # set_focus, not focus(): focus() waits for the message queue, and keys typed (or pasted)
        # right after `/` would reach the list instead of the filter.
        field = self.query_one(FilterInput)
        field.display = True
        self.set_focus(field)

    @on(FilterInput.Changed)
    def _filter_changed(self, event: FilterInput.Changed) -> None:
        self.query_one(ImageList).set_filter(event.value)
        self._update_images_title()

    @on(ImageList.ImageHighlighted)
    def _image_highlighted(self, event: ImageList.ImageHighlighted) -> None:
        image = event.image
        if image is None:
            self._shown_image = None
            self.query_one(InspectTree).show_document("no image selected", None)
            self._show_layers(None, None)
            return
        if image == self._shown_image:
            return
        self._shown_image = image
        self.run_worker(self._load_detail(image), group="detail", exclusive=True)

    async def _load_detail(self, image: ImageSummary) -> None:
        await asyncio.sleep(DETAIL_DEBOUNCE_SECONDS)
        try:
            detail = await self._service.image_detail(image)
        except DockerServiceError as error:
            self.post_message(DetailFailed(image.id, error))
            return
        self.post_message(DetailReady(detail))

    def on_detail_ready(self, message: DetailReady) -> None:
        image = self._shown_image
        if image is None or image.id != message.detail.id:
            return
        self.query_one(InspectTree).show_document(image.name, message.detail.inspect)
        self._show_layers(message.detail.layers, image)

    def on_detail_failed(self, message: DetailFailed) -> None:
        image = self._shown_image
        if image is None or image.id != message.image_id:
            return
        self._shown_image = None
        reason = f"{image.short_id}: {message.error.reason}"
        self.query_one(InspectTree).show_document(reason, None)
        self._show_layers(None, None)
        self.notify(reason, title="Could not load image", severity="warning")

    def _show_layers(self, stack: LayerStack | None, image: ImageSummary | None) -> None:
        self.query_one(LayerTable).show_stack(stack)
        summary = self.query_one("#layer-summary", Static)
        if stack is None or image is None:
            summary.update("")
            return
        line = Text(f"{stack.layer_count} layers · {human_size(stack.total_size)}")
        if stack.total_size != image.size:
            line.append(f" (image size {human_size(image.size)})", style="yellow")
        style = {"exact": "dim", "inferred": "dim", "ambiguous": "yellow"}[stack.quality.value]
        line.append(" · mapping ")
        line.append_text(plain(stack.note, style=style))
        summary.update(line)
