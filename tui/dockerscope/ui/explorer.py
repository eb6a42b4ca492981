"""The main screen: image and container lists, inspect tree and layer stack."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.events import DescendantFocus
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from dockerscope.sanitize import sanitize
from dockerscope.service import (
    ContainerDetail,
    ContainerSummary,
    DockerServiceError,
    ImageContext,
    ImageDetail,
    ImageSource,
    ImageSummary,
    Snapshot,
    short_id,
)
from dockerscope.ui.container_list import ContainerList
from dockerscope.ui.filter_input import FilterInput
from dockerscope.ui.format import human_size, plain, sizes_differ
from dockerscope.ui.image_list import ImageList
from dockerscope.ui.inspect_tree import InspectTree
from dockerscope.ui.key_footer import KeyFooter
from dockerscope.ui.layer_table import LayerTable, changes_summary
from dockerscope.ui.messages import ContainerDetailReady, ContextReady, DetailFailed, DetailReady, Problem
from dockerscope.ui.object_list import ObjectList
from dockerscope.ui.pane import Pane
from dockerscope.ui.status_bar import StatusBar

# Holding an arrow key skims through a list; wait this long on one object before fetching details.
DETAIL_DEBOUNCE_SECONDS = 0.06

Subject = ImageSummary | ContainerSummary


class ExplorerScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="lists.filter"),
        Binding("z", "zoom", "Zoom pane", id="explorer.zoom"),
    ]
    # What stays on screen beside a zoomed pane.
    ALLOW_IN_MAXIMIZED_VIEW = "StatusBar, KeyFooter"

    def __init__(self, source: ImageSource) -> None:
        super().__init__()
        self._source = source
        self._snapshot: Snapshot | None = None
        self._subject: Subject | None = None
        self._active_list = "images"
        self._image_detail: ImageDetail | None = None
        self._container_detail: ContainerDetail | None = None
        self._image_context: ImageContext | None = None
        self._keep_view = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="lists"):
            with Pane(id="images-pane", classes="pane"):
                yield FilterInput(returns_focus_to="#images", id="images-filter")
                yield ImageList(id="images")
            with Pane(id="containers-pane", classes="pane"):
                yield FilterInput(returns_focus_to="#containers", id="containers-filter")
                yield ContainerList(id="containers")
        with Horizontal(id="details"):
            with Pane(id="inspect-pane", classes="pane"):
                yield InspectTree(id="inspect")
            with Pane(id="layers-pane", classes="pane"):
                yield LayerTable(id="layers")
                yield Static(id="layer-summary")
        yield StatusBar(id="status")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#images-pane").border_title = "1 Images"
        self.query_one("#inspect-pane").border_title = "2 Inspect"
        self.query_one("#layers-pane").border_title = "3 Layers"
        self.query_one("#containers-pane").border_title = "4 Containers"
        for field in self.query(FilterInput):
            field.display = False
        self.query_one("#containers-pane").display = self._source.capabilities.containers
        self.query_one(StatusBar).show_connecting(self._source.host)
        # At once, not focus(): the footer then builds its keys once, with the list's among them.
        self.set_focus(self.query_one(ImageList))

    def focus_pane(self, pane_id: str) -> None:
        if pane_id == "containers" and not self._source.capabilities.containers:
            self._tell_unsupported("has no containers")
            return
        self.set_focus(self.query_one(f"#{pane_id}"))

    def _tell_unsupported(self, what: str) -> None:
        self.notify(sanitize(f"{self._source.host} {what}."), severity="information", markup=False)

    # Data from the watcher.

    def show_snapshot(self, snapshot: Snapshot, live: bool) -> None:
        previous, self._snapshot = self._snapshot, snapshot
        self.query_one(StatusBar).show_snapshot(snapshot, live, self._source.capabilities.events)
        self.query_one(ImageList).show_items(snapshot.images)
        if previous is None:
            # The first frame with data needs the image list only: the containers follow a frame later.
            self.call_after_refresh(self._show_containers)
        else:
            self._show_containers()
        images_changed = previous is not None and _image_ids(previous) != _image_ids(snapshot)
        if images_changed and self._image_detail is not None and self._image_context is not None:
            # Images came or went: what the image on show shares may have changed.
            self._reload_context(self._image_detail.id)

    def _show_containers(self) -> None:
        """The containers of the latest snapshot."""
        if self._snapshot is None:
            return
        containers = self.query_one(ContainerList)
        containers.set_image_names({image.id: image.name for image in self._snapshot.images if image.tags})
        containers.show_items(self._snapshot.containers)

    def show_problem(self, error: DockerServiceError) -> None:
        self.query_one(StatusBar).show_problem(error)

    # The lists and their subtitles.

    @on(ObjectList.ViewChanged)
    def _view_changed(self, event: ObjectList.ViewChanged) -> None:
        object_list = event.object_list
        pane = object_list.parent
        assert isinstance(pane, Widget)
        notes = [f"sort: {object_list.sort_by}", *object_list.view_notes()]
        pane.border_subtitle = plain(f"{len(object_list.visible_items)} shown · " + " · ".join(notes))

    def action_zoom(self) -> None:
        """The focused pane to the whole screen, and back (Esc too)."""
        if self.maximized is not None:
            self.minimize()
        elif self.focused is not None:
            self.maximize(self.focused)

    def action_filter(self) -> None:
        # set_focus, not focus(): focus() waits for the message queue, and keys typed (or pasted)
        # right after `/` would reach the list instead of the filter.
        target = "containers" if self._active_list == "containers" else "images"
        field = self.query_one(f"#{target}-filter", FilterInput)
        field.display = True
        self.set_focus(field)

    @on(FilterInput.Changed)
    def _filter_changed(self, event: FilterInput.Changed) -> None:
        target = "#containers" if event.input.id == "containers-filter" else "#images"
        self.query_one(target, ObjectList).filter_text = event.value

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        widget = event.widget
        if isinstance(widget, ImageList | ContainerList):
            self._active_list = "containers" if isinstance(widget, ContainerList) else "images"
            self._select(widget.highlighted_item)

    @on(ObjectList.Highlighted)
    def _highlighted(self, event: ObjectList.Highlighted) -> None:
        active = self._active_list == ("containers" if isinstance(event.object_list, ContainerList) else "images")
        if active:
            self._select(event.item)

    def action_containers_of_image(self) -> None:
        if not self._source.capabilities.containers:
            self._tell_unsupported("has no containers")
            return
        image = self.query_one(ImageList).highlighted_item
        containers = self.query_one(ContainerList)
        containers.image_scope = image
        self.set_focus(containers)

    def action_image_of_container(self) -> None:
        container = self.query_one(ContainerList).highlighted_item
        if container is None:
            return
        images = self.query_one(ImageList)
        image = images.find(container.image_id)
        if image is None:
            shown_id = short_id(container.image_id)
            self.notify(
                sanitize(f"The image of {sanitize(container.name, 120)} ({shown_id}) is not present locally."),
                severity="warning",
                markup=False,
            )
            return
        if not images.move_to(container.image_id):
            images.show_all(keep=image)
            self.query_one("#images-filter", FilterInput).action_clear_filter()
        self.set_focus(images)

    def action_compare(self) -> None:
        """`=`: compare the marked image (A) with the highlighted one (B)."""
        from dockerscope.ui.compare_screen import CompareScreen

        images = self.query_one(ImageList)
        marked, highlighted = images.marked, images.highlighted_item
        if marked is None:
            self.notify("Mark an image with Space first, then press = on another to compare them.", markup=False)
            return
        if highlighted is None or highlighted.id == marked.id:
            self.notify("The marked image is the highlighted one: highlight another to compare with.", markup=False)
            return
        self.app.push_screen(CompareScreen(self._source, marked, highlighted, self._snapshot))

    @property
    def marked_image(self) -> ImageSummary | None:
        return self.query_one(ImageList).marked

    # The detail panes follow the subject.

    def _select(self, subject: Subject | None) -> None:
        previous = self._subject
        if subject == previous:
            return
        self._subject = subject
        if subject is not None and previous is not None and _shows_the_same(previous, subject):
            return  # e.g. a container's "Up 5 minutes" ticked on: its details are what they were
        # A new version of the object on show (new tags, new state) keeps the panes' view.
        self._keep_view = previous is not None and subject is not None and _same_object(previous, subject)
        if not self._keep_view:
            self._image_detail = self._container_detail = self._image_context = None
        if subject is None:
            self.query_one(InspectTree).show_document("nothing selected", None)
            self._show_layers()
            return
        self._load(subject)

    # Workers by decorator: the coroutine is made when the worker starts, so a worker asked for
    # while the app shuts down leaves no never-awaited coroutine behind.
    @work(group="detail", exclusive=True)
    async def _load(self, subject: Subject) -> None:
        await asyncio.sleep(DETAIL_DEBOUNCE_SECONDS)
        try:
            if isinstance(subject, ContainerSummary):
                container = await self._source.container_detail(subject)
                self.post_message(ContainerDetailReady(container))
                image = container.image
            else:
                image = await self._source.image_detail(subject)
                self.post_message(DetailReady(image))
            if image is not None:
                await self._load_context(image.id)
        except Exception as error:  # any failure is shown; a worker that raises would end the app
            self.post_message(DetailFailed(subject.id, Problem.of(error)))

    async def _load_context(self, image_id: str) -> None:
        snapshot = self._snapshot
        summary = next((image for image in snapshot.images if image.id == image_id), None) if snapshot else None
        if snapshot is not None and summary is not None:
            self.post_message(ContextReady(image_id, await self._source.image_context(summary, snapshot)))

    @work(group="context", exclusive=True)
    async def _reload_context(self, image_id: str) -> None:
        """Work the sharing out again after images came or went. A daemon failure is the poll's to
        report; anything else is shown here, as a worker that raises would end the app."""
        try:
            await self._load_context(image_id)
        except DockerServiceError:
            return
        except Exception as error:
            problem = Problem.of(error)
            self.notify(
                sanitize(f"{problem.headline}: {problem.reason}"),
                title="Could not work out the layer sharing",
                severity="warning",
                markup=False,
            )

    def _is_subject(self, object_id: str) -> bool:
        return self._subject is not None and self._subject.id == object_id

    def on_detail_ready(self, message: DetailReady) -> None:
        if not isinstance(self._subject, ImageSummary) or not self._is_subject(message.detail.id):
            return
        self._image_detail = message.detail
        self.query_one(InspectTree).show_document(self._subject.name, message.detail.inspect, self._keep_view)
        self._show_layers(keep_cursor=self._keep_view)

    def on_container_detail_ready(self, message: ContainerDetailReady) -> None:
        if not isinstance(self._subject, ContainerSummary) or not self._is_subject(message.detail.id):
            return
        self._container_detail = message.detail
        self._image_detail = message.detail.image
        self.query_one(InspectTree).show_document(self._subject.name, message.detail.inspect, self._keep_view)
        self._show_layers(keep_cursor=self._keep_view)

    def on_context_ready(self, message: ContextReady) -> None:
        if self._image_detail is None or self._image_detail.id != message.image_id:
            return
        self._image_context = message.context
        self._show_layers(keep_cursor=True)

    def on_detail_failed(self, message: DetailFailed) -> None:
        subject = self._subject
        if subject is None or not self._is_subject(message.object_id):
            return
        self._subject = None
        problem = message.problem
        line = sanitize(f"{sanitize(subject.short_id, 80)}: {problem.headline}: {problem.reason}")
        self.query_one(InspectTree).show_document(line, None)
        self._image_detail = self._container_detail = self._image_context = None
        self._show_layers()
        self.notify(
            line,
            title="Could not load details",
            severity="warning",
            markup=False,
        )

    def _show_layers(self, keep_cursor: bool = False) -> None:
        detail = self._image_detail
        writable = self._container_detail.writable if self._container_detail else None
        self.query_one(LayerTable).show_stack(
            detail.layers if detail else None, self._image_context, writable, keep_cursor=keep_cursor
        )
        self.query_one("#layer-summary", Static).update(self._layer_summary())

    def _layer_summary(self) -> Text:
        detail = self._image_detail
        if detail is None:
            if self._container_detail is not None:
                return Text("the container's image is no longer present locally", style="yellow")
            return Text("")
        stack = detail.layers
        line = Text(f"{stack.layer_count} layers · {human_size(stack.total_size)}")
        size = detail.inspect.get("Size")
        if isinstance(size, int) and sizes_differ(stack.total_size, size):
            line.append(f" (image size {human_size(size)})", style="yellow")
        context = self._image_context
        if context is None:
            line.append(" · sharing: working it out…", style="dim")
        else:
            line.append(f" · unique {human_size(context.unique_size)} · shared {human_size(context.shared_size)}")
            if context.unknown_size:
                line.append(f" · {human_size(context.unknown_size)} of layers not placed", style="yellow")
            if context.base is None:
                line.append(" · base image not present locally", style="dim")
            else:
                line.append(" · base: ")
                line.append_text(plain(", ".join(context.base.names), style="blue", max_chars=200))
        line.append("\nmapping ", style="dim")
        line.append_text(plain(stack.note, style="yellow" if stack.quality.value == "ambiguous" else "dim"))
        if self._container_detail is not None:
            writable = self._container_detail.writable
            size_text = human_size(writable.size) if writable.size is not None else "?"
            line.append(f" · writable layer {size_text}: {changes_summary(writable)}", style="magenta")
        return line

    @on(LayerTable.Chosen)
    def _layer_chosen(self, event: LayerTable.Chosen) -> None:
        # Screens the first frame does not show load when first shown (tests/test_startup.py).
        from dockerscope.ui.changes_screen import ChangesScreen
        from dockerscope.ui.layer_contents_screen import ContentsTarget, LayerContentsScreen
        from dockerscope.ui.layer_info_screen import LayerInfoScreen

        subject, detail = self._subject, self._image_detail
        if event.row is None:
            if self._container_detail is None or not isinstance(subject, ContainerSummary):
                return
            if event.details or detail is None or not self._source.capabilities.layer_contents:
                self.app.push_screen(ChangesScreen(subject.name, self._container_detail.writable))
            else:
                target = ContentsTarget(subject.name, detail.id, subject.id, detail.layers.instructions())
                self.app.push_screen(LayerContentsScreen(self._source, target))
            return
        if not event.details and event.row.layer_index is not None and detail is not None and subject is not None:
            if not self._source.capabilities.layer_contents:
                self._tell_unsupported("cannot list what is inside a layer (i shows the layer's details)")
                return
            name = subject.name if isinstance(subject, ImageSummary) else f"image of {subject.name}"
            target = ContentsTarget(name, detail.id, instructions=detail.layers.instructions())
            self.app.push_screen(LayerContentsScreen(self._source, target, event.row.layer_index))
            return
        sharers = None
        if self._image_context is not None and event.row.chain_id:
            names = {image.id: image.name for image in (self._snapshot.images if self._snapshot else ())}
            ids = self._image_context.sharers.get(event.row.chain_id, ())
            sharers = [names.get(image_id, short_id(image_id)) for image_id in ids]
        self.app.push_screen(LayerInfoScreen(event.row, sharers))


def _same_object(one: Subject, other: Subject) -> bool:
    return type(one) is type(other) and one.id == other.id


def _shows_the_same(one: Subject, other: Subject) -> bool:
    """Whether two versions of an object have the same details: an image's inspect changes with
    its tags, a container's with its name and state (not with its status text or counts)."""
    if isinstance(one, ImageSummary) and isinstance(other, ImageSummary):
        return one.id == other.id and one.tags == other.tags
    if isinstance(one, ContainerSummary) and isinstance(other, ContainerSummary):
        return (one.id, one.name, one.state) == (other.id, other.name, other.state)
    return False


def _image_ids(snapshot: Snapshot) -> set[str]:
    return {image.id for image in snapshot.images}
