"""Textual's Footer without its leak of old key widgets."""

from __future__ import annotations

from textual.widgets import Footer


class KeyFooter(Footer):
    """A `Footer` that lets go of the keys it replaced.

    Footer recomposes whenever the active bindings change (every focus move, every screen shown
    again), and each new `FooterKey` data-binds `Footer.compact`: Textual appends the key and a
    setter to the footer's watcher list for `compact`, and drops closed keys from that list only
    when `compact` changes, which it never does here. So every recompose kept all the keys it
    removed alive, with their styles, render caches and message queues: RSS grew from 58 to 181 MiB
    in a 10-minute benchmarks/soak.py run. After each recompose the closed keys are dropped, as
    Textual's own check would drop them. Reported upstream, open as of Textual 8.2.8:
    https://github.com/Textualize/textual/issues/6666 (tests/test_memory.py fails if this stops
    working)."""

    async def recompose(self) -> None:
        await super().recompose()
        # Textual keeps a reactable's watchers in its private "__watchers" attribute (reactive.py).
        watchers = getattr(self, "__watchers", {}).get("compact")
        if watchers:
            watchers[:] = [(node, callback) for node, callback in watchers if not node._closing]
