"""The history-to-RootFS mapping, on hand-made and recorded `GET /images/{id}/history` payloads.

The history API lists entries newest first and says nothing about which of them made a layer;
`RootFS.Layers` lists the diff ids oldest first. Every test below states, row by row, the kind and
the exact diff id the mapping must give.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from dockerscope.service.layers import clean_instruction, map_history
from dockerscope.service.models import LayerKind, LayerStack, MappingQuality

DATA = Path(__file__).parent / "data"

LAYER = LayerKind.LAYER
EMPTY = LayerKind.EMPTY
UNKNOWN = LayerKind.UNKNOWN

ROOTFS = "file:5b1e9a0e8ac5d8b4a2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5"
SRV = "file:0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a0908070605040302010"


def _digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def _history(
    oldest_first: list[tuple[str, int]],
    *,
    comment: str = "",
    image_id: str = _digest("image"),
    tag: str | None = "example/app:1",
    missing_id: str = "<missing>",
    created_start: int = 1_758_527_250,
) -> list[dict[str, Any]]:
    """An API-shaped history (newest first) from (CreatedBy, Size) pairs given oldest first, shaped
    like Docker 29 / the containerd store: only the newest entry has an id, `Created` is an int."""
    entries: list[dict[str, Any]] = [
        {
            "Id": missing_id,
            "Created": created_start + index,
            "CreatedBy": created_by,
            "Tags": None,
            "Size": size,
            "Comment": comment,
        }
        for index, (created_by, size) in enumerate(oldest_first)
    ]
    if entries:
        entries[-1]["Id"] = image_id
        entries[-1]["Tags"] = [tag] if tag else None
    return list(reversed(entries))


def _table(stack: LayerStack) -> list[tuple[str, LayerKind, str | None]]:
    return [(row.instruction, row.kind, row.diff_id) for row in stack.rows]


# --- legacy builder ------------------------------------------------------------------------------


def test_legacy_image_with_every_layer_sized_is_exact() -> None:
    diff_ids = [_digest(f"alpine-legacy-{n}") for n in range(3)]
    history = _history(
        [
            (
                f"/bin/sh -c #(nop) ADD {ROOTFS} in / ",
                7_377_152,
            ),
            ('/bin/sh -c #(nop)  CMD ["/bin/sh"]', 0),
            ("/bin/sh -c apk add --no-cache curl", 5_403_115),
            ("/bin/sh -c #(nop)  ENV APP=demo", 0),
            (
                f"/bin/sh -c #(nop) COPY {SRV} in /srv/ ",
                1_204,
            ),
            ('/bin/sh -c #(nop)  CMD ["/srv/run"]', 0),
        ]
    )

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.EXACT
    assert stack.note == "exact: every layer has a size"
    assert stack.layer_count == 3
    assert _table(stack) == [
        (f"ADD {ROOTFS} in /", LAYER, diff_ids[0]),
        ('CMD ["/bin/sh"]', EMPTY, None),
        ("RUN apk add --no-cache curl", LAYER, diff_ids[1]),
        ("ENV APP=demo", EMPTY, None),
        (f"COPY {SRV} in /srv/", LAYER, diff_ids[2]),
        ('CMD ["/srv/run"]', EMPTY, None),
    ]
    assert [row.number for row in stack.rows] == [1, 2, 3, 4, 5, 6]
    assert stack.total_size == 7_377_152 + 5_403_115 + 1_204


def test_legacy_zero_size_workdir_that_made_no_layer_stays_exact() -> None:
    """Sized entries account for every layer, so the empty WORKDIR (its directory already existed)
    is not a layer even though the legacy builder usually commits one."""
    diff_ids = [_digest("base"), _digest("copy")]
    history = _history(
        [
            ("/bin/sh -c #(nop) ADD file:aa in / ", 5_000_000),
            ("/bin/sh -c #(nop) WORKDIR /tmp", 0),
            ("/bin/sh -c #(nop) COPY file:bb in /tmp/x ", 10),
        ]
    )

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.EXACT
    assert _table(stack) == [
        ("ADD file:aa in /", LAYER, diff_ids[0]),
        ("WORKDIR /tmp", EMPTY, None),
        ("COPY file:bb in /tmp/x", LAYER, diff_ids[1]),
    ]


def _legacy_busybox() -> tuple[list[dict[str, Any]], list[str]]:
    document = json.loads((DATA / "history-legacy-busybox.json").read_text())
    return document["history"], document["rootfs_layers"]


def test_legacy_zero_size_workdir_and_rm_are_inferred_layers() -> None:
    history, diff_ids = _legacy_busybox()
    assert len(history) == 15
    assert len(diff_ids) == 7

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.INFERRED
    assert stack.note == "inferred: 2 zero-size layer(s) placed by instruction"
    assert stack.layer_count == 7
    busybox_copy, hello_copy, data_copy = (history[-1], history[-7], history[-8])
    assert _table(stack) == [
        (busybox_copy["CreatedBy"].removeprefix("/bin/sh -c #(nop) ").strip(), LAYER, diff_ids[0]),
        ("RUN /bin/busybox --install -s /bin", LAYER, diff_ids[1]),
        ("ENV PATH=/bin", EMPTY, None),
        ('CMD ["/bin/sh"]', EMPTY, None),
        ("ENV APP_HOME=/app GREETING=hello", EMPTY, None),
        ("WORKDIR /app", LAYER, diff_ids[2]),
        (hello_copy["CreatedBy"].removeprefix("/bin/sh -c #(nop) ").strip(), LAYER, diff_ids[3]),
        (data_copy["CreatedBy"].removeprefix("/bin/sh -c #(nop) ").strip(), LAYER, diff_ids[4]),
        ("RUN mkdir -p /app/cache /tmp && echo built > /app/cache/stamp", LAYER, diff_ids[5]),
        ("RUN rm -f /tmp/scratch", LAYER, diff_ids[6]),
        ("LABEL org.opencontainers.image.title=dockerscope-legacy", EMPTY, None),
        ("EXPOSE 8080/tcp", EMPTY, None),
        ("USER 1000:1000", EMPTY, None),
        ('ENTRYPOINT ["/bin/sh" "-c"]', EMPTY, None),
        ('CMD ["cat" "/app/hello.txt"]', EMPTY, None),
    ]
    assert stack.rows[0].instruction.startswith("COPY file:73e2")
    assert stack.rows[0].instruction.endswith(" in /bin/busybox")
    assert stack.rows[6].instruction.endswith(" in /app/hello.txt")
    assert stack.rows[7].instruction.endswith(" in /app/data.bin")


def test_legacy_rows_keep_size_time_command_and_comment() -> None:
    history, diff_ids = _legacy_busybox()

    stack = map_history(history, diff_ids)

    assert [row.size for row in stack.rows] == [1982256, 3216, 0, 0, 0, 0, 23, 300000, 14, 0, 0, 0, 0, 0, 0]
    assert stack.total_size == 2_285_509
    assert stack.total_size == sum(entry["Size"] for entry in history)
    oldest, newest = stack.rows[0], stack.rows[-1]
    assert oldest.created == datetime.fromtimestamp(history[-1]["Created"], tz=timezone.utc)
    assert newest.created == datetime.fromtimestamp(history[0]["Created"], tz=timezone.utc)
    assert stack.rows[1].created_by == "/bin/busybox --install -s /bin"
    assert stack.rows[9].created_by == "/bin/sh -c rm -f /tmp/scratch"
    assert stack.rows[5].short_diff_id == diff_ids[2].removeprefix("sha256:")[:12]
    assert stack.rows[4].short_diff_id == ""
    assert all(row.comment == "" for row in stack.rows)


def test_legacy_workdir_is_likelier_than_a_buildkit_workdir_of_the_base() -> None:
    """A legacy build on top of a BuildKit-built base: the legacy WORKDIR fills the one missing
    layer, the base's zero-size BuildKit WORKDIR (its directory already existed) does not."""
    diff_ids = [_digest("base"), _digest("workdir"), _digest("copy")]
    history = _history(
        [
            ("ADD rootfs.tar.xz / # buildkit", 29_000_000),
            ("WORKDIR /usr/src", 0),
            ('CMD ["sh"]', 0),
            ("/bin/sh -c #(nop) WORKDIR /app", 0),
            ("/bin/sh -c #(nop) COPY file:ee in /app/ ", 512),
        ]
    )

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.INFERRED
    assert _table(stack) == [
        ("ADD rootfs.tar.xz /", LAYER, diff_ids[0]),
        ("WORKDIR /usr/src", EMPTY, None),
        ('CMD ["sh"]', EMPTY, None),
        ("WORKDIR /app", LAYER, diff_ids[1]),
        ("COPY file:ee in /app/", LAYER, diff_ids[2]),
    ]


