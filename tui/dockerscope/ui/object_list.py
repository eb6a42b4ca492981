"""A list of daemon objects (images, containers): rows keyed by id, sortable, filterable.

Rows are keyed by object id and updated in place, so the cursor, the scroll position, the sort
and the filter survive every refresh; when the highlighted object disappears the cursor stays at
the same height, on its neighbour."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Generic, TypeVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import var
from textual.widgets import DataTable

from dockerscope import clock
from dockerscope.ui.clipboard import copy_text

Item = TypeVar("Item")
# The messages' own type variable: a nested class cannot be generic in its outer class's.
MessageItem = TypeVar("MessageItem")

MIN_FLEXIBLE_WIDTH = 16
# More rows coming and going than this at once (a new filter, a prune) rebuild the table instead:
# DataTable takes time proportional to the table to remove one row.
MAX_IN_PLACE_CHANGES = 50
# The daemon chooses how many objects it lists, and every row costs the table time on the UI
# thread (10,000 rows: about 2 s here). A list draws at most this many, in its order; the filter
# still searches every object, and the subtitle says how many are left out.
MAX_ROWS = 2000
# Lists of more objects than this are filtered and sorted in a thread: that work grows with a number
# the daemon chooses (200,000 images: about a second here), and the app must keep answering keys.
ORDER_IN_THREAD_FROM = 5000


class ObjectList(DataTable[Text], Generic[Item]):
    # (label, key, width); the one column whose width is None takes the room the others leave.
    COLUMNS: ClassVar[tuple[tuple[str, str, int | None], ...]] = ()
    SORT_ORDERS: ClassVar[tuple[str, ...]] = ("name",)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "Sort"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("y", "copy", "Copy the full id", id="list.copy", show=False),
    ]

    # The view. Setting one shows the list again (its watcher calls refresh_rows); the filter also
    # when it is set to the value it has (always_update: the filter input cleared after `show_all`
    # cleared the filter), as cycling always changes the sort. Never on mount (init=False): the
    # first rows come with show_items. `sort_by`, not `sort_order`: a reactive must not shadow
    # Widget.sort_order.
    sort_by = var("", init=False)  # the first of SORT_ORDERS, set in __init__
    filter_text = var("", init=False, always_update=True)

    # Messages are dataclasses, as in ui/messages.py (repr=False: see there).
    @dataclass(repr=False)
    class Highlighted(Generic[MessageItem], Message):
        """The cursor is on another object (None: the list is empty)."""

        object_list: ObjectList[MessageItem]
        item: MessageItem | None

        @property
        def control(self) -> ObjectList[MessageItem]:
            return self.object_list

    @dataclass(repr=False)
    class ViewChanged(Generic[MessageItem], Message):
        """Sort, filter or another view setting changed what is listed."""

        object_list: ObjectList[MessageItem]

        @property
        def control(self) -> ObjectList[MessageItem]:
            return self.object_list

    @dataclass(repr=False)
    class Ordered(Generic[MessageItem], Message, bubble=False):
        """A thread has filtered and sorted the objects for the refresh numbered `generation`."""

        generation: int
        wanted: list[MessageItem]
        left_out: int

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.set_reactive(ObjectList.sort_by, self.SORT_ORDERS[0])
        self._items: dict[str, Item] = {}
        self._generation = 0
        self._keep: Item | None = None
        self._visible: list[Item] = []
        self._shown: list[str] = []
        self._rendered: dict[str, tuple[Text, ...]] = {}
        self._cell_cache: dict[str, tuple[Item, datetime | None, tuple[Text, ...]]] = {}
        self._flexible_width = 0
        self.rows_left_out = 0

    # What a subclass says about its objects.
    def item_key(self, item: Item) -> str:
        raise NotImplementedError

    def cells(self, item: Item, now: datetime) -> tuple[Text, ...]:
        raise NotImplementedError

    def sort_key(self, item: Item) -> tuple[object, ...]:
        raise NotImplementedError

    def cells_expire(self, item: Item, now: datetime) -> datetime | None:
        """When the cells of an unchanged object may read differently (a relative time); None:
        never."""
        return None

    def matches(self, item: Item, needle: str) -> bool:
        raise NotImplementedError

    def listed(self) -> Callable[[Item], bool] | None:
        """Beyond the text filter: which objects may be listed at all (e.g. no dangling images);
        None: every one. Asked once an order, as reading a view setting (a reactive) for every
        object would cost more than the filter itself."""
        return None

    def view_notes(self) -> list[str]:
        """Words for the pane's subtitle about what the view hides."""
        notes = ["filtered"] if self.filter_text else []
        if self.rows_left_out:
            notes.append(f"{self.rows_left_out:,} more not shown (filter to find them)")
        return notes

    @property
    def visible_items(self) -> list[Item]:
        return list(self._visible)

    @property
    def highlighted_item(self) -> Item | None:
        if not 0 <= self.cursor_row < len(self._visible):
            return None
        return self._visible[self.cursor_row]

    def action_copy(self) -> None:
        item = self.highlighted_item
        if item is not None:
            copy_text(self, self.item_key(item), "full id")

    def find(self, key: str) -> Item | None:
        """The object with this key, listed or not."""
        return self._items.get(key)

    def on_mount(self) -> None:
        self._add_columns()

    def _flexible_column_width(self) -> int:
        fixed = sum(width or 0 for _, _, width in self.COLUMNS)
        padding = 2 * self.cell_padding * len(self.COLUMNS)
        return max(MIN_FLEXIBLE_WIDTH, self.scrollable_content_region.width - fixed - padding - 1)

    def _add_columns(self) -> None:
        self._flexible_width = self._flexible_column_width()
        for label, key, width in self.COLUMNS:
            self.add_column(label, key=key, width=width or self._flexible_width)

    def on_resize(self) -> None:
        if self._flexible_column_width() == self._flexible_width:
            return
        # The same rows in the same order, in columns of the new widths: nothing to sort again.
        self._keep = self.highlighted_item
        self.clear(columns=True)
        self._add_columns()
        self._shown = []
        self._rendered = {}
        self._show_order(self._visible, self.rows_left_out)

    def show_items(self, items: Sequence[Item]) -> None:
        self._items = {self.item_key(item): item for item in items}
        for key in self._cell_cache.keys() - self._items.keys():
            del self._cell_cache[key]
        self.refresh_rows()

    def move_to(self, key: str) -> bool:
        """Put the cursor on the object with this key, if it is listed."""
        if key not in self._shown:
            return False
        self.move_cursor(row=self._shown.index(key), scroll=True)
        return True

    def refresh_rows(self, keep: Item | None = None) -> None:
        """Show the listed objects in order, changing only the rows that changed.

        Rows of objects that came or went are added or removed, rows whose cells changed are
        updated, and the rows are put back in order; the table is rebuilt only when most of it
        changes (a new filter). The cursor stays on its object (or `keep`) at the same height on
        screen, or when that object is gone, on its neighbour. A long list is ordered in a thread
        and shown when that is done, unless another refresh came meanwhile."""
        self._generation += 1
        if keep is not None:
            self._keep = keep  # until an order is shown: a refresh meanwhile must not lose it
        items = list(self._items.values())
        needle = self.filter_text.lower()
        if len(items) < ORDER_IN_THREAD_FROM:
            self._show_order(*self._order(items, needle))
            return
        generation = self._generation

        def order() -> None:
            self.post_message(self.Ordered(generation, *self._order(items, needle)))

        self.run_worker(order, thread=True, group="order", description="order the list")

    def on_object_list_ordered(self, message: Ordered[Item]) -> None:
        if message.generation == self._generation:
            self._show_order(message.wanted, message.left_out)

    def _order(self, items: list[Item], needle: str) -> tuple[list[Item], int]:
        """The objects to list, in order and at most MAX_ROWS of them, and how many more there are."""
        listed = self.listed()
        if listed is not None:
            items = [item for item in items if listed(item)]
        if needle:
            items = [item for item in items if self.matches(item, needle)]
        wanted = sorted(items, key=self.sort_key)
        left_out = max(len(wanted) - MAX_ROWS, 0)
        del wanted[MAX_ROWS:]
        return wanted, left_out

    def _show_order(self, wanted: list[Item], left_out: int) -> None:
        keep, self._keep = self._keep, None
        now = clock.utc_now()
        self.rows_left_out = left_out
        keys = [self.item_key(item) for item in wanted]
        rows = {key: self._cells_of(key, item, now) for key, item in zip(keys, wanted, strict=True)}
        self._visible = wanted
        if keys == self._shown:
            self._update_cells(rows)
        else:
            self._reorder(keys, rows, keep)
        # Also when only the highlighted object's data changed (a new tag): the panes follow it.
        self.post_message(self.ViewChanged(self))
        self.post_message(self.Highlighted(self, self.highlighted_item))

    def _reorder(self, keys: list[str], rows: dict[str, tuple[Text, ...]], keep: Item | None) -> None:
        """Objects came, went or moved: patch the rows (or rebuild them when most changed) and
        keep the cursor on the object it followed."""
        followed = self.item_key(keep) if keep is not None else self._highlighted_key()
        old_row, old_scroll = self.cursor_row, self.scroll_y
        shown = set(self._shown)
        listed = set(keys)
        if len(shown - listed) + len(listed - shown) > MAX_IN_PLACE_CHANGES:
            self.clear()
            for key in keys:
                self.add_row(*rows[key], key=key)
            self._rendered = rows
        else:
            for key in shown - listed:
                self.remove_row(key)
                del self._rendered[key]
            self._update_cells({key: cells for key, cells in rows.items() if key in shown})
            for key in keys:
                if key not in shown:
                    self.add_row(*rows[key], key=key)
                    self._rendered[key] = rows[key]
            if [key for key in self._shown if key in listed] + [key for key in keys if key not in shown] != keys:
                self._sort_rows(keys)
        resized = shown != listed
        self._shown = keys
        if keys:
            self._place_cursor(keys, followed, old_row, old_scroll, resized)

    def _cells_of(self, key: str, item: Item, now: datetime) -> tuple[Text, ...]:
        """The row of an object, made again only when the object changed or its cells expired:
        with a thousand rows, making every row on every refresh costs more than all the rest."""
        cached = self._cell_cache.get(key)
        if cached is not None and cached[0] == item and (cached[1] is None or now < cached[1]):
            return cached[2]
        cells = self.cells(item, now)
        self._cell_cache[key] = (item, self.cells_expire(item, now), cells)
        return cells

    def forget_cells(self, *keys: str) -> None:
        """Make the rows of these objects (none named: every row) again on the next refresh
        (something the rows show besides the object changed)."""
        if not keys:
            self._cell_cache.clear()
        for key in keys:
            self._cell_cache.pop(key, None)

    def _highlighted_key(self) -> str | None:
        return self._shown[self.cursor_row] if 0 <= self.cursor_row < len(self._shown) else None

    def _update_cells(self, rows: dict[str, tuple[Text, ...]]) -> None:
        """Update the cells that changed; `_rendered` keeps the cell objects the table holds."""
        for key, cells in rows.items():
            held = list(self._rendered[key])
            for index, ((_, column, _), cell) in enumerate(zip(self.COLUMNS, cells, strict=True)):
                if held[index] is not cell and held[index] != cell:
                    self.update_cell(key, column, cell)
                    held[index] = cell
            self._rendered[key] = tuple(held)

    def _sort_rows(self, keys: list[str]) -> None:
        """Put the rows in the order of `keys`. DataTable sorts by cell values, so map each row's
        first cell (the very object the table holds) to its rank."""
        rank = {id(self._rendered[key][0]): index for index, key in enumerate(keys)}
        self.sort(self.COLUMNS[0][1], key=lambda first_cell: rank[id(first_cell)])

    def _place_cursor(
        self, keys: list[str], followed: str | None, old_row: int, old_scroll: float, resized: bool
    ) -> None:
        """Keep the followed object under the cursor, at the same height on screen; if it is gone,
        the cursor stays where it was, on the neighbour that took its place. `resized`: rows came
        or went, so the table's height is only known after the next refresh."""
        if followed in keys:
            row = keys.index(followed)
            scroll = old_scroll + row - old_row
        else:
            row = min(max(old_row, 0), len(keys) - 1)
            scroll = old_scroll
        self.move_cursor(row=row, scroll=False)
        if resized:
            # After the table has taken its new height, and after the cursor's own scroll into view.
            self.call_after_refresh(self.scroll_to, y=scroll, animate=False)
        else:
            self.scroll_to(y=scroll, animate=False)  # in the same frame as the new order

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.post_message(self.Highlighted(self, self.highlighted_item))

    def _watch_sort_by(self) -> None:
        self.refresh_rows()

    def _watch_filter_text(self) -> None:
        self.refresh_rows()

    def action_cycle_sort(self) -> None:
        orders = self.SORT_ORDERS
        self.sort_by = orders[(orders.index(self.sort_by) + 1) % len(orders)]
