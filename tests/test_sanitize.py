"""Daemon strings are made terminal-safe by `sanitize`, displayed through `plain`, and sizes are
printed as the docker CLI prints them."""

from __future__ import annotations

import enum

import pytest
from rich.text import Text

from dockerscope.sanitize import sanitize
from dockerscope.ui.format import human_size, plain


def _has_control(text: str) -> bool:
    return any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in text)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("a\x9bb", "a\\x9bb"),
        ("\x9b2J", "\\x9b2J"),
        ("\x85next line", "\\x85next line"),
        ("del\x7f", "del\\x7f"),
        ("nul\x00byte", "nul\\x00byte"),
        ("\x08\x0b\x0c", "\\x08\\x0b\\x0c"),
        ("line1\nline2", "line1\\nline2"),
        ("col1\tcol2", "col1\\tcol2"),
        ("carriage\rreturn", "carriage\\rreturn"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("\u2066isolate\u2069", "\\u2066isolate\\u2069"),
        ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("\udfff", "\\udfff"),
    ],
)
def test_control_and_bidi_characters_become_visible_escapes(value: str, shown: str) -> None:
    result = sanitize(value)

    assert result == shown
    assert not _has_control(result)
    result.encode("utf-8")


def test_lone_surrogate_result_encodes_to_utf8() -> None:
    with pytest.raises(UnicodeEncodeError):
        "\ud800".encode()

    assert sanitize("x\ud800y").encode("utf-8") == b"x\\ud800y"


def test_rich_markup_is_left_unchanged() -> None:
    assert sanitize("[bold red]x[/bold red]") == "[bold red]x[/bold red]"
    assert sanitize("[link=http://x]y[/link]") == "[link=http://x]y[/link]"


@pytest.mark.parametrize("text", ["café é", "日本語のイメージ", "🐳 whale 👩💻", "Ελληνικά", "\u00a0nbsp"])
def test_ordinary_unicode_is_untouched(text: str) -> None:
    assert sanitize(text) == text


def test_zero_width_joiners_are_shown_even_inside_emoji() -> None:
    # A joiner draws nothing: `nginx\u200d:latest` would pass for `nginx:latest`.
    assert sanitize("👩\u200d💻 a\u200db") == "👩\\u200d💻 a\\u200db"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (42, "42"),
        (1.5, "1.5"),
        (None, "None"),
        (True, "True"),
        (["a", 1], "['a', 1]"),
        (b"\x1b[2J", "b'\\x1b[2J'"),
    ],
)
def test_non_string_values_are_converted(value: object, shown: str) -> None:
    assert sanitize(value) == shown


def test_object_with_hostile_str_is_escaped() -> None:
    class Hostile:
        def __str__(self) -> str:
            return "\x1b]0;pwned\x07"

    assert sanitize(Hostile()) == "\\x1b]0;pwned\\x07"


def test_truncation_says_how_many_chars_were_cut() -> None:
    assert sanitize("abcdefghij", max_chars=4) == "abcd… (+6 chars)"
    assert sanitize("x" * 1_000_000, max_chars=10) == "x" * 10 + "… (+999,990 chars)"


def test_no_truncation_at_or_under_the_limit() -> None:
    assert sanitize("abcd", max_chars=4) == "abcd"
    assert sanitize("abc", max_chars=4) == "abc"
    assert sanitize("abcd" * 1000) == "abcd" * 1000


def test_truncated_text_is_still_sanitized() -> None:
    result = sanitize("\x1b[2J" * 10, max_chars=5)

    assert result == "\\x1b[2J\\x1b… (+35 chars)"
    assert "\x1b" not in result


def test_plain_keeps_markup_literal_and_strips_controls() -> None:
    text = plain("[bold red]x[/bold red]\x1b[31m\n")

    assert isinstance(text, Text)
    assert text.plain == "[bold red]x[/bold red]\\x1b[31m\\n"
    assert text.spans == []
    assert not _has_control(text.plain)


def test_plain_applies_only_the_given_base_style() -> None:
    text = plain("[link=http://x]y[/link]", style="green")

    assert text.plain == "[link=http://x]y[/link]"
    assert text.spans == []
    assert text.style == "green"
    assert text.no_wrap is True


def test_plain_non_string_and_truncation() -> None:
    assert plain(1234).plain == "1234"
    assert plain("y" * 600).plain == "y" * 500 + "… (+100 chars)"
    assert plain("y" * 600, max_chars=None).plain == "y" * 600


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0B"),
        (9, "9B"),
        (999, "999B"),
        (1000, "1kB"),
        (1001, "1kB"),
        (3216, "3.22kB"),
        (23_456, "23.5kB"),
        (300_000, "300kB"),
        (1_982_256, "1.98MB"),
        (2_285_509, "2.29MB"),
        (123_456_789, "123MB"),
        (1_141_463_139, "1.14GB"),
        (1_500_000_000, "1.5GB"),
        (2_000_000_000_000, "2TB"),
    ],
)
def test_human_size_matches_docker_cli(size: int, shown: str) -> None:
    assert human_size(size) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("soft\xadhyphen", "soft\\xadhyphen"),
        ("\ufeffbom", "\\ufeffbom"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("tag\U000e0041\U000e007f", "tag\\U000e0041\\U000e007f"),
        ("\U0001d173beam", "\\U0001d173beam"),
    ],
)
def test_invisible_characters_show_as_escapes_as_wide_as_their_code_point(value: str, shown: str) -> None:
    """`\\x` up to U+00FF, `\\u` up to U+FFFF, `\\U` above: each escape reads back as the character."""
    assert sanitize(value) == shown
    assert shown.encode().decode("unicode_escape") == value


def test_a_string_valued_enum_shows_its_value() -> None:
    class Kind(str, enum.Enum):
        LAYER = "layer\x1b"

    assert sanitize(Kind.LAYER) == "layer\\x1b"