def test_legacy_image_after_shell_instruction() -> None:
    """After `SHELL`, the legacy builder writes its `#(nop)` entries with that shell instead of
    `/bin/sh -c`; they are still metadata (and the WORKDIR still a layer)."""
    diff_ids = [_digest("deb"), _digest("curl"), _digest("srv")]
    shell = "/bin/bash -o pipefail -c"
    history = _history(
        [
            ("/bin/sh -c #(nop) ADD file:9a8b7c in / ", 80_000_000),
            ('/bin/sh -c #(nop)  CMD ["bash"]', 0),
            (f"{shell} #(nop)  SHELL [/bin/bash -o pipefail -c]", 0),
            (f"{shell} curl -fsSL https://example.com/x.tgz | tar -xz -C /opt", 12_000_000),
            (f"{shell} #(nop)  ENV PATH=/opt/x/bin:/usr/bin:/bin", 0),
            (f"{shell} #(nop) WORKDIR /srv", 0),
            (f'{shell} #(nop)  CMD ["x" "serve"]', 0),
        ]
    )

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.INFERRED
    assert _table(stack) == [
        ("ADD file:9a8b7c in /", LAYER, diff_ids[0]),
        ('CMD ["bash"]', EMPTY, None),
        ("SHELL [/bin/bash -o pipefail -c]", EMPTY, None),
        (f"RUN {shell} curl -fsSL https://example.com/x.tgz | tar -xz -C /opt", LAYER, diff_ids[1]),
        ("ENV PATH=/opt/x/bin:/usr/bin:/bin", EMPTY, None),
        ("WORKDIR /srv", LAYER, diff_ids[2]),
        ('CMD ["x" "serve"]', EMPTY, None),
    ]


