"""Layer sharing, size split and base image selection on hand-built images."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from dockerscope.service.layers import map_history
from dockerscope.service.models import ImageSummary, LayerKind, LayerRow, LayerStack, MappingQuality
from dockerscope.service.sharing import (
    base_candidates,
    chain_ids,
    describe_base,
    find_sharers,
    history_is_prefix,
    layer_sizes,
    split_sizes,
)

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def _image(name: str, minutes: int, *tags: str) -> ImageSummary:
    return ImageSummary(id=_digest(name), tags=tags, created=T0 + timedelta(minutes=minutes), size=0, containers=0)


def _chain(*layers: str) -> tuple[str, ...]:
    return chain_ids([_digest(layer) for layer in layers])


# --- chain ids -----------------------------------------------------------------------------------


def test_chain_ids_follow_the_oci_image_spec() -> None:
    """The bottom of the busybox base fixture, as a real dockerd 20.10 stored it: the chain ids are
    directory names of its layer database (test_service checks every fixture against a live one)."""
    diff_ids = [
        "sha256:4583c050f2a6f133d871f558206aed2562f36016cbd028902412e6fcb02b2b87",
        "sha256:b2cf2ea73064766153271ddece39fea2b880eb6c047426ae097a76e20c46d85c",
    ]
    assert chain_ids(diff_ids) == (
        "sha256:4583c050f2a6f133d871f558206aed2562f36016cbd028902412e6fcb02b2b87",
        "sha256:ad77dcf66d3aa84a946ee7a961cd235d2f8d70e8fb55f56e2a13b184bd37ff27",
    )
    assert chain_ids([]) == ()


def test_the_same_diff_id_on_another_stack_is_another_layer() -> None:
    assert _chain("base", "app")[1] != _chain("other", "app")[1]
    assert _chain("base", "app")[:1] == _chain("base", "tool")[:1]


def test_rows_carry_the_chain_id_of_their_layer() -> None:
    diff_ids = [_digest("rootfs"), _digest("empty"), _digest("empty")]  # two layers with one diff id
    stack = map_history(
        _history([("ADD rootfs.tar /", 5), ("/bin/sh -c #(nop) WORKDIR /a", 0), ("/bin/sh -c true", 0)]), diff_ids
    )
    chain = chain_ids(diff_ids)
    assert [row.chain_id for row in stack.rows] == list(chain)
    assert chain[1] != chain[2]


# --- sharers -------------------------------------------------------------------------------------

BASE = _image("base", 0, "example/base:1")
APP = _image("app", 10, "example/app:1")
TOOL = _image("tool", 20, "example/tool:1")
STRANGER = _image("stranger", 30, "example/stranger:1")
CHAINS = {
    BASE.id: _chain("busybox", "install"),
    APP.id: _chain("busybox", "install", "app"),
    TOOL.id: _chain("busybox", "install", "tool"),
    STRANGER.id: _chain("alpine", "app"),  # the app's top diff id, on another stack
}


def test_sharers_are_the_other_images_holding_each_chain_id() -> None:
    bottom, install, top = CHAINS[APP.id]
    assert find_sharers(APP.id, CHAINS) == {bottom: (BASE.id, TOOL.id), install: (BASE.id, TOOL.id), top: ()}


def test_a_base_shares_every_layer_with_the_images_built_on_it() -> None:
    assert set(find_sharers(BASE.id, CHAINS).values()) == {(APP.id, TOOL.id)}


def test_an_image_nobody_knows_has_no_sharers() -> None:
    assert find_sharers(_digest("gone"), CHAINS) == {}


# --- sizes ---------------------------------------------------------------------------------------


def _row(number: int, size: int, chain_id: str | None) -> LayerRow:
    return LayerRow(
        number=number,
        created=None,
        created_by="",
        instruction="",
        size=size,
        kind=LayerKind.LAYER if chain_id else LayerKind.EMPTY,
        diff_id=chain_id,
        comment="",
        chain_id=chain_id,
    )


def test_shared_is_the_size_of_the_layers_another_image_holds() -> None:
    chain = CHAINS[APP.id]
    sizes = (1_000_000, 3_000, 500)
    split = split_sizes(chain, sizes, find_sharers(APP.id, CHAINS), total=sum(sizes))
    assert split == (1_003_000, 500, 0)


def test_a_same_diff_id_on_a_different_stack_is_not_shared() -> None:
    chains = {APP.id: CHAINS[APP.id], STRANGER.id: CHAINS[STRANGER.id]}
    split = split_sizes(CHAINS[APP.id], (1_000, 20, 300), find_sharers(APP.id, chains), total=1_320)
    assert split == (0, 1_320, 0)


def test_layer_sizes_come_from_the_row_of_each_layer_even_when_diff_ids_repeat() -> None:
    chain = _chain("rootfs", "empty", "empty")
    rows = (_row(1, 70, chain[0]), _row(2, 0, None), _row(3, 0, chain[1]), _row(4, 9, chain[2]))
    stack = LayerStack(rows=rows, layer_count=3, total_size=79, quality=MappingQuality.EXACT, note="")
    assert layer_sizes(stack, chain) == (70, 0, 9)


def _history(oldest_first: list[tuple[str, int]]) -> list[dict[str, Any]]:
    entries = [
        {"Id": "<missing>", "Created": 1_700_000_000 + n, "CreatedBy": command, "Size": size, "Comment": ""}
        for n, (command, size) in enumerate(oldest_first)
    ]
    return list(reversed(entries))


# Four layers, three sized entries, two BuildKit WORKDIRs: the mapping pins the ADD from the bottom
# and the RUN from the top; the COPY (50 kB) and one WORKDIR are layers 1 and 2, in some order.
AMBIGUOUS_DIFF_IDS = [_digest(f"amb-{n}") for n in range(4)]
AMBIGUOUS_HISTORY = _history(
    [
        ("ADD rootfs.tar.gz / # buildkit", 3_000_000),
        ("WORKDIR /a", 0),
        ("COPY . . # buildkit", 50_000),
        ("WORKDIR /b", 0),
        ("RUN /bin/sh -c make # buildkit", 1_234),
    ]
)


@pytest.mark.parametrize(
    ("shared_layers", "expected"),
    [
        pytest.param(3, (3_050_000, 1_234, 0), id="unplaced-layers-all-shared"),
        pytest.param(1, (3_000_000, 51_234, 0), id="unplaced-layers-all-unique"),
        pytest.param(2, (3_000_000, 1_234, 50_000), id="unplaced-layers-straddle-the-boundary"),
        pytest.param(0, (0, 3_051_234, 0), id="nothing-shared"),
    ],
)
def test_layers_an_ambiguous_mapping_could_not_place(shared_layers: int, expected: tuple[int, int, int]) -> None:
    stack = map_history(AMBIGUOUS_HISTORY, AMBIGUOUS_DIFF_IDS)
    chain = chain_ids(AMBIGUOUS_DIFF_IDS)
    assert stack.quality is MappingQuality.AMBIGUOUS
    sizes = layer_sizes(stack, chain)
    assert sizes == (3_000_000, None, None, 1_234)
    other = _digest("other")
    chains = {_digest("image"): chain, other: chain[:shared_layers]}
    split = split_sizes(chain, sizes, find_sharers(_digest("image"), chains), stack.total_size)
    assert split == expected
    assert sum(split) == stack.total_size


# --- base image ----------------------------------------------------------------------------------

CHAIN_A = _image("chain-a", 40, "example/chain-a:1")
CHAIN_B = _image("chain-b", 50, "example/chain-b:1", "example/chain-b:latest")
CHAIN_C = _image("chain-c", 60, "example/chain-c:1")
BASE_COPY = _image("base-copy", 5, "example/base-copy:1")  # the base's layers, other metadata
BASE_DANGLING = _image("base-dangling", 2)
LINE = {
    BASE.id: _chain("busybox", "install"),
    CHAIN_A.id: _chain("busybox", "install", "a"),
    CHAIN_B.id: _chain("busybox", "install", "a", "b"),
    CHAIN_C.id: _chain("busybox", "install", "a", "b", "c"),
    TOOL.id: _chain("busybox", "install", "tool"),
    STRANGER.id: _chain("alpine", "a"),
}
LINE_IMAGES = (CHAIN_C, TOOL, BASE, CHAIN_A, STRANGER, CHAIN_B)


def _base(image: ImageSummary, images: tuple[ImageSummary, ...], chains: dict[str, tuple[str, ...]]) -> list[str]:
    return [candidate.id for candidate in base_candidates(image, images, chains)]


def test_the_base_is_the_image_with_the_longest_complete_prefix() -> None:
    assert _base(CHAIN_C, LINE_IMAGES, LINE) == [CHAIN_B.id]
    assert _base(CHAIN_A, LINE_IMAGES, LINE) == [BASE.id]
    assert _base(TOOL, LINE_IMAGES, LINE) == [BASE.id]


def test_an_image_that_is_itself_a_base_has_its_own_base() -> None:
    assert _base(CHAIN_B, LINE_IMAGES, LINE) == [CHAIN_A.id]


def test_no_local_candidate_means_no_base() -> None:
    assert _base(BASE, LINE_IMAGES, LINE) == []
    assert _base(STRANGER, LINE_IMAGES, LINE) == []  # shares a diff id with chain-a, not a layer
    assert _base(CHAIN_C, (CHAIN_C, TOOL, STRANGER), LINE) == []


def test_images_with_the_same_chain_tie_oldest_first_dangling_ones_included() -> None:
    chains = {**LINE, BASE_COPY.id: LINE[BASE.id], BASE_DANGLING.id: LINE[BASE.id]}
    images = (*LINE_IMAGES, BASE_COPY, BASE_DANGLING)
    ties = base_candidates(CHAIN_A, images, chains)
    assert [tie.id for tie in ties] == [BASE.id, BASE_DANGLING.id, BASE_COPY.id]
    base = describe_base(ties, len(chains[BASE.id]), history_count=5)
    assert base.names == ("example/base:1", BASE_DANGLING.short_id, "example/base-copy:1")
    assert (base.image_ids, base.layer_count, base.history_count) == (
        (BASE.id, BASE_DANGLING.id, BASE_COPY.id),
        2,
        5,
    )


def test_an_equal_chain_is_a_base_only_when_it_is_older() -> None:
    chains = {**LINE, BASE_COPY.id: LINE[BASE.id]}
    images = (*LINE_IMAGES, BASE_COPY)
    assert _base(BASE_COPY, images, chains) == [BASE.id]  # created after the base, from it
    assert _base(BASE, images, chains) == []  # the copy is younger: not the base's base
    same_time = _image("base-twin", 0, "example/twin:1")
    chains[same_time.id] = LINE[BASE.id]
    assert _base(same_time, (*images, same_time), chains) == []
    assert _base(BASE, (*images, same_time), chains) == []


def test_images_without_a_creation_time_are_never_equal_chain_bases() -> None:
    undated = ImageSummary(id=_digest("undated"), tags=(), created=None, size=0, containers=0)
    chains = {**LINE, undated.id: LINE[BASE.id]}
    assert _base(undated, (*LINE_IMAGES, undated), chains) == []
    assert _base(BASE, (*LINE_IMAGES, undated), chains) == []
    assert _base(CHAIN_A, (*LINE_IMAGES, undated), chains) == [BASE.id, undated.id]


def test_a_layerless_image_has_no_base_and_is_no_base() -> None:
    scratch = _image("scratch", 1, "example/scratch:1")
    chains = {**LINE, scratch.id: ()}
    assert _base(scratch, (*LINE_IMAGES, scratch), chains) == []
    assert _base(CHAIN_A, (*LINE_IMAGES, scratch), chains) == [BASE.id]


# --- history boundary ----------------------------------------------------------------------------


def test_a_history_built_from_the_base_starts_with_the_whole_base_history() -> None:
    base = map_history(_history([("COPY busybox /bin/busybox", 9), ("/bin/sh -c #(nop)  CMD [sh]", 0)]), ["d0"])
    built = map_history(
        _history([("COPY busybox /bin/busybox", 9), ("/bin/sh -c #(nop)  CMD [sh]", 0), ("/bin/sh -c make", 4)]),
        ["d0", "d1"],
    )
    assert history_is_prefix(base.rows, built.rows)
    assert not history_is_prefix(built.rows, base.rows)
    relabelled = map_history(_history([("COPY busybox /bin/busybox", 9), ("LABEL x=y", 0)]), ["d0"])
    assert not history_is_prefix(relabelled.rows, built.rows)
