"""Decoding a daemon's JSON answer without holding the GIL for the whole of a long list.

`json.loads` is one C call: on an image list of 200,000 entries it holds the GIL for about a second,
and the UI's event loop, in another thread, cannot answer a key meanwhile. A top-level array is
decoded here one element at a time instead, which lets other threads run between elements; the
result, and the errors, are those of `json.loads`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import requests

from dockerscope.service.layer_files import gc_paused

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def loads(data: bytes | str) -> Any:
    """What `json.loads(data)` gives, decoding a top-level array element by element."""
    # Bytes that are not UTF-8 read as U+FFFD, as requests' own `json()` reads them in the end.
    text = data.decode(json.detect_encoding(data), "replace") if isinstance(data, bytes) else data
    position = _skip_whitespace(text, 0)
    if not text.startswith("[", position):
        return json.loads(text)
    with gc_paused():
        return _elements(text, _skip_whitespace(text, position + 1))


def _elements(text: str, position: int) -> list[Any]:
    """The elements of the array whose first element (or end) is at `position`."""
    elements: list[Any] = []
    if text.startswith("]", position):
        return _end(text, position + 1, elements)
    while True:
        element, position = _DECODER.raw_decode(text, position)
        elements.append(element)
        position = _skip_whitespace(text, position)
        if text.startswith("]", position):
            return _end(text, position + 1, elements)
        if not text.startswith(",", position):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, position)
        position = _skip_whitespace(text, position + 1)


def _skip_whitespace(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position


def _end(text: str, position: int, elements: list[Any]) -> list[Any]:
    position = _skip_whitespace(text, position)
    if position != len(text):
        raise json.JSONDecodeError("Extra data", text, position)
    return elements


def decode_in_pieces(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """A requests response hook: docker-py decodes answers with `response.json()`, which then
    decodes through `loads` (and fails with json's JSONDecodeError, a ValueError like requests')."""
    response.json = lambda **_: loads(response.content)  # type: ignore[method-assign]