# --- BuildKit ------------------------------------------------------------------------------------

DEBIAN = "file:d6ba0f5c2e4b8f1f4c1d63b5d8e5e2bd6f9d0a1f4c3b2a1908f7e6d5c4b3a291"
_BASE = [
    (f"/bin/sh -c #(nop) ADD {DEBIAN} in / ", 74_781_354),
    ('/bin/sh -c #(nop)  CMD ["bash"]', 0),
]
_APT = ("RUN /bin/sh -c apt-get update # buildkit", 45_123_456)
_COPY = ("COPY app.py /app/ # buildkit", 1_532)
_MAKE = ("RUN |2 A=1 B=2 /bin/sh -c make # buildkit", 88_000)
_WORKDIR = ("WORKDIR /app", 0)


def _buildkit(*middle: tuple[str, int]) -> list[dict[str, Any]]:
    return _history(
        [
            *_BASE,
            ("ARG A=1", 0),
            ("ARG B=2", 0),
            _APT,
            *middle,
            ("ENV A=b", 0),
            _MAKE,
            ('CMD ["python"]', 0),
        ],
        comment="buildkit.dockerfile.v0",
    )


def test_buildkit_workdir_that_made_no_layer_is_exact() -> None:
    diff_ids = [_digest(f"bk-{n}") for n in range(4)]

    stack = map_history(_buildkit(_WORKDIR, _COPY), diff_ids)

    assert stack.quality is MappingQuality.EXACT
    assert _table(stack) == [
        (f"ADD {DEBIAN} in /", LAYER, diff_ids[0]),
        ('CMD ["bash"]', EMPTY, None),
        ("ARG A=1", EMPTY, None),
        ("ARG B=2", EMPTY, None),
        ("RUN apt-get update", LAYER, diff_ids[1]),
        ("WORKDIR /app", EMPTY, None),
        ("COPY app.py /app/", LAYER, diff_ids[2]),
        ("ENV A=b", EMPTY, None),
        ("RUN make", LAYER, diff_ids[3]),
        ('CMD ["python"]', EMPTY, None),
    ]
    assert stack.total_size == 74_781_354 + 45_123_456 + 1_532 + 88_000


def test_buildkit_zero_size_workdir_layer_is_placed_with_the_possible_tier() -> None:
    diff_ids = [_digest(f"bk-{n}") for n in range(5)]

    stack = map_history(_buildkit(_WORKDIR, _COPY), diff_ids)

    assert stack.quality is MappingQuality.INFERRED
    assert stack.note == "inferred: 1 zero-size layer(s) placed by instruction"
    assert _table(stack) == [
        (f"ADD {DEBIAN} in /", LAYER, diff_ids[0]),
        ('CMD ["bash"]', EMPTY, None),
        ("ARG A=1", EMPTY, None),
        ("ARG B=2", EMPTY, None),
        ("RUN apt-get update", LAYER, diff_ids[1]),
        ("WORKDIR /app", LAYER, diff_ids[2]),
        ("COPY app.py /app/", LAYER, diff_ids[3]),
        ("ENV A=b", EMPTY, None),
        ("RUN make", LAYER, diff_ids[4]),
        ('CMD ["python"]', EMPTY, None),
    ]


