"""Property tests on what image authors and daemons choose: the sanitiser, the instruction cleaner
and the history mapping take any input, end quickly and keep their promises."""

from __future__ import annotations

import time
import unicodedata

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dockerscope.sanitize import sanitize
from dockerscope.service.layers import clean_instruction, map_history
from dockerscope.service.models import LayerKind

FUZZ = settings(max_examples=300, deadline=1000, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

# Characters that draw nothing although Unicode does not call them format characters.
INVISIBLE_LETTERS = "\u034f\u115f\u1160\u3164\uffa0\u180b\u180c\u180d\ufe0f"


def _unsafe(char: str) -> bool:
    code = ord(char)
    category = unicodedata.category(char)
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or category in ("Cf", "Cs", "Zl", "Zp")
        or 0xE0000 <= code <= 0xE0FFF
        or char in INVISIBLE_LETTERS
    )


@FUZZ
@given(st.text())
@example("nginx\u200b:latest")
@example("\ufeffbom\u00adsoft\u2060joiner\U000e0041tag\u2028line")
@example("\x1b]52;c;cHduZWQ=\x07\x1bc\x9b2J")
def test_sanitized_text_holds_no_control_format_or_invisible_character(value: str) -> None:
    shown = sanitize(value)
    assert not [char for char in shown if _unsafe(char)]
    shown.encode("utf-8")  # no lone surrogate left: encodes strictly


@FUZZ
@given(st.text())
def test_sanitizing_twice_changes_nothing(value: str) -> None:
    once = sanitize(value)
    assert sanitize(once) == once


def test_invisible_characters_are_shown_so_lookalike_names_differ() -> None:
    assert sanitize("nginx\u200b:latest") == "nginx\\u200b:latest"
    assert sanitize("a\ufeffb\u00adc\u2060d") == "a\\ufeffb\\xadc\\u2060d"
    assert sanitize("tag\U000e0041") == "tag\\U000e0041"
    assert sanitize("x\u2028y") == "x\\u2028y"
    assert sanitize("\u3164") == "\\u3164"
    # Ordinary text outside ASCII stays as it is.
    assert sanitize("café 日本 ☃ ß") == "café 日本 ☃ ß"


def test_a_huge_build_arg_count_does_not_freeze_the_cleaner() -> None:
    started = time.perf_counter()
    assert clean_instruction("|999999 A=1 /bin/sh -c echo hi") == "RUN "
    assert clean_instruction("|2 A=1 B=2 /bin/sh -c echo hi") == "RUN echo hi"
    long_count = "|" + "9" * 5000 + " A=1 /bin/sh -c echo"
    assert clean_instruction(long_count).startswith("RUN |999")
    assert clean_instruction("|999999 " + "a " * 200_000).startswith("RUN")
    assert time.perf_counter() - started < 1.0


@FUZZ
@given(st.text(alphabet=st.sampled_from(" |#()/:=-\tabcRUNCOPYWORKDIR0123456789nop"), max_size=400))
def test_the_cleaner_ends_quickly_on_any_command(created_by: str) -> None:
    assert isinstance(clean_instruction(created_by), str)


def test_the_cleaner_is_linear_on_long_commands() -> None:
    started = time.perf_counter()
    for command in ("a " * 500_000, "/bin/sh -c " + "x" * 1_000_000, "a\t" * 300_000 + "#(nop) CMD x"):
        clean_instruction(command)
    assert time.perf_counter() - started < 2.0


# Any JSON value a daemon could put in a history field.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
history_entries = st.dictionaries(
    st.sampled_from(["Created", "CreatedBy", "Size", "Comment", "Id", "Tags"]), json_values
) | st.fixed_dictionaries(
    {
        "Created": st.integers(min_value=-(2**70), max_value=2**70) | st.floats(),
        "CreatedBy": st.sampled_from(["RUN x", "/bin/sh -c #(nop)  ENV A=1", "COPY a b # buildkit", "", "|3 a"]),
        "Size": st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=5),
    }
)
diff_id_lists = st.lists(st.sampled_from([f"sha256:{digit * 64}" for digit in "0123456789abcdef"]), max_size=8)


@FUZZ
@given(st.lists(history_entries | json_values, max_size=12), diff_id_lists)
def test_any_history_maps_onto_the_layers_without_an_error(history: list[object], diff_ids: list[str]) -> None:
    stack = map_history(history, diff_ids)  # type: ignore[arg-type]
    assert len(stack.rows) == len(history)
    assert stack.layer_count == len(diff_ids)
    placed = [row.layer_index for row in stack.rows if row.layer_index is not None]
    assert len(placed) == len(set(placed))  # no layer is given to two entries
    assert all(0 <= index < len(diff_ids) for index in placed)
    for row in stack.rows:
        assert row.size >= 0
        assert row.kind is not LayerKind.EMPTY or row.layer_index is None
        if row.layer_index is not None:
            assert row.diff_id == diff_ids[row.layer_index]
