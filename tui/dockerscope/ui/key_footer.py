"""Textual's Footer without its leaks of old key widgets, and without rebuilds that change nothing."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Footer

try:  # a private module of Textual: without it there is nothing to release
    from textual._styles_cache import StylesCache
except ImportError:  # pragma: no cover - a Textual that moved it
    StylesCache = None  # type: ignore[assignment,misc]

# What the footer shows: each shown binding, whether it is enabled, and its tooltip, in order.
Shown = tuple[tuple[Binding, bool, str], ...]


class KeyFooter(Footer):
    """A `Footer` that rebuilds only when the keys it shows change, and lets go of the keys it
    replaced.

    Footer recomposes whenever the screen's bindings may have changed: every focus move, every
    screen shown again, and five times as the app starts (the explorer mounts, the image list takes
    focus, its first row is highlighted), while the first data waits for the CPU; each rebuild
    mounts and styles a dozen widgets. A rebuild whose keys equal the
    ones on show is skipped: what compose yields is a function of exactly these.

    Each new `FooterKey` data-binds `Footer.compact`: Textual appends the key and a setter to the
    footer's watcher list for `compact`, and drops closed keys from that list only when `compact`
    changes, which it never does here. So every recompose kept all the keys it removed alive, with
    their styles, render caches and message queues: RSS grew from 58 to 181 MiB in a 10-minute
    benchmarks/soak.py run. After each recompose the closed keys are dropped, as Textual's own check
    would drop them. Reported upstream, open as of Textual 8.2.8:
    https://github.com/Textualize/textual/issues/6666.

    Textual also memoises `StylesCache.get_inner_outer` (an lru_cache of 1,024 entries) with each
    widget's StylesCache in the key, and a StylesCache holds its widget's rendered lines: the last
    1,024 widgets drawn stay in memory after they are removed (about 10 MiB of lines here, most of
    them footer keys). The memo is cleared after each recompose; it is rebuilt with two styles per
    widget on the next frame. tests/test_memory.py fails if either stops working."""

    _shown: Shown | None = None

    def _keys_to_show(self) -> Shown | None:
        """The bindings compose would show now; None before the screen's bindings are ready (then
        compose shows nothing)."""
        if not self._bindings_ready:
            return None
        return tuple(
            (binding, enabled, tooltip)
            for (_, binding, enabled, tooltip) in self.screen.active_bindings.values()
            if binding.show
        )

    async def recompose(self) -> None:
        if not self.is_attached:
            return
        shown = self._keys_to_show()
        if shown == self._shown:
            return
        self._shown = shown
        await super().recompose()
        # Textual keeps a reactable's watchers in its private "__watchers" attribute (reactive.py).
        watchers = getattr(self, "__watchers", {}).get("compact")
        if watchers:
            watchers[:] = [(node, callback) for node, callback in watchers if not node._closing]
        clear = getattr(getattr(StylesCache, "get_inner_outer", None), "cache_clear", None)
        if clear is not None:
            clear()