def test_buildkit_zero_size_run_is_preferred_over_workdir() -> None:
    """A zero-size RUN (it only deleted files) is a likely layer and fills the one missing layer
    before a BuildKit WORKDIR, which stays empty."""
    diff_ids = [_digest(f"bk-{n}") for n in range(5)]

    stack = map_history(
        _buildkit(_WORKDIR, _COPY, ("RUN /bin/sh -c rm -rf /var/lib/apt/lists/* # buildkit", 0)), diff_ids
    )

    assert stack.quality is MappingQuality.INFERRED
    assert _table(stack)[4:9] == [
        ("RUN apt-get update", LAYER, diff_ids[1]),
        ("WORKDIR /app", EMPTY, None),
        ("COPY app.py /app/", LAYER, diff_ids[2]),
        ("RUN rm -rf /var/lib/apt/lists/*", LAYER, diff_ids[3]),
        ("ENV A=b", EMPTY, None),
    ]
    assert stack.rows[-2].diff_id == diff_ids[4]


def test_buildkit_more_candidates_than_missing_layers_is_ambiguous() -> None:
    """Two zero-size WORKDIRs, one missing layer: neither can be decided. Rows below the first and
    above the last undecided entry are pinned; the COPY between them is a layer whose diff id
    cannot be known."""
    diff_ids = [_digest(f"bk-{n}") for n in range(5)]
    history = _buildkit(_WORKDIR, _COPY, ("WORKDIR /app/static", 0))

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.AMBIGUOUS
    assert "ambiguous" in stack.note
    assert stack.note.startswith("ambiguous: 5 layers, 4 sized entries, 2 zero-size entries")
    assert _table(stack) == [
        (f"ADD {DEBIAN} in /", LAYER, diff_ids[0]),
        ('CMD ["bash"]', EMPTY, None),
        ("ARG A=1", EMPTY, None),
        ("ARG B=2", EMPTY, None),
        ("RUN apt-get update", LAYER, diff_ids[1]),
        ("WORKDIR /app", UNKNOWN, None),
        ("COPY app.py /app/", LAYER, None),
        ("WORKDIR /app/static", UNKNOWN, None),
        ("ENV A=b", EMPTY, None),
        ("RUN make", LAYER, diff_ids[4]),
        ('CMD ["python"]', EMPTY, None),
    ]
    assert [row.number for row in stack.rows if row.kind is UNKNOWN] == [6, 8]
    assert stack.layer_count == 5
    assert stack.total_size == 74_781_354 + 45_123_456 + 1_532 + 88_000


def test_ambiguous_stack_pins_several_layers_from_each_end() -> None:
    diff_ids = [_digest(f"amb-{n}") for n in range(6)]
    history = _history(
        [
            ("ADD rootfs.tar.gz / # buildkit", 3_000_000),
            ("RUN /bin/sh -c apk add git # buildkit", 9_000_000),
            ("WORKDIR /src", 0),
            ("WORKDIR /src/app", 0),
            ("WORKDIR /src/app/bin", 0),
            ("COPY . . # buildkit", 50_000),
            ('ENTRYPOINT ["/src/app/bin/run"]', 0),
            ("RUN /bin/sh -c chmod +x bin/run # buildkit", 1_234),
            ('CMD ["--help"]', 0),
        ],
        comment="buildkit.dockerfile.v0",
    )

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.AMBIGUOUS
    assert [(row.kind, row.diff_id) for row in stack.rows] == [
        (LAYER, diff_ids[0]),
        (LAYER, diff_ids[1]),
        (UNKNOWN, None),
        (UNKNOWN, None),
        (UNKNOWN, None),
        (LAYER, diff_ids[4]),
        (EMPTY, None),
        (LAYER, diff_ids[5]),
        (EMPTY, None),
    ]


def test_buildkit_rows_keep_comment() -> None:
    stack = map_history(_buildkit(_COPY), [_digest(f"bk-{n}") for n in range(4)])

    assert stack.quality is MappingQuality.EXACT
    assert {row.comment for row in stack.rows} == {"buildkit.dockerfile.v0"}


# --- imported images -----------------------------------------------------------------------------


def _imported(size: int) -> list[dict[str, Any]]:
    return [
        {
            "Id": "sha256:6b1d7d1a0c0d8d9f7c54a8f2c8e3f0b9a1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6",
            "Created": 1_758_527_250,
            "CreatedBy": "",
            "Tags": ["dockerscope-test/imported:1"],
            "Size": size,
            "Comment": "Imported from -",
        }
    ]


def test_imported_image_is_one_exact_layer() -> None:
    diff_id = _digest("rootfs.tar")

    stack = map_history(_imported(5_242_880), [diff_id])

    assert stack.quality is MappingQuality.EXACT
    assert _table(stack) == [("(imported)", LAYER, diff_id)]
    assert stack.rows[0].comment == "Imported from -"
    assert stack.rows[0].created_by == ""
    assert stack.total_size == 5_242_880


