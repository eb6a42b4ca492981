"""Enter on a layer: the paths it added, modified and removed, or the whole filesystem as of that
layer, and the space the image wastes. Reading runs in a worker with a progress bar; Escape cancels."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, ProgressBar, Static

from dockerscope.sanitize import sanitize
from dockerscope.service import (
    FileChange,
    FileNotReadable,
    FileStatus,
    ImageContents,
    ImageFiles,
    ImageSource,
    ReadCancelled,
    ReadProgress,
    filesystem_at,
    locate_file,
)
from dockerscope.ui.extract_screen import ExtractRequest, ExtractScreen
from dockerscope.ui.file_tree import FileTree
from dockerscope.ui.file_view import FileNode, SortOrder, build_view
from dockerscope.ui.file_view_screen import FileRequest, FileViewScreen, warm_up_lexers
from dockerscope.ui.filter_input import FilterInput
from dockerscope.ui.format import counted, human_size, plain
from dockerscope.ui.key_footer import KeyFooter
from dockerscope.ui.messages import ContentsFailed, ContentsLoaded, ContentsProgress, Problem
from dockerscope.ui.read_progress import ProgressThrottle, show_read_progress, tell_cache_problem

TOP_WASTED_ROWS = 50
FILESYSTEMS_KEPT = 4
PROGRESS_DELAY = 0.15


@dataclass(frozen=True)
class ContentsTarget:
    """What to read: an image, or a container (its image's layers and its writable layer on top)."""

    name: str
    image_id: str
    container_id: str | None = None
    instructions: Mapping[int, str] | None = None


class LayerContentsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back / cancel", id="contents.close"),
        Binding("a", "toggle_view", "Changes ↔ filesystem", id="contents.view"),
        Binding("s", "sort", "Sort", id="contents.sort"),
        Binding("slash", "filter", "Filter", id="contents.filter"),
        Binding("left_square_bracket", "layer(-1)", "Layer below", id="contents.below"),
        Binding("right_square_bracket", "layer(1)", "Layer above", id="contents.above"),
        Binding("w", "focus_wasted", "Wasted paths", id="contents.wasted"),
        Binding("x", "extract", "Extract", id="contents.extract"),
    ]

    def __init__(self, source: ImageSource, target: ContentsTarget, layer: int | None = None) -> None:
        super().__init__()
        self._source = source
        self._target = target
        self._layer = layer
        self._contents: ImageContents | None = None
        self._cancel = threading.Event()
        self._whole_filesystem = False
        self._order = SortOrder.NAME
        self._filter = ""
        self._throttle = ProgressThrottle()
        # The filesystem as of a layer takes a replay of every layer below: keep the last few.
        self._filesystems: dict[int, list[FileChange]] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="contents-title")
        with Vertical(id="contents-progress"):
            yield Static(Text("reading layers…"), id="progress-label")
            yield ProgressBar(id="progress-bar", show_eta=False)
            yield Static(Text("Esc cancels", style="dim"))
        with Horizontal(id="contents-body"):
            with Vertical(id="files-pane", classes="pane"):
                field = FilterInput(returns_focus_to="#files", placeholder="filter paths…", id="files-filter")
                field.disabled = True  # unfocusable until `/`: Escape must reach the screen meanwhile
                yield field
                yield FileTree(id="files")
            with Vertical(id="wasted-pane", classes="pane"):
                yield Static(id="wasted-summary")
                yield DataTable(id="wasted-table", cursor_type="row")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#files-pane").border_title = "Files"
        self.query_one("#wasted-pane").border_title = "Wasted space"
        self.query_one("#contents-body").display = False
        self.query_one("#contents-progress").display = False
        self.query_one("#contents-title", Static).update(self._title())
        self._read()
        self.set_timer(PROGRESS_DELAY, self._show_progress)

    def _show_progress(self) -> None:
        """Only a read that takes a while gets a progress bar: one already in memory or on disk
        shows its tree without a frame of progress first."""
        if self._contents is None:
            self.query_one("#contents-progress").display = True

    def on_unmount(self) -> None:
        self._cancel.set()  # the app quits, or the screen closes, while the layers are read

    @work(group="contents", exclusive=True)
    async def _read(self) -> None:
        target = self._target
        try:
            if target.container_id is not None:
                contents = await self._source.container_contents(
                    target.container_id, cancel=self._cancel, on_progress=self._report
                )
            else:
                contents = await self._source.image_contents(
                    target.image_id, cancel=self._cancel, on_progress=self._report
                )
        except ReadCancelled:
            return
        except Exception as error:  # any failure is shown; a worker that raises would end the app
            self.post_message(ContentsFailed(Problem.of(error)))
            return
        self.post_message(ContentsLoaded(contents))

    def _report(self, progress: ReadProgress) -> None:
        """Called in the reading thread: post a message now and then, never touch a widget."""
        if self._throttle.due(progress.layers_done == progress.layer_count):
            self.post_message(ContentsProgress(progress))

    def on_contents_progress(self, message: ContentsProgress) -> None:
        show_read_progress(self.query_one(ProgressBar), self.query_one("#progress-label", Static), message.progress)

    def _tell_cache_problem(self) -> None:
        tell_cache_problem(self.app, self._source)

    def on_contents_failed(self, message: ContentsFailed) -> None:
        self._tell_cache_problem()
        problem = message.problem
        self.app.notify(
            sanitize(f"{problem.headline}: {problem.reason}"),
            title="Could not read the layers",
            severity="error",
            markup=False,
        )
        self.dismiss()

    def on_contents_loaded(self, message: ContentsLoaded) -> None:
        contents = self._contents = message.contents
        self._tell_cache_problem()
        layer_count = len(contents.files.layers)
        if not layer_count:
            self.app.notify("This image has no layers.", severity="warning", markup=False)
            self.dismiss()
            return
        self._layer = layer_count - 1 if self._layer is None else min(max(self._layer, 0), layer_count - 1)
        self.query_one("#contents-progress").display = False
        self.query_one("#contents-body").display = True
        self._show_wasted(contents.files)
        self._show_layer()
        if self._source.capabilities.file_contents:
            self.run_worker(warm_up_lexers, thread=True, group="lexers", description="warm up the lexers")
        self.set_focus(self.query_one(FileTree))

    def _show_layer(self) -> None:
        contents, index = self._contents, self._layer
        if contents is None or index is None:
            return
        layer = contents.files.layers[index]
        changes = self._filesystem(contents.files, index) if self._whole_filesystem else layer.changes
        view = build_view(changes, index, layer.opaque, self._filter)
        top = index == len(contents.files.layers) - 1
        self.query_one(FileTree).show_view(view, self._order, sizes_known=contents.sizes_known or not top)
        self.query_one("#contents-title", Static).update(self._title())
        what = "filesystem as of this layer" if self._whole_filesystem else "this layer's changes"
        notes = [what, f"sort: {self._order.value}"]
        if self._filter:
            notes.append(f"{view.matches} paths match")
        self.query_one("#files-pane").border_subtitle = plain(" · ".join(notes))

    def _filesystem(self, files: ImageFiles, index: int) -> list[FileChange]:
        if index not in self._filesystems:
            if len(self._filesystems) >= FILESYSTEMS_KEPT:
                del self._filesystems[next(iter(self._filesystems))]
            self._filesystems[index] = filesystem_at(files, index)
        return self._filesystems[index]

    def _instruction(self, index: int) -> str:
        """What made layer `index`: its history instruction, or the container's writable layer."""
        contents, target = self._contents, self._target
        if target.container_id is not None and contents is not None and index == len(contents.files.layers) - 1:
            return "container writable layer"
        return (target.instructions or {}).get(index, "")

    def _title(self) -> Text:
        target, contents, index = self._target, self._contents, self._layer
        text = Text.assemble(("Layer contents of ", "bold"))
        text.append_text(plain(target.name, style="bold", max_chars=120))
        if contents is None or index is None:
            return text
        layers = contents.files.layers
        layer = layers[index]
        writable = target.container_id is not None and index == len(layers) - 1
        text.append(f" · layer {index + 1:d} of {len(layers)}", style="bold")
        instruction = self._instruction(index)
        if instruction:
            text.append(" · ")
            text.append_text(plain(instruction, style="cyan", max_chars=200))
        text.append(f"\n{human_size(layer.size)} in {counted(layer.file_count, 'file')} · ")
        text.append(f"+{layer.added} added ", style="green")
        text.append(f"~{layer.modified} modified ", style="yellow")
        text.append(f"-{layer.removed} removed", style="red")
        if layer.wasted:
            text.append(f" · {human_size(layer.wasted)} of it wasted by layers above", style="yellow")
        text.append(f" · read from {sanitize(' + '.join(contents.sources))} in {contents.seconds:.2f} s", style="dim")
        if not contents.sizes_known and writable:
            text.append(" · sizes unknown (docker diff)", style="dim")
        return text

    def _show_wasted(self, files: ImageFiles) -> None:
        summary = Text.assemble(("Efficiency ", "bold"), f"{files.efficiency * 100:.1f} %\n")
        summary.append("Wasted ", style="bold")
        summary.append(f"{human_size(files.wasted_bytes)} of {human_size(files.total_bytes)}\n")
        summary.append("User wasted ", style="bold")
        if files.user_bytes or not files.wasted_bytes:
            summary.append(f"{files.user_wasted_ratio * 100:.1f} % of the bytes above the first layer")
        else:
            summary.append("n/a (one layer)")
        self.query_one("#wasted-summary", Static).update(summary)
        table = self.query_one("#wasted-table", DataTable)
        table.add_columns("Wasted", "Copies", "Path")
        for item in files.wasted_paths[:TOP_WASTED_ROWS]:
            path = plain("/" + item.path, style="" if item.kept else "red strike", max_chars=300)
            table.add_row(Text(human_size(item.wasted), justify="right"), Text(str(item.copies), justify="right"), path)
        if not files.wasted_paths:
            table.display = False

    # Keys.

    def action_close(self) -> None:
        if self._contents is None:
            self._cancel.set()
            self.app.notify("Reading the layers was cancelled.", markup=False)
        self.dismiss()

    def action_toggle_view(self) -> None:
        self._whole_filesystem = not self._whole_filesystem
        self._show_layer()

    def action_sort(self) -> None:
        self._order = SortOrder.SIZE if self._order is SortOrder.NAME else SortOrder.NAME
        self._show_layer()

    def action_layer(self, step: int) -> None:
        if self._contents is None or self._layer is None:
            return
        self._layer = min(max(self._layer + step, 0), len(self._contents.files.layers) - 1)
        self._show_layer()

    def action_filter(self) -> None:
        if self._contents is None:
            return
        self.query_one(FilterInput).open()

    def action_extract(self) -> None:
        """The highlighted path as of the layer on show (a removed one: as the layer below left it)."""
        contents, index, node = self._contents, self._layer, self.query_one(FileTree).cursor_node
        if contents is None or index is None or node is None or node.data is None:
            return
        as_of = index - 1 if node.data.status is FileStatus.REMOVED else index
        if as_of < 0:
            return
        if not self._source.capabilities.file_contents:
            self.app.notify(
                sanitize(f"{self._source.host} holds no file contents to extract."), severity="warning", markup=False
            )
            return
        target = self._target
        request = ExtractRequest(
            self._source, target.image_id, target.container_id, contents.files, as_of, node.data.path
        )
        self.app.push_screen(ExtractScreen(request))

    def action_focus_wasted(self) -> None:
        self.set_focus(self.query_one("#wasted-table", DataTable))

    @on(FileTree.FileChosen)
    def _file_chosen(self, event: FileTree.FileChosen) -> None:
        self._open_file(event.node)

    @work(group="locate", exclusive=True)
    async def _open_file(self, node: FileNode) -> None:
        """The file as this layer leaves it (a removed one: as the layer below left it) in the file
        view; a path without contents only gets a notification."""
        contents, index, target = self._contents, self._layer, self._target
        if contents is None or index is None:
            return
        if not self._source.capabilities.file_contents:
            self.app.notify(
                "This source holds no file contents, only their listing.",
                title="No contents to show",
                severity="warning",
                markup=False,
            )
            return
        removed = node.status is FileStatus.REMOVED
        try:
            if removed and index == 0:
                raise FileNotReadable(f"/{node.path} was removed by the first layer: no layer below holds it")
            as_of = index - 1 if removed else index
            version = await asyncio.to_thread(locate_file, contents.files, as_of, node.path)
        except FileNotReadable as error:
            self.app.notify(sanitize(str(error), max_chars=400), title="No contents to show", markup=False)
            return
        request = FileRequest(
            image_id=target.image_id,
            version=version,
            layer_count=len(contents.files.layers),
            written_by=self._instruction(version.layer),
            container_id=target.container_id,
            removed_in=index if removed else None,
        )
        self.app.push_screen(FileViewScreen(self._source, request))

    @on(FilterInput.Changed)
    def _filter_changed(self, event: FilterInput.Changed) -> None:
        self._filter = event.value
        self._show_layer()
