"""The one function every daemon-supplied string passes through before it reaches the terminal."""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, Unicode bidi overrides/isolates and lone surrogates. Any of these
# written to a terminal can move the cursor, clear or retitle the screen, reorder text, or fail to
# encode at all.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def sanitize(value: object, max_chars: int | None = None) -> str:
    """Make `value` safe to show on one terminal line.

    Control characters become visible escapes (``ESC`` shows as ``\\x1b``), so a hostile label is
    displayed literally and can never drive the terminal. With `max_chars`, longer text is cut and
    ends in an ellipsis that says how much was left out.
    """
    text = value if isinstance(value, str) else str(value)
    if max_chars is not None and len(text) > max_chars:
        hidden = len(text) - max_chars
        text = f"{text[:max_chars]}… (+{hidden:,} chars)"
    return _UNSAFE.sub(_escape, text)
