"""What the screens that read layers share: progress messages from the reading thread spaced out,
the progress bar and its line, and the one notice that the layer cache is not used."""

from __future__ import annotations

import time

from textual.app import App
from textual.widgets import ProgressBar, Static

from dockerscope.sanitize import sanitize
from dockerscope.service import ImageSource, ReadProgress
from dockerscope.ui.format import human_size, plain

# Progress messages from a reading thread are spaced at least this far apart.
PROGRESS_INTERVAL = 0.05


class ProgressThrottle:
    """Says when a reading thread's progress is worth a message: every PROGRESS_INTERVAL at most,
    and always the last report."""

    def __init__(self) -> None:
        self._last = 0.0

    def due(self, last: bool = False) -> bool:
        now = time.monotonic()
        if last or now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            return True
        return False


def show_read_progress(bar: ProgressBar, label: Static, progress: ReadProgress, what: str = "layers") -> None:
    """The bar (when the total is known) and `reading layers: 3 of 8 · 310MB of about 1.06GB`."""
    if progress.bytes_total:
        bar.update(total=progress.bytes_total, progress=min(progress.bytes_done, progress.bytes_total))
    text = f"reading {what}: {progress.layers_done} of {progress.layer_count} · {human_size(progress.bytes_done)}"
    if progress.bytes_total:
        text += f" of about {human_size(progress.bytes_total)}"
    label.update(plain(text))


def tell_cache_problem(app: App[object], source: ImageSource) -> None:
    """Once per run: the disk cache is not used (its directory is not the user's alone)."""
    if (problem := source.take_cache_problem()) is not None:
        app.notify(sanitize(problem), title="Layer cache", severity="warning", markup=False)
