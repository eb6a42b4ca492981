"""The pure parts of the file view: what bytes are (magic, text or binary), hex lines, text lines,
the lexer a name or a `#!` line chooses, and highlighting that keeps every line's text."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.text import Text

from dockerscope.ui.file_view_screen import (
    LINE_CHARS,
    HexLines,
    TextLines,
    choose_lexer,
    hex_line,
    highlight,
    line_text,
    looks_binary,
    mib,
    shebang_lexer,
    sniff_type,
    text_lines,
)


def elf_header(elf_class: int, order: int, kind: int, machine: int) -> bytes:
    endian = "<" if order == 1 else ">"
    return b"\x7fELF" + bytes([elf_class, order, 1]) + b"\x00" * 9 + struct.pack(f"{endian}HH", kind, machine)


def tar_bytes() -> bytes:
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as archive:
        info = tarfile.TarInfo("a.txt")
        archive.addfile(info, io.BytesIO(b""))
    return payload.getvalue()


def zip_bytes() -> bytes:
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as archive:
        # A fixed date: pytest-xdist workers must collect the same parameters.
        archive.writestr(zipfile.ZipInfo("META-INF/MANIFEST.MF", (2020, 1, 1, 0, 0, 0)), "Manifest-Version: 1.0\n")
    return payload.getvalue()


MAGIC_CASES = [
    (elf_header(2, 1, 3, 0x3E), "ls", "ELF 64-bit LSB shared object or PIE executable, x86-64"),
    (elf_header(2, 1, 2, 0xB7), "busybox", "ELF 64-bit LSB executable, AArch64"),
    (elf_header(1, 2, 1, 0x08), "x.o", "ELF 32-bit MSB relocatable, MIPS"),
    (elf_header(2, 1, 3, 0x9999), "odd", "ELF 64-bit LSB shared object or PIE executable, machine 0x9999"),
    (b"\x7fELF\x02", "short", "ELF"),
    (gzip.compress(b"x", mtime=0), "a.gz", "gzip compressed data"),
    (b"\x28\xb5\x2f\xfd\x00", "a.zst", "Zstandard compressed data"),
    (zip_bytes(), "app.jar", "Java archive (zip)"),
    (zip_bytes(), "a.zip", "zip archive"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x00\x80", "a.png", "PNG image, 256 x 128"),
    (b"\xff\xd8\xff\xe0", "a.jpg", "JPEG image"),
    (tar_bytes(), "a.tar", "tar archive"),
    (b"#!/usr/bin/env python3\nprint()\n", "tool", "script (/usr/bin/env python3)"),
    (b"TZif2\x00", "UTC", "timezone data (TZif)"),
    (b"hello", "a.txt", None),
    (b"", "empty", None),
]


@pytest.mark.parametrize(("data", "name", "kind"), MAGIC_CASES, ids=[name for _, name, _ in MAGIC_CASES])
def test_the_type_comes_from_the_magic_bytes(data: bytes, name: str, kind: str | None) -> None:
    assert sniff_type(data, name) == kind


def test_text_and_binary() -> None:
    assert not looks_binary(b"")
    assert not looks_binary("naïve ✓ 日本\n".encode())
    assert looks_binary(b"text\x00more")
    assert looks_binary(bytes(range(128, 256)) * 4)
    # A few bad bytes in a long text (Latin-1 in a config file) keep it text: shown with U+FFFD.
    assert not looks_binary(b"caf\xe9 " + b"x" * 1000)
    # A character cut by the 1 MiB limit is no sign of binary data; in a whole file it is.
    cut = ("x" * 300 + "€").encode()[:-1]
    assert not looks_binary(cut, truncated=True)
    assert looks_binary(b"\xe2\x82" + b"\xff" * 3, truncated=True)


def test_text_lines_split_as_pygments_does_and_expand_tabs() -> None:
    assert text_lines(b"a\r\nb\rc\n\td\n") == ["a", "b", "c", "        d"]
    assert text_lines(b"no newline") == ["no newline"]
    assert text_lines(b"") == []
    assert text_lines(b"\xef\xbb\xbfbom\n") == ["bom"]
    assert text_lines(b"bad \xff byte") == ["bad \ufffd byte"]


def test_a_text_line_is_sanitised_and_never_markup() -> None:
    text = TextLines(["\x1b]0;pwned\x07 [red]x[/red] \u202eevil"]).line(0)
    assert text.plain == "1 │ \\x1b]0;pwned\\x07 [red]x[/red] \\u202eevil"
    assert not any(span.style == "red" for span in text.spans)


def test_long_lines_are_cut_and_say_by_how_much() -> None:
    line = "y" * (LINE_CHARS + 1234)
    assert line_text([(line, None)]).plain == "y" * LINE_CHARS + "… (+1,234 chars)"
    lines = TextLines([line, "short"])
    assert lines.width == len("y" * LINE_CHARS + "… (+1,234 chars)")
    assert lines.gutter == len("1 │ ")


def test_hex_lines() -> None:
    assert hex_line(b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"AB", 0) == (
        "00000000  7f 45 4c 46 02 01 01 00  00 00 00 00 00 00 00 00  |.ELF............|"
    )
    assert hex_line(b"\x00" * 16 + b"AB\x1b", 16) == "00000010  41 42 1b" + " " * 40 + "  |AB.|"
    dump = HexLines(bytes(range(256)) * 4096 + bytes(range(16)))
    assert dump.count == 65_537
    assert dump.line(65_536).plain.startswith("00100000  00 01 02")


@pytest.mark.parametrize(
    ("first_line", "lexer"),
    [
        ("#!/bin/sh", "bash"),
        ("#!/bin/bash -e", "bash"),
        ("#!/usr/bin/env python3", "python"),
        ("#!/usr/bin/python3.11", "python"),
        ("#!/usr/bin/env -S node --experimental", "javascript"),
        ("#!/usr/bin/perl -w", "perl"),
        ("#! /usr/bin/env ruby", "ruby"),
        ("#!/bin/unknown", None),
        ("#!", None),
        ("no shebang", None),
    ],
)
def test_the_shebang_names_the_lexer(first_line: str, lexer: str | None) -> None:
    assert shebang_lexer(first_line) == lexer


def test_the_lexer_comes_from_the_name_then_the_shebang_never_the_contents() -> None:
    def chosen(name: str, first_line: str = "") -> tuple[str, str] | None:
        found = choose_lexer(name, first_line)
        return None if found is None else (found[0].name, found[1])

    assert chosen("app.py") == ("Python", "by name")
    assert chosen("Dockerfile") == ("Docker", "by name")
    assert chosen("entrypoint", "#!/bin/sh") == ("Bash", "by #!")
    assert chosen("notes.txt", "#!/usr/bin/env python3") == ("Python", "by #!")
    assert chosen("passwd", "root:x:0:0:root:/root:/bin/sh") is None
    assert chosen("data", "<?php echo 1; ?>") is None  # content guessing would say PHP


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=40), max_size=12),
    st.sampled_from(["a.py", "a.sh", "a.json", "Makefile", "a.c", "a.yaml"]),
)
def test_highlighting_keeps_every_lines_text(lines: list[str], name: str) -> None:
    found = choose_lexer(name, "")
    assert found is not None
    highlighted = list(highlight(found[0], lines))
    # Every line the lexer gives back is that line, coloured; where its text strays, it stops.
    assert len(highlighted) <= len(lines)
    assert [text.plain for text in highlighted] == [line_text([(line, None)]).plain for line in lines][
        : len(highlighted)
    ]
    assert all(isinstance(text, Text) for text in highlighted)


def test_a_whole_file_is_highlighted() -> None:
    source = 'import os\n\n\ndef f(x):\n    """doc\n    string"""\n    return x  # done\n'
    lines = text_lines(source.encode())
    found = choose_lexer("a.py", "")
    assert found is not None
    highlighted = list(highlight(found[0], lines))
    assert [text.plain for text in highlighted] == lines
    assert any(span.style for span in highlighted[3].spans)


def test_mib() -> None:
    assert mib(1 << 20) == "1.0 MiB"
    assert mib(350 << 20) == "350 MiB"
    assert mib(int(1.94 * (1 << 20))) == "1.9 MiB"