def test_zero_size_imported_image_is_an_inferred_layer() -> None:
    diff_id = _digest("empty-dir.tar")

    stack = map_history(_imported(0), [diff_id])

    assert stack.quality is MappingQuality.INFERRED
    assert _table(stack) == [("(imported)", LAYER, diff_id)]
    assert stack.total_size == 0


# --- payload shapes ------------------------------------------------------------------------------


def test_docker_29_containerd_store_shape() -> None:
    """Ids are `<missing>` except on the newest entry, `Created` is an int; neither matters."""
    diff_ids = [_digest("c0"), _digest("c1")]
    history = _history(
        [
            ("ADD alpine-minirootfs-3.20.3-aarch64.tar.gz / # buildkit", 8_650_000),
            ('CMD ["/bin/sh"]', 0),
            ("RUN /bin/sh -c apk add jq # buildkit", 1_500_000),
        ],
        comment="buildkit.dockerfile.v0",
    )
    assert [entry["Id"] for entry in history] == [_digest("image"), "<missing>", "<missing>"]
    assert all(type(entry["Created"]) is int for entry in history)

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.EXACT
    assert _table(stack) == [
        ("ADD alpine-minirootfs-3.20.3-aarch64.tar.gz /", LAYER, diff_ids[0]),
        ('CMD ["/bin/sh"]', EMPTY, None),
        ("RUN apk add jq", LAYER, diff_ids[1]),
    ]
    assert stack.rows[0].created == datetime(2025, 9, 22, 7, 47, 30, tzinfo=timezone.utc)
    assert stack.rows[2].created == datetime(2025, 9, 22, 7, 47, 32, tzinfo=timezone.utc)


def test_podman_missing_ids() -> None:
    diff_ids = [_digest("p0")]
    history = _history(
        [("/bin/sh -c #(nop) ADD file:cc in / ", 4_000_000), ('/bin/sh -c #(nop) CMD ["sh"]', 0)],
        missing_id="sha256:<missing>",
    )
    assert history[1]["Id"] == "sha256:<missing>"

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.EXACT
    assert _table(stack) == [("ADD file:cc in /", LAYER, diff_ids[0]), ('CMD ["sh"]', EMPTY, None)]


def test_a_podman_built_image_maps_exactly() -> None:
    """As Podman 4.3 lists an image it built (recorded from the test service): ids are `<missing>`
    or other images' ids, sizes are tar sizes (a layer is never 0), the comment says FROM, a
    `#(nop) WORKDIR` made no layer, buildah puts `/bin/sh -c` before an exec-form RUN's array, and
    Docker's legacy builder below wrote its exec-form RUN without one."""
    diff_ids = [_digest(f"p{index}") for index in range(6)]
    oldest_first = [
        ("/bin/sh -c #(nop) COPY file:73e2 in /bin/busybox ", 1984512, "<missing>"),
        ("/bin/busybox --install -s /bin", 138752, "<missing>"),
        ("/bin/sh -c #(nop)  ENV PATH=/bin", 0, "<missing>"),
        ('/bin/sh -c #(nop)  CMD ["/bin/sh"]', 0, "<missing>"),
        ("/bin/sh -c #(nop) ENV APP=podman", 0, "<missing>"),
        ("/bin/sh -c #(nop) WORKDIR /app", 0, "c18c64e5ef56fc2de9b3aaa31394460d8a305d46b1ac6740224a9cb62fc4d974"),
        ("/bin/sh -c #(nop) COPY file:d51c in /app/hello.txt ", 2560, "348c5782e116332b6386"),
        ('/bin/sh -c ["/bin/busybox", "touch", "/app/touched"]', 5120, "d01a8bbe97e0b34b3a6a"),
        ("/bin/sh -c echo shell > /app/shell.txt && echo scratch > /app/scratch.txt", 4096, "<missing>"),
        ("/bin/sh -c rm /app/scratch.txt", 2560, "sha256:<missing>"),
        ('/bin/sh -c #(nop) CMD ["cat", "/app/hello.txt"]', 0, _digest("image")),
    ]
    history = [
        {
            "Id": entry_id,
            "Created": 1_796_611_000,
            "CreatedBy": created_by,
            "Tags": None,
            "Size": size,
            "Comment": "FROM localhost/dockerscope-test/base:1",
        }
        for created_by, size, entry_id in reversed(oldest_first)
    ]

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.EXACT
    assert _table(stack) == [
        ("COPY file:73e2 in /bin/busybox", LAYER, diff_ids[0]),
        ("RUN /bin/busybox --install -s /bin", LAYER, diff_ids[1]),
        ("ENV PATH=/bin", EMPTY, None),
        ('CMD ["/bin/sh"]', EMPTY, None),
        ("ENV APP=podman", EMPTY, None),
        ("WORKDIR /app", EMPTY, None),
        ("COPY file:d51c in /app/hello.txt", LAYER, diff_ids[2]),
        ('RUN ["/bin/busybox", "touch", "/app/touched"]', LAYER, diff_ids[3]),
        ("RUN echo shell > /app/shell.txt && echo scratch > /app/scratch.txt", LAYER, diff_ids[4]),
        ("RUN rm /app/scratch.txt", LAYER, diff_ids[5]),
        ('CMD ["cat", "/app/hello.txt"]', EMPTY, None),
    ]


