"""`y` (and `Y`): text the user points at, to the terminal's clipboard.

Textual's `copy_to_clipboard` sends it as OSC 52, base64-encoded, so nothing in the text reaches
the terminal as a control sequence; the notification shows it sanitised and cut."""

from __future__ import annotations

from textual.widget import Widget

from dockerscope.sanitize import sanitize

# OSC 52 carries the whole text in one escape sequence, and terminals cap it (often far lower):
# past this, nothing is sent and the notification says why.
COPY_LIMIT = 1 << 20
# What the notification shows of the text copied.
SHOWN_CHARS = 80


def copy_text(widget: Widget, text: str, what: str) -> None:
    """Put `text` on the clipboard and say so, naming `what` it is."""
    if len(text) > COPY_LIMIT:
        message = f"{what} is {len(text):,} characters: more than a terminal's clipboard takes"
        widget.notify(sanitize(message), title="Not copied", severity="warning", markup=False)
        return
    widget.app.copy_to_clipboard(text)
    widget.notify(sanitize(f"{what}: {text}", max_chars=SHOWN_CHARS), title="Copied", markup=False)
