"""The JSON decoder that gives other threads the GIL between the elements of a long list: it must
give exactly what `json.loads` gives, and fail where it fails."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from dockerscope.service.json_answer import decode_in_pieces, loads

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=20,
)


@given(values, st.sampled_from([None, 0, 2]), st.sampled_from(["", " ", "\n\t\r "]))
def test_gives_what_json_loads_gives(value: Any, indent: int | None, around: str) -> None:
    text = around + json.dumps(value, indent=indent) + around
    assert loads(text.encode()) == json.loads(text)
    assert loads(text) == json.loads(text)


@given(st.text(alphabet='[]{},:"0123456789 .-etruflasn\\\n', max_size=30))
def test_fails_where_json_loads_fails(text: str) -> None:
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            loads(text)
    else:
        assert loads(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1 2]", "Expecting ',' delimiter: line 1 column 4 (char 3)"),
        ("[1,]", "Expecting value: line 1 column 4 (char 3)"),
        ("[1] x", "Extra data: line 1 column 5 (char 4)"),
        ("[] []", "Extra data: line 1 column 4 (char 3)"),
        ("[", "Expecting value: line 1 column 2 (char 1)"),
        ("[1", "Expecting ',' delimiter: line 1 column 3 (char 2)"),
    ],
)
def test_a_broken_list_is_refused_where_json_loads_refuses_it(text: str, message: str) -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        json.loads(text)
    assert str(caught.value) == message
    with pytest.raises(json.JSONDecodeError) as ours:
        loads(text)
    assert str(ours.value) == message


def test_bytes_in_other_encodings_and_a_bom_read_as_json_loads_reads_them() -> None:
    text = '[{"RepoTags": ["caf\u00e9:1"]}]'
    for data in (text.encode("utf-16"), text.encode("utf-8-sig"), text.encode("utf-32-le")):
        assert loads(data) == json.loads(data)


def test_bytes_that_are_not_utf8_read_as_replacement_characters() -> None:
    assert loads(b'["a\xffb"]') == ["a\ufffdb"]


def test_a_response_decodes_through_it() -> None:
    response = requests.Response()
    response._content = b'[{"Id": "a"}, {"Id": "b"}]'
    decode_in_pieces(response)
    assert response.json() == [{"Id": "a"}, {"Id": "b"}]
    response._content = b"[{]"
    with pytest.raises(ValueError, match="Expecting property name"):
        response.json()


def test_the_garbage_collector_runs_again_after_a_list_decoded_or_refused() -> None:
    """It is held off while the elements are made (a collection over a heap of 200,000 new dicts
    would hold the GIL for hundreds of milliseconds), and never left off."""
    assert loads(b"[{}, []]") == [{}, []]
    assert gc.isenabled()
    with pytest.raises(ValueError):
        loads(b"[{}, ")
    assert gc.isenabled()