def test_missing_zero_or_negative_created_and_size_are_tolerated() -> None:
    history = [
        {"Id": "<missing>", "Created": 0, "CreatedBy": 'CMD ["/app"]', "Tags": None, "Size": None},
        {"Id": "<missing>", "Created": -5, "CreatedBy": "ENV X=1", "Size": -1},
        {"Id": "<missing>", "CreatedBy": "COPY app / # buildkit", "Size": 100, "Comment": None},
    ]

    stack = map_history(history, [_digest("app")])

    assert stack.quality is MappingQuality.EXACT
    assert [row.created for row in stack.rows] == [None, None, None]
    assert [row.size for row in stack.rows] == [100, 0, 0]
    assert [row.comment for row in stack.rows] == ["", "", ""]
    assert _table(stack) == [
        ("COPY app /", LAYER, _digest("app")),
        ("ENV X=1", EMPTY, None),
        ('CMD ["/app"]', EMPTY, None),
    ]


def test_float_created_is_read() -> None:
    history = [{**_history([("COPY a / # buildkit", 1)])[0], "Created": 1_700_000_000.5}]

    stack = map_history(history, [_digest("a")])

    assert stack.rows[0].created == datetime(2023, 11, 14, 22, 13, 20, 500_000, tzinfo=timezone.utc)


def test_scratch_image_with_no_layers() -> None:
    history = _history([('CMD ["/hello"]', 0)], comment="buildkit.dockerfile.v0")

    stack = map_history(history, [])

    assert stack.quality is MappingQuality.EXACT
    assert stack.layer_count == 0
    assert stack.total_size == 0
    assert _table(stack) == [('CMD ["/hello"]', EMPTY, None)]


def test_empty_history_and_no_layers() -> None:
    stack = map_history([], [])

    assert stack.rows == ()
    assert stack.layer_count == 0
    assert stack.total_size == 0
    assert stack.quality is MappingQuality.EXACT


def test_history_that_accounts_for_too_few_layers_is_ambiguous() -> None:
    """Two layers but only one history entry: the mapping must not claim to be exact."""
    stack = map_history(_imported(1_000), [_digest("x"), _digest("y")])

    assert stack.quality is MappingQuality.AMBIGUOUS
    assert "ambiguous" in stack.note
    assert stack.layer_count == 2


def test_total_size_is_the_sum_of_sizes() -> None:
    sizes = [74_781_354, 0, 45_123_456, 0, 1_532, 88_000]
    history = _history(
        [
            ("ADD rootfs.tar / # buildkit", sizes[0]),
            ("ENV A=1", sizes[1]),
            ("RUN /bin/sh -c make # buildkit", sizes[2]),
            ("LABEL a=b", sizes[3]),
            ("COPY x /x # buildkit", sizes[4]),
            ("COPY y /y # buildkit", sizes[5]),
        ]
    )

    stack = map_history(history, [_digest(f"t{n}") for n in range(4)])

    assert stack.total_size == sum(sizes) == 119_994_342
    assert sum(row.size for row in stack.rows) == stack.total_size


