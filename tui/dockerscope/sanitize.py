"""The one function every daemon-supplied string passes through before it reaches the terminal."""

from __future__ import annotations

import re

# Characters shown as escapes rather than written out:
# - C0 controls, DEL, C1 controls, lone surrogates: written to a terminal they can move the
#   cursor, clear or retitle the screen, write the clipboard (OSC 52), or fail to encode at all;
# - every Unicode format character (category Cf: soft hyphen, bidi marks, overrides and isolates,
#   zero-width space, joiners, word joiner, BOM, interlinear annotations, tag characters…) and the
#   line and paragraph separators: they reorder text or are invisible, so `nginx\u200b:latest`
#   would look like `nginx:latest`;
# - characters that draw nothing although they are not format characters: the combining grapheme
#   joiner, Hangul fillers, Mongolian and Unicode variation selectors.
_UNSAFE = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\u3164\ud800-\udfff\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e0fff"
    "]"
)

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def sanitize(value: object, max_chars: int | None = None) -> str:
    """Make `value` safe to show on one terminal line.

    Control, format and invisible characters become visible escapes (``ESC`` shows as ``\\x1b``,
    a zero-width space as ``\\u200b``), so a hostile label is displayed literally and can never
    drive the terminal or pass for another name. The result holds only characters that are safe
    as they are, so sanitising it again changes nothing. With `max_chars`, longer text is cut and
    ends in an ellipsis that says how much was left out.
    """
    text = value if isinstance(value, str) else str(value)
    if max_chars is not None and len(text) > max_chars:
        hidden = len(text) - max_chars
        text = f"{text[:max_chars]}… (+{hidden:,} chars)"
    return _UNSAFE.sub(_escape, text)
