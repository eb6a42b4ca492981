"""`=` in the image list: the marked image (A) and the highlighted one (B) side by side. Layers:
both stacks aligned on the layers they share, where they diverge and the base they share. Config:
what the two set differently. Files: how their final filesystems differ, in the layer-contents
tree, read in a worker when the pane is first shown (Escape cancels); `Enter` on a modified file
shows the diff of its two versions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, ProgressBar, Static, TabbedContent, TabPane

from dockerscope.sanitize import sanitize
from dockerscope.service import (
    ChangeType,
    ComparedImage,
    ComparedLayer,
    ConfigChange,
    EntryType,
    ImageDetail,
    ImageSource,
    ImageSummary,
    LayerComparison,
    LayerListing,
    ReadCancelled,
    ReadProgress,
    Snapshot,
    compare_config,
    compare_final,
    compare_layers,
    final_filesystems,
    read_both_layers,
)
from dockerscope.ui.compare_files import DESCRIBE_WIDTH, ComparedFiles
from dockerscope.ui.file_tree import FileTree
from dockerscope.ui.file_view import FileNode, SortOrder
from dockerscope.ui.filter_input import FilterInput
from dockerscope.ui.format import counted, human_size, plain, signed_size
from dockerscope.ui.key_footer import KeyFooter
from dockerscope.ui.messages import (
    CompareBaseFound,
    CompareDetailsReady,
    CompareFailed,
    CompareFilesReady,
    ContentsProgress,
    Problem,
)
from dockerscope.ui.read_progress import ProgressThrottle, show_read_progress, tell_cache_problem

# Progress messages from the reading thread are spaced at least this far apart.
# A config value is shown this long in its cell.
VALUE_CHARS = 300
PANES = ("layers", "config", "files")
# What Enter can diff: both versions are (or lead to) regular files.
READABLE = (EntryType.FILE, EntryType.HARDLINK, EntryType.SYMLINK)
MARKS = {ChangeType.ADDED: ("+", "green"), ChangeType.REMOVED: ("-", "red"), ChangeType.CHANGED: ("~", "yellow")}


class CompareScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back / cancel", id="compare.close"),
        Binding("1", "pane('layers')", "Layers", id="compare.layers"),
        Binding("2", "pane('config')", "Config", id="compare.config"),
        Binding("3", "pane('files')", "Files", id="compare.files"),
        Binding("s", "sort", "Sort", id="compare.sort"),
        Binding("slash", "filter", "Filter", id="compare.filter"),
        # Ahead of the tree's own Enter (which opens directories: this does too).
        Binding("enter", "diff", "Diff of the file", id="compare.diff", priority=True),
    ]

    def __init__(
        self, source: ImageSource, left: ImageSummary, right: ImageSummary, snapshot: Snapshot | None = None
    ) -> None:
        super().__init__()
        self._source = source
        self._summaries = (left, right)
        self._snapshot = snapshot
        self._details: tuple[ImageDetail, ImageDetail] | None = None
        self._layers: LayerComparison | None = None
        self._files: tuple[ComparedImage, ComparedImage] | None = None
        self._compared: ComparedFiles | None = None
        self._reading = False
        self._reading_side = "A"
        self._cancel = threading.Event()
        self._order = SortOrder.NAME
        self._filter = ""
        self._throttle = ProgressThrottle()

    @property
    def names(self) -> tuple[str, str]:
        left, right = self._summaries
        return left.name if left.tags else left.short_id, right.name if right.tags else right.short_id

    def compose(self) -> ComposeResult:
        yield Static(id="compare-title")
        with TabbedContent(id="compare-tabs"):
            with TabPane("1 Layers", id="layers-tab"):
                yield Static(Text("reading both images…", style="dim"), id="layers-summary")
                yield DataTable(id="compare-layers", cursor_type="row")
            with TabPane("2 Config", id="config-tab"):
                yield Static(id="config-summary")
                yield DataTable(id="compare-config", cursor_type="row")
            with TabPane("3 Files", id="files-tab"):
                with Vertical(id="compare-progress"):
                    yield Static(Text("reading layers…"), id="compare-progress-label")
                    yield ProgressBar(id="compare-progress-bar", show_eta=False)
                    yield Static(Text("Esc cancels", style="dim"))
                yield Static(id="files-summary")
                field = FilterInput(returns_focus_to="#compare-files", placeholder="filter paths…", id="compare-filter")
                field.disabled = True  # unfocusable until `/`: Escape must reach the screen meanwhile
                yield field
                yield FileTree(id="compare-files", describe=self._describe, details_width=DESCRIBE_WIDTH)
        yield KeyFooter()

    def _describe(self, node: FileNode) -> str:
        return self._compared.describe(node) if self._compared is not None else ""

    def on_mount(self) -> None:
        self.query_one("#compare-title", Static).update(self._title())
        self.query_one("#compare-progress").display = False
        self.query_one(FileTree).display = False
        self._load()

    def on_unmount(self) -> None:
        self._cancel.set()  # the app quits, or the screen closes, while the layers are read

    def _title(self) -> Text:
        (left, right), names = self._summaries, self.names
        title = Text.assemble(("Compare  A ", "bold"))
        title.append_text(plain(names[0], style="bold red", max_chars=120))
        title.append_text(plain(f" ({left.short_id})  →  B ", style="bold"))
        title.append_text(plain(names[1], style="bold green", max_chars=120))
        title.append_text(plain(f" ({right.short_id})", style="bold"))
        if self._details is not None:
            sizes = [detail.layers.total_size for detail in self._details]
            delta = signed_size(sizes[1] - sizes[0])
            title.append("\n")
            title.append_text(plain(f"A {human_size(sizes[0])} · B {human_size(sizes[1])} · B - A {delta}"))
        return title

    # Details, layers and config.

    @work(group="compare-details", exclusive=True)
    async def _load(self) -> None:
        left, right = self._summaries
        try:
            details = await self._source.image_detail(left), await self._source.image_detail(right)
        except Exception as error:  # any failure is shown; a worker that raises would end the app
            self.post_message(CompareFailed(Problem.of(error)))
            return
        self.post_message(CompareDetailsReady(*details))
        if self._snapshot is not None:
            try:
                contexts = [await self._source.image_context(summary, self._snapshot) for summary in (left, right)]
            except Exception:  # the base is a nicety: the poll reports a daemon that went away
                self.post_message(CompareBaseFound(()))
                return
            shared = len(compare_layers(*details).shared)
            bases = [context.base for context in contexts if context.base and context.base.layer_count <= shared]
            best = max(bases, key=lambda base: base.layer_count, default=None)
            self.post_message(CompareBaseFound(best.names if best else ()))

    def on_compare_details_ready(self, message: CompareDetailsReady) -> None:
        self._details = (message.left, message.right)
        self._layers = compare_layers(message.left, message.right)
        self.query_one("#compare-title", Static).update(self._title())
        self._show_layers(base=None)
        self._show_config(compare_config(message.left, message.right))
        pane = self.query_one(TabbedContent).active.removesuffix("-tab")
        if pane == "files":
            self._start_files()
        self.action_pane(pane)

    def on_compare_base_found(self, message: CompareBaseFound) -> None:
        self._show_layers(base=message.names)

    def _show_layers(self, base: tuple[str, ...] | None) -> None:
        layers, details = self._layers, self._details
        if layers is None or details is None:
            return
        self.query_one("#layers-summary", Static).update(self._layers_summary(layers, details, base))
        table = self.query_one("#compare-layers", DataTable)
        if table.row_count:
            return
        instruction_width = max(20, (self.size.width - 3 - 2 * 8 - 10 - 2) // 2)
        table.add_column("#", width=3)
        table.add_column("A size", width=8)
        table.add_column(plain("A " + self.names[0], max_chars=60), width=instruction_width)
        table.add_column("B size", width=8)
        table.add_column(plain("B " + self.names[1], max_chars=60), width=instruction_width)
        for layer in layers.shared:
            cells = _layer_cells(layer, "dim")
            table.add_row(Text(f"{layer.index + 1}", style="dim"), *cells, *cells)
        if layers.diverges_at is not None:
            where = "no layer in common" if not layers.shared else f"they diverge at layer {layers.diverges_at + 1}"
            table.add_row(
                Text("──", style="yellow"),
                Text(""),
                Text(f"▼ {where}", style="bold yellow"),
                Text(""),
                Text(f"▼ {where}", style="bold yellow"),
            )
        for offset in range(max(len(layers.left_only), len(layers.right_only))):
            left = layers.left_only[offset] if offset < len(layers.left_only) else None
            right = layers.right_only[offset] if offset < len(layers.right_only) else None
            table.add_row(
                Text(f"{len(layers.shared) + offset + 1:d}"), *_layer_cells(left, "red"), *_layer_cells(right, "green")
            )

    def _layers_summary(
        self, layers: LayerComparison, details: tuple[ImageDetail, ImageDetail], base: tuple[str, ...] | None
    ) -> Text:
        line = Text()
        if layers.diverges_at is None:
            line.append(f"The same {counted(len(layers.shared), 'layer')}", style="bold")
        elif not layers.shared:
            line.append("No layer in common: the images are unrelated", style="bold")
        else:
            line.append(f"{counted(len(layers.shared), 'layer')} shared", style="bold")
            line.append(f", then they diverge at layer {layers.diverges_at + 1}", style="bold yellow")
        if layers.shared:
            line.append(" · shared base: ")
            left_chain, right_chain = (len(detail.chain) for detail in details)
            if left_chain == len(layers.shared) or right_chain == len(layers.shared):
                side = 0 if left_chain == len(layers.shared) else 1
                line.append_text(plain(self.names[side], style="blue", max_chars=120))
                line.append(f" ({'A' if side == 0 else 'B'} itself)")
            elif base is None:
                line.append("working it out…", style="dim")
            elif base:
                line.append_text(plain(", ".join(base), style="blue", max_chars=200))
            else:
                line.append("no local image", style="dim")
        left_size = sum(layer.size for layer in layers.left_only)
        right_size = sum(layer.size for layer in layers.right_only)
        line.append(
            f"\nA adds {counted(len(layers.left_only), 'layer')} ({human_size(left_size)}) · "
            f"B adds {counted(len(layers.right_only), 'layer')} ({human_size(right_size)}) · "
        )
        line.append_text(plain(f"size delta B - A: {signed_size(layers.size_delta)}", style="bold"))
        return line

    def _show_config(self, changes: list[ConfigChange]) -> None:
        summary = Text()
        if not changes:
            summary.append("The configs are the same", style="bold")
        else:
            counts = {kind: sum(1 for change in changes if change.change is kind) for kind in ChangeType}
            summary.append(f"{counted(len(changes), 'difference')}: ", style="bold")
            summary.append(f"+{counts[ChangeType.ADDED]:d} added ", style="green")
            summary.append(f"~{counts[ChangeType.CHANGED]:d} changed ", style="yellow")
            summary.append(f"-{counts[ChangeType.REMOVED]:d} removed", style="red")
        self.query_one("#config-summary", Static).update(summary)
        table = self.query_one("#compare-config", DataTable)
        value_width = max(20, (self.size.width - 1 - 12 - 28 - 10 - 2) // 2)
        table.add_column("", width=1)
        table.add_column("Field", width=12)
        table.add_column("Key", width=28)
        table.add_column("A (old)", width=value_width)
        table.add_column("B (new)", width=value_width)
        for change in changes:
            mark, color = MARKS[change.change]
            table.add_row(
                Text(mark, style=f"bold {color}"),
                plain(change.field, style="bold"),
                plain(change.key, max_chars=80),
                _value(change.before, "red"),
                _value(change.after, "green"),
            )

    # Files.

    @on(TabbedContent.TabActivated)
    def _pane_shown(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()
        if event.pane.id == "files-tab" and self._details is not None:
            self._start_files()

    def _start_files(self) -> None:
        if self._reading or self._compared is not None:
            return
        if not self._source.capabilities.layer_contents:
            host = sanitize(self._source.host)
            self._files_message(Text(f"{host} cannot list what is inside layers.", style="yellow"))
            return
        self._reading = True
        self.set_timer(0.15, self._show_progress)
        self._read_files()

    def _show_progress(self) -> None:
        if self._compared is None and self._reading:
            self.query_one("#compare-progress").display = True

    def _files_message(self, text: Text) -> None:
        self.query_one("#files-summary", Static).update(text)

    @work(group="compare-files", exclusive=True)
    async def _read_files(self) -> None:
        assert self._details is not None and self._layers is not None
        try:
            ours, theirs = await read_both_layers(
                self._source,
                *self._details,
                self._layers,
                cancel=self._cancel,
                on_progress=self._report,
                on_side=self._on_side,
            )
            left, right = await asyncio.to_thread(_compared_images, self._details, ours, theirs, self._layers)
            # In proportion to both images' paths: off the event loop.
            shared = len(self._layers.shared)
            compared = await asyncio.to_thread(lambda: ComparedFiles(compare_final(left.final, right.final, shared)))
        except ReadCancelled:
            return
        except Exception as error:  # any failure is shown; a worker that raises would end the app
            self.post_message(CompareFailed(Problem.of(error)))
            return
        self.post_message(CompareFilesReady(left, right, compared))

    def _on_side(self, side: str) -> None:
        self._reading_side = side

    def _report(self, progress: ReadProgress) -> None:
        """Called in the reading thread: post a message now and then, never touch a widget."""
        if self._throttle.due(progress.layers_done == progress.layer_count):
            self.post_message(ContentsProgress(progress))

    def on_contents_progress(self, message: ContentsProgress) -> None:
        bar = self.query_one("#compare-progress-bar", ProgressBar)
        label = self.query_one("#compare-progress-label", Static)
        show_read_progress(bar, label, message.progress, f"{self._reading_side}'s layers")

    def _tell_cache_problem(self) -> None:
        tell_cache_problem(self.app, self._source)

    def on_compare_failed(self, message: CompareFailed) -> None:
        self._reading = False
        self._tell_cache_problem()
        problem = message.problem
        self.app.notify(
            sanitize(f"{problem.headline}: {problem.reason}"),
            title="Could not compare the images",
            severity="error",
            markup=False,
        )
        if self._details is None:
            self.dismiss()
            return
        self.query_one("#compare-progress").display = False
        self._files_message(plain(f"{problem.headline}: {problem.reason}", style="red"))

    def on_compare_files_ready(self, message: CompareFilesReady) -> None:
        self._reading = False
        self._tell_cache_problem()
        self._files = (message.left, message.right)
        self._compared = message.compared
        self.query_one("#compare-progress").display = False
        tree = self.query_one(FileTree)
        tree.display = True
        self._show_files()
        if self.query_one(TabbedContent).active == "files-tab":
            self.set_focus(tree)

    def _show_files(self) -> None:
        compared = self._compared
        if compared is None:
            return
        view = compared.view(self._filter)
        self.query_one(FileTree).show_view(view, self._order)
        summary = Text.assemble(("Files: ", "bold"))
        if not compared.by_path:
            summary.append("the final filesystems are the same")
        else:
            summary.append(f"+{compared.counts[ChangeType.ADDED]:d} added ", style="green")
            summary.append(f"~{compared.counts[ChangeType.CHANGED]:d} modified ", style="yellow")
            summary.append(f"-{compared.counts[ChangeType.REMOVED]:d} removed", style="red")
            summary.append_text(
                plain(f" · B - A {signed_size(compared.size_delta)} · Enter on a modified file shows its diff")
            )
        notes = [f"sort: {'size of the change' if self._order is SortOrder.SIZE else 'name'}"]
        if self._filter:
            notes.append(f"{view.matches} paths match")
        summary.append("\n")
        summary.append_text(plain(" · ".join(notes), style="dim"))
        self._files_message(summary)

    # Keys.

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Sort, filter and Enter belong to the files pane."""
        if not self.is_mounted:
            return True
        if action in ("sort", "filter"):
            return self.query_one(TabbedContent).active == "files-tab"
        if action == "diff":
            return self.focused is self.query_one(FileTree)
        return True

    def action_close(self) -> None:
        if self._reading:
            self._cancel.set()
            self.app.notify("Reading the layers was cancelled.", markup=False)
        self.dismiss()

    def action_pane(self, pane: str) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = f"{pane}-tab"
        target = {"layers": "#compare-layers", "config": "#compare-config", "files": "#compare-files"}[pane]
        widget = self.query_one(target)
        if widget.display:
            self.set_focus(widget)

    def action_sort(self) -> None:
        self._order = SortOrder.SIZE if self._order is SortOrder.NAME else SortOrder.NAME
        self._show_files()

    def action_filter(self) -> None:
        if self._compared is None:
            return
        self.query_one(FilterInput).open()

    @on(FilterInput.Changed)
    def _filter_changed(self, event: FilterInput.Changed) -> None:
        self._filter = event.value
        self._show_files()

    def action_diff(self) -> None:
        from dockerscope.ui.file_diff_screen import FileDiffScreen

        tree = self.query_one(FileTree)
        node = tree.cursor_node
        if node is None or node.data is None or self._compared is None or self._files is None:
            return
        if node.allow_expand:
            node.toggle()
            return
        difference = self._compared.by_path.get(node.data.path)
        if (
            difference is None
            or difference.change is not ChangeType.CHANGED
            or difference.before is None
            or difference.after is None
            or difference.before.type not in READABLE
            or difference.after.type not in READABLE
        ):
            self.app.notify("Enter shows the diff of a modified file (~).", markup=False)
            return
        if not self._source.capabilities.file_contents:
            self.app.notify(sanitize(f"{self._source.host} cannot read file contents."), markup=False)
            return
        assert self._details is not None
        self.app.push_screen(FileDiffScreen(self._source, difference.path, self._files, self.names))


def _compared_images(
    details: tuple[ImageDetail, ImageDetail],
    left: Sequence[tuple[str, LayerListing]],
    right: Sequence[tuple[str, LayerListing]],
    layers: LayerComparison,
) -> tuple[ComparedImage, ComparedImage]:
    """Both final filesystems, the shared layers replayed once."""
    ours, theirs = final_filesystems(left, right, len(layers.shared))
    return ComparedImage(details[0].id, ours, len(left) - 1), ComparedImage(details[1].id, theirs, len(right) - 1)


def _layer_cells(layer: ComparedLayer | None, style: str) -> tuple[Text, ...]:
    """A layer's size and instruction; two empty cells for no layer."""
    if layer is None:
        return Text(""), Text("")
    instruction = plain(layer.instruction or "(not in the history)", style=style, max_chars=200)
    return Text(human_size(layer.size), justify="right", style=style), instruction


def _value(value: str | None, style: str) -> Text:
    if value is None:
        return Text("")
    return plain(value, style=style, max_chars=VALUE_CHARS)