# --- clean_instruction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created_by", "instruction"),
    [
        # legacy builder: metadata with two spaces after #(nop), file instructions with one
        ("/bin/sh -c #(nop)  ENV PATH=/bin", "ENV PATH=/bin"),
        ('/bin/sh -c #(nop)  CMD ["/bin/sh"]', 'CMD ["/bin/sh"]'),
        ("/bin/sh -c #(nop) WORKDIR /app", "WORKDIR /app"),
        ("/bin/sh -c #(nop) COPY file:90e9aa in /app/hello.txt ", "COPY file:90e9aa in /app/hello.txt"),
        ("/bin/sh -c #(nop) ADD file:d6ba0f in / ", "ADD file:d6ba0f in /"),
        # legacy builder after `SHELL [...]`, and on Windows
        ("/bin/bash -o pipefail -c #(nop)  ENV A=1", "ENV A=1"),
        ("cmd /S /C #(nop) WORKDIR C:\\app", "WORKDIR C:\\app"),
        # legacy builder RUN: shell form, exec form, with build args
        ("/bin/sh -c rm -f /tmp/scratch", "RUN rm -f /tmp/scratch"),
        ("/bin/busybox --install -s /bin", "RUN /bin/busybox --install -s /bin"),
        ("|1 X=y /bin/sh -c cmd", "RUN cmd"),
        ("|2 A=1 B=2 /bin/sh -c make all", "RUN make all"),
        # BuildKit
        ("RUN /bin/sh -c apt-get update # buildkit", "RUN apt-get update"),
        ("RUN |2 A=1 B=2 /bin/sh -c make # buildkit", "RUN make"),
        ("RUN /bin/busybox --install -s /bin # buildkit", "RUN /bin/busybox --install -s /bin"),
        ("COPY app.py /app/ # buildkit", "COPY app.py /app/"),
        ("COPY --chown=1000:1000 --from=build /o /s # buildkit", "COPY --chown=1000:1000 --from=build /o /s"),
        ("ADD alpine-minirootfs.tar.gz / # buildkit", "ADD alpine-minirootfs.tar.gz /"),
        ("WORKDIR /app", "WORKDIR /app"),
        ("ENV A=b", "ENV A=b"),
        ('CMD ["python"]', 'CMD ["python"]'),
        ("ARG X=1", "ARG X=1"),
        # a base image's layer as recorded by an older builder, without the shell prefix
        ("ADD file:d6ba0f in / ", "ADD file:d6ba0f in /"),
        # imported
        ("", "(imported)"),
        ("   ", "(imported)"),
    ],
)
def test_clean_instruction(created_by: str, instruction: str) -> None:
    assert clean_instruction(created_by) == instruction


def test_clean_instruction_keeps_buildkit_marker_inside_the_command() -> None:
    assert clean_instruction("RUN /bin/sh -c echo '# buildkit' > f # buildkit") == "RUN echo '# buildkit' > f"


# --- edge cases found by mutation testing (scripts/mutation.sh) -----------------------------------


