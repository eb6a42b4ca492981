"""A bordered pane of the explorer: the unit `z` zooms to the whole screen (Textual's maximize)."""

from __future__ import annotations

from textual.containers import Vertical


class Pane(Vertical):
    """A list, the inspect tree or the layers, with its title in the border."""

    ALLOW_MAXIMIZE = True
