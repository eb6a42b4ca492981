"""Tree labels for the inspect document, on a real recorded `docker image inspect` payload."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.style import Style
from rich.text import Text

from dockerscope.ui.json_labels import (
    KEY_CHARS,
    LEAF_VALUE_CHARS,
    branch_label,
    children_of,
    is_branch,
    label_for,
    leaf_label,
)

FIXTURE = Path(__file__).parent / "data" / "node-24-arm64-image-inspect.json"
HOSTILE_KEY = "\x1b]0;pwned\x07"
HOSTILE_VALUE = "[link=http://x]y[/link]"
CONSOLE = Console(color_system="truecolor", width=200)


@pytest.fixture(scope="module")
def document() -> list[Any]:
    return json.loads(FIXTURE.read_text())


@pytest.fixture
def image(document: list[Any]) -> dict[str, Any]:
    return copy.deepcopy(document[0])


def _style_at(text: Text, offset: int) -> Style:
    return text.get_style_at_offset(CONSOLE, offset)


def _span_styles(text: Text) -> list[tuple[str, str]]:
    return [(text.plain[span.start : span.end], str(span.style)) for span in text.spans]


def _has_control(text: str) -> bool:
    return any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in text)


def _walk(key: str, value: Any) -> Iterator[tuple[str, Any]]:
    yield key, value
    for child_key, child in children_of(value):
        yield from _walk(child_key, child)


# --- children_of ---------------------------------------------------------------------------------


def test_top_level_keys_keep_document_order(image: dict[str, Any]) -> None:
    assert [key for key, _ in children_of(image)] == [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Parent",
        "Comment",
        "Created",
        "Container",
        "ContainerConfig",
        "DockerVersion",
        "Author",
        "Config",
        "Architecture",
        "Variant",
        "Os",
        "Size",
        "VirtualSize",
        "GraphDriver",
        "RootFS",
        "Metadata",
    ]


def test_children_of_gives_the_values(image: dict[str, Any]) -> None:
    children = dict(children_of(image))

    assert children["Id"] == "sha256:0aa8d6c867718fb692fd3d73473ecd4bc98cdf27da09daf95feea8c87d6f8ff8"
    assert children["Architecture"] == "arm64"
    assert children["Config"] is image["Config"]


def test_arrays_give_index_keys(document: list[Any], image: dict[str, Any]) -> None:
    assert [key for key, _ in children_of(document)] == ["[0]"]

    layers = children_of(image["RootFS"]["Layers"])

    assert [key for key, _ in layers] == [f"[{n}]" for n in range(11)]
    assert layers[0] == ("[0]", "sha256:c8b4a87a026bfea94bde8782061d2f30cf407ae70537aae3b493c54f0bcc6054")
    assert layers[10] == ("[10]", "sha256:a3e7c27ba5506910820903626a9988a2fc2893278dbd7898de9e5cc7a35678f5")
    assert children_of(image["Config"]["Cmd"]) == [("[0]", "node"), ("[1]", "server.js")]


def test_leaves_and_empty_branches_have_no_children(image: dict[str, Any]) -> None:
    assert children_of("arm64") == []
    assert children_of(1141463139) == []
    assert children_of(None) == []
    assert children_of(image["RepoTags"]) == []
    assert children_of(image["Config"]["ExposedPorts"]["80/tcp"]) == []


def test_is_branch(image: dict[str, Any]) -> None:
    assert is_branch(image["Config"])
    assert is_branch(image["RepoTags"])
    assert is_branch(image["Config"]["ExposedPorts"]["80/tcp"])
    assert not is_branch(image["Architecture"])
    assert not is_branch(image["Size"])
    assert not is_branch(image["Config"]["ArgsEscaped"])
    assert not is_branch(image["Config"]["Volumes"])


# --- branch labels -------------------------------------------------------------------------------


def test_object_branch_label_shows_key_count(image: dict[str, Any]) -> None:
    label = branch_label("Config", image["Config"])

    assert label.plain == "Config {19}"
    assert _style_at(label, 0).bold
    assert not _style_at(label, len("Config {")).bold
    assert _span_styles(label) == [("Config", "bold"), (" {19}", "dim")]


def test_array_branch_label_shows_item_count(image: dict[str, Any]) -> None:
    label = branch_label("Layers", image["RootFS"]["Layers"])

    assert label.plain == "Layers [11]"
    assert _span_styles(label) == [("Layers", "bold"), (" [11]", "dim")]


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        (("RepoTags",), "RepoTags [0]"),
        (("ContainerConfig",), "ContainerConfig {17}"),
        (("Config", "Env"), "Env [3]"),
        (("Config", "ExposedPorts"), "ExposedPorts {1}"),
        (("Config", "ExposedPorts", "80/tcp"), "80/tcp {0}"),
        (("GraphDriver",), "GraphDriver {2}"),
        (("GraphDriver", "Data"), "Data {4}"),
        (("RootFS",), "RootFS {2}"),
        (("Metadata",), "Metadata {1}"),
    ],
)
def test_label_for_branches(image: dict[str, Any], path: tuple[str, ...], shown: str) -> None:
    value: Any = image
    for key in path:
        value = value[key]

    assert label_for(path[-1], value).plain == shown


# --- leaf labels ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "shown", "value_text", "style"),
    [
        (("Architecture",), "Architecture: arm64", "arm64", "green"),
        (("Config", "WorkingDir"), "WorkingDir: /app", "/app", "green"),
        (("Size",), "Size: 1141463139", "1141463139", "cyan"),
        (("Config", "ArgsEscaped"), "ArgsEscaped: true", "true", "yellow"),
        (("Config", "Tty"), "Tty: false", "false", "yellow"),
        (("Config", "Volumes"), "Volumes: null", "null", "dim italic"),
        (("Parent",), 'Parent: ""', '""', "dim"),
        (("Metadata", "LastTagTime"), "LastTagTime: 0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "green"),
    ],
)
def test_leaf_labels_are_typed(
    image: dict[str, Any], path: tuple[str, ...], shown: str, value_text: str, style: str
) -> None:
    value: Any = image
    for key in path:
        value = value[key]

    label = label_for(path[-1], value)

    assert label.plain == shown
    assert _span_styles(label) == [(path[-1], "bold"), (value_text, style)]
    assert _style_at(label, 0).bold
    assert not _style_at(label, len(shown) - 1).bold


def test_leaf_value_styles_resolve_to_colours() -> None:
    string = leaf_label("Os", "linux")
    number = leaf_label("Size", 1141463139)
    boolean = leaf_label("Tty", False)
    null = leaf_label("Cmd", None)
    value_offset = len("Os: ")

    assert _style_at(string, value_offset).color == Style.parse("green").color
    assert _style_at(number, len("Size: ")).color == Style.parse("cyan").color
    assert _style_at(boolean, len("Tty: ")).color == Style.parse("yellow").color
    null_style = _style_at(null, len("Cmd: "))
    assert null_style.dim
    assert null_style.italic
    assert _style_at(string, len("Os")).color is None


def test_float_and_array_items() -> None:
    assert leaf_label("ratio", 0.25).plain == "ratio: 0.25"
    assert _span_styles(leaf_label("ratio", 0.25))[-1] == ("0.25", "cyan")
    assert label_for("[1]", "server.js").plain == "[1]: server.js"


def test_huge_string_value_is_cut_to_a_short_label() -> None:
    label = leaf_label("Blob", "x" * 1_000_000)

    assert label.plain == "Blob: " + "x" * LEAF_VALUE_CHARS + "… (+999,600 chars)"
    assert len(label.plain) < 500
    assert _span_styles(label)[-1] == ("x" * LEAF_VALUE_CHARS + "… (+999,600 chars)", "green")


def test_long_key_is_cut() -> None:
    key = "k" * 1000

    assert leaf_label(key, 1).plain == "k" * KEY_CHARS + "… (+880 chars): 1"
    assert branch_label(key, [1, 2]).plain == "k" * KEY_CHARS + "… (+880 chars) [2]"


# --- hostile keys and values ---------------------------------------------------------------------


def test_hostile_key_and_value_are_shown_literally() -> None:
    label = leaf_label(HOSTILE_KEY, HOSTILE_VALUE)

    assert label.plain == "\\x1b]0;pwned\\x07: [link=http://x]y[/link]"
    assert "\x1b" not in label.plain
    assert "\x07" not in label.plain
    assert _span_styles(label)[-1] == ("[link=http://x]y[/link]", "green")
    assert all(_style_at(label, offset).link is None for offset in range(len(label.plain)))


def test_hostile_key_on_a_branch() -> None:
    label = branch_label(HOSTILE_KEY, {HOSTILE_VALUE: HOSTILE_KEY})

    assert label.plain == "\\x1b]0;pwned\\x07 {1}"
    child_key, child_value = children_of({HOSTILE_VALUE: HOSTILE_KEY})[0]
    assert label_for(child_key, child_value).plain == "[link=http://x]y[/link]: \\x1b]0;pwned\\x07"


def test_hostile_labels_in_the_real_document_never_reach_the_terminal(image: dict[str, Any]) -> None:
    image["Config"]["Labels"] = {HOSTILE_KEY: HOSTILE_VALUE, "org.example.note": "line1\nline2\u202e"}
    image["RepoTags"] = [HOSTILE_VALUE + "\x9b2J"]

    labels = [label_for(key, value) for key, value in _walk("inspect", image)]

    # root, 19 top-level keys, ContainerConfig 17, Config 19 (+1 port, 3 Env, 2 Cmd, 1 Entrypoint,
    # 2 Labels), GraphDriver 2 (+4 Data), RootFS 2 (+11 Layers), Metadata 1, RepoTags 1
    assert len(labels) == 86
    assert not any(_has_control(label.plain) for label in labels)
    assert not any("\u202e" in label.plain for label in labels)
    assert not any(_style_at(label, offset).link for label in labels for offset in range(len(label.plain)))
    shown = {label.plain for label in labels}
    assert "Labels {2}" in shown
    assert "\\x1b]0;pwned\\x07: [link=http://x]y[/link]" in shown
    assert "org.example.note: line1\\nline2\\u202e" in shown
    assert "[0]: [link=http://x]y[/link]\\x9b2J" in shown