def _chain_ids(diff_ids: list[str]) -> list[str]:
    """The OCI image-spec ChainID, written out: ChainID(L0) = DiffID(L0), ChainID(Ln) =
    sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    chain = [diff_ids[0]]
    for diff_id in diff_ids[1:]:
        chain.append("sha256:" + hashlib.sha256(f"{chain[-1]} {diff_id}".encode()).hexdigest())
    return chain


def test_placed_rows_carry_their_layer_index_and_chain_id() -> None:
    diff_ids = [_digest("c0"), _digest("c1"), _digest("c2")]
    history = _history(
        [("ADD rootfs / # buildkit", 10), ("ENV A=1", 0), ("RUN make # buildkit", 5), ("COPY a / # buildkit", 1)]
    )

    stack = map_history(history, diff_ids)

    chain = _chain_ids(diff_ids)
    assert [(row.layer_index, row.chain_id) for row in stack.rows] == [
        (0, chain[0]),
        (None, None),
        (1, chain[1]),
        (2, chain[2]),
    ]
    assert stack.instructions() == {0: "ADD rootfs /", 1: "RUN make", 2: "COPY a /"}


def test_a_one_byte_layer_is_sized() -> None:
    diff_ids = [_digest("big"), _digest("tiny")]
    history = _history([("ADD rootfs / # buildkit", 10), ("RUN touch /x # buildkit", 1), ("WORKDIR /x", 0)])

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.EXACT
    assert _table(stack) == [
        ("ADD rootfs /", LAYER, diff_ids[0]),
        ("RUN touch /x", LAYER, diff_ids[1]),
        ("WORKDIR /x", EMPTY, None),
    ]


def test_more_sized_entries_than_layers_leaves_the_extra_ones_unplaced() -> None:
    """Three entries with a size but two layers (a history that does not match its RootFS):
    the bottom and the top pin one layer each and the middle one gets no diff id."""
    diff_ids = [_digest("m0"), _digest("m1")]
    history = _history([("ADD rootfs / # buildkit", 10), ("RUN a # buildkit", 20), ("RUN b # buildkit", 30)])

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.AMBIGUOUS
    assert stack.note == (
        "ambiguous: 2 layers, 3 sized entries, 0 zero-size entries that may or may not be layers (marked ?)"
    )
    assert _table(stack) == [
        ("ADD rootfs /", LAYER, diff_ids[0]),
        ("RUN a", LAYER, diff_ids[1]),
        ("RUN b", LAYER, None),
    ]


def test_more_sized_entries_than_layers_after_an_undecided_one() -> None:
    diff_ids = [_digest("u0"), _digest("u1")]
    history = _history(
        [
            ("ADD rootfs / # buildkit", 10),
            ("RUN true # buildkit", 0),
            ("RUN a # buildkit", 20),
            ("RUN b # buildkit", 30),
        ]
    )

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.AMBIGUOUS
    assert _table(stack) == [
        ("ADD rootfs /", LAYER, diff_ids[0]),
        ("RUN true", UNKNOWN, None),
        ("RUN a", LAYER, None),
        ("RUN b", LAYER, diff_ids[1]),
    ]


def test_the_top_pins_down_to_the_second_entry_and_the_newest_one() -> None:
    """Four layers, three candidates, and the oldest cannot be decided: the others are pinned from
    the top, down to the second entry."""
    diff_ids = [_digest(f"t{n}") for n in range(4)]
    history = _history(
        [("RUN true # buildkit", 0), ("COPY a / # buildkit", 5), ('CMD ["a"]', 0), ("COPY b / # buildkit", 7)]
    )

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.AMBIGUOUS
    assert _table(stack) == [
        ("RUN true", UNKNOWN, None),
        ("COPY a /", LAYER, diff_ids[2]),
        ('CMD ["a"]', EMPTY, None),
        ("COPY b /", LAYER, diff_ids[3]),
    ]


_METADATA = [
    'HEALTHCHECK &{["CMD-SHELL" "wget -q -O- http://localhost/"] "30s" "3s" "0s" "0s" \'\\x00\'}',
    "STOPSIGNAL SIGQUIT",
    "ONBUILD RUN make",
    "VOLUME [/data]",
    "MAINTAINER ops@example.com",
    "SHELL [/bin/bash -c]",
    "USER app",
    "EXPOSE map[8080/tcp:{}]",
    'ENTRYPOINT ["/app"]',
    "LABEL a=b",
    "ARG X=1",
]


@pytest.mark.parametrize("instruction", _METADATA)
@pytest.mark.parametrize("legacy", [False, True], ids=["buildkit", "legacy"])
def test_metadata_instructions_never_make_a_layer(instruction: str, legacy: bool) -> None:
    """A zero-size WORKDIR is the one candidate for the missing layer: a metadata instruction
    next to it must not count as a second one (which would make the stack ambiguous)."""
    created_by = f"/bin/sh -c #(nop)  {instruction}" if legacy else instruction
    diff_ids = [_digest("root"), _digest("workdir")]
    history = _history([("ADD rootfs / # buildkit", 10), (created_by, 0), ("WORKDIR /srv", 0)])

    stack = map_history(history, diff_ids)

    assert stack.quality is MappingQuality.INFERRED
    assert _table(stack) == [
        ("ADD rootfs /", LAYER, diff_ids[0]),
        (instruction, EMPTY, None),
        ("WORKDIR /srv", LAYER, diff_ids[1]),
    ]


def test_entries_that_are_not_objects_read_as_empty_imported_ones() -> None:
    history = _history([("ADD rootfs / # buildkit", 10)])
    stack = map_history([*history, "junk"], [_digest("j0"), _digest("j1")])
    assert stack.quality is MappingQuality.INFERRED
    assert _table(stack) == [("(imported)", LAYER, _digest("j0")), ("ADD rootfs /", LAYER, _digest("j1"))]


def test_build_args_are_split_on_spaces_only() -> None:
    """The legacy builder joins `|N` and the N args with single spaces: a tab inside a value is
    part of it."""
    assert clean_instruction("|1 MSG=a\tb /bin/sh -c echo $MSG") == "RUN echo $MSG"


def test_build_args_with_no_command_after_them_leave_an_empty_run() -> None:
    assert clean_instruction("|2 A=1 B=2").rstrip() == "RUN"
    assert clean_instruction("RUN |3 A=1 B=2 # buildkit").rstrip() == "RUN"


def test_an_instruction_word_followed_by_a_tab_is_still_judged_by_its_word() -> None:
    # Three layers but only two entries that can have made one: `ENV<tab>…` is metadata and must
    # not be taken for the third layer, so the stack is ambiguous rather than wrongly inferred.
    history = [
        {"CreatedBy": "ENV\tA=1", "Size": 0},
        {"CreatedBy": "RUN /bin/sh -c rm -rf /tmp/x # buildkit", "Size": 0},
        {"CreatedBy": "ADD file:abc in /", "Size": 10},
    ]
    stack = map_history(history, ["sha256:" + digit * 64 for digit in "123"])
    assert stack.rows[2].kind is LayerKind.EMPTY
    assert stack.quality is MappingQuality.AMBIGUOUS
