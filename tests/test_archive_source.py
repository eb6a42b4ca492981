"""Archives and OCI layouts built in the test: what `dockerscope analyze FILE|DIR` and the archive
source make of them, honest and hostile. No daemon."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

from apphelpers import SIZE, highlight_image, layer_table, wait_until
from archives import Layout, digest, docker_save, layer, step, write_tar
from dockerscope import analyze
from dockerscope.service import (
    ArchiveUnreadable,
    ContentsUnavailable,
    EventBatch,
    LayerKind,
    MappingQuality,
    ReadCancelled,
    archive_reader,
    open_archive,
)
from dockerscope.service.hosts import HostCatalog, HostChoice
from dockerscope.ui import create_app
from dockerscope.ui.layer_contents_screen import LayerContentsScreen

BASE = layer({"bin": None, "bin/sh": b"#!shell" * 100, "etc": None, "etc/os-release": b"ID=test\n"})
APP = layer({"app": None, "app/data.bin": b"x" * 5000, "app/.wh.gone": b""})
FIX = layer({"app": None, "app/data.bin": b"y" * 6000})
BASE_HISTORY = [step("/bin/sh -c #(nop) ADD file:abc in / "), step('/bin/sh -c #(nop)  CMD ["sh"]', empty=True)]
APP_HISTORY = [
    *BASE_HISTORY,
    step("/bin/sh -c #(nop) WORKDIR /app"),
    step("ENV A=1", empty=True),
    step("RUN /bin/sh -c rm -f /nothing # buildkit"),
]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = analyze.main(argv, out)
    return code, out.getvalue(), capsys.readouterr().err


def _json_report(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code, out, err = _run([*argv, "--json"], capsys)
    assert (code, err) == (0, "")
    return json.loads(out)


def _saved(tmp_path: Path) -> Path:
    return write_tar(
        tmp_path / "saved.tar",
        docker_save(
            [
                (["test/base:1"], [BASE], BASE_HISTORY[:1]),
                (["test/app:1", "test/app:latest"], [BASE, FIX, APP], APP_HISTORY),
            ]
        ),
    )


async def test_a_docker_save_lists_every_image_with_its_exact_layer_mapping(tmp_path: Path) -> None:
    source = open_archive(str(_saved(tmp_path)))
    snapshot = await source.snapshot()
    assert snapshot.daemon.label == "docker archive"
    assert sorted(image.tags for image in snapshot.images) == [("test/app:1", "test/app:latest"), ("test/base:1",)]
    assert source.capabilities.containers is False and source.capabilities.layer_contents is True
    app = next(image for image in snapshot.images if "test/app:1" in image.tags)
    detail = await source.image_detail(app)
    assert detail.layers.quality is MappingQuality.EXACT
    # The zero-size WORKDIR made a layer and the ENV none: only empty_layer can tell.
    assert [(row.instruction, row.kind, row.layer_index) for row in detail.layers.rows] == [
        ("ADD file:abc in /", LayerKind.LAYER, 0),
        ('CMD ["sh"]', LayerKind.EMPTY, None),
        ("WORKDIR /app", LayerKind.LAYER, 1),
        ("ENV A=1", LayerKind.EMPTY, None),
        ("RUN rm -f /nothing", LayerKind.LAYER, 2),
    ]
    assert [row.size for row in detail.layers.rows] == [len(BASE), 0, len(FIX), 0, len(APP)]
    assert detail.inspect["RepoTags"] == ["test/app:1", "test/app:latest"]
    assert detail.inspect["history"][3]["empty_layer"] is True and "Manifest" in detail.inspect
    # An archive does not change: a poll answers the snapshot it was opened with, reading nothing.
    assert await source.refresh(EventBatch(all_images=True)) is snapshot
    context = await source.image_context(app, snapshot)
    assert context.base is not None and context.base.names == ("test/base:1",)
    assert context.shared_size == len(BASE)
    source.close()


def test_analyze_picks_an_image_of_the_archive_by_tag_or_id_and_lists_them_when_none_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = str(_saved(tmp_path))
    report = _json_report(["analyze", saved, "test/app:1"][1:], capsys)
    image = report["image"]
    assert image["source"] == "archive"
    assert [path["path"] for path in image["top_wasted"]] == ["/app/data.bin"]
    assert [layer["removed"] for layer in report["layers"]] == [0, 0, 1]
    by_id = _json_report([saved, image["id"][7:19]], capsys)
    assert by_id["image"]["id"] == image["id"]
    code, out, err = _run([saved], capsys)
    assert code == 2 and out == ""
    assert "it holds 2 images; name one" in err and "test/base:1" in err and "test/app:1" in err
    assert err.count("\n") == 1


def _multi_platform(root: Path) -> Path:
    layout = Layout()
    amd = layout.image(
        [BASE, APP],
        [step("ADD base"), step("COPY app")],
        how="gzip",
        arch="amd64",
        platform={"os": "linux", "architecture": "amd64"},
    )
    arm = layout.image(
        [BASE, FIX],
        [step("ADD base"), step("COPY fix")],
        how="zstd",
        arch="arm64",
        platform={"os": "linux", "architecture": "arm64", "variant": "v8"},
    )
    # buildx writes an index whose one descriptor is the image's index; a cycle back to it is harmless.
    nested = layout.index([amd, arm], tag="multi:1")
    return layout.write_dir(root, [nested])


def test_a_multi_platform_index_lists_one_row_per_platform(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _multi_platform(tmp_path / "oci")
    source = open_archive(str(root))
    snapshot = asyncio.run(source.snapshot())
    assert snapshot.daemon.label == "OCI layout"
    assert sorted(image.tags for image in snapshot.images) == [
        ("multi:1 (linux/amd64)",),
        ("multi:1 (linux/arm64/v8)",),
    ]
    source.close()
    arm = _json_report([str(root), "multi:1", "--platform", "linux/arm64"], capsys)
    assert [layer["instruction"] for layer in arm["layers"]] == ["ADD base", "COPY fix"]
    amd = _json_report([str(root), "--platform", "linux/amd64"], capsys)
    assert [layer["instruction"] for layer in amd["layers"]] == ["ADD base", "COPY app"]
    code, _, err = _run([str(root), "multi:1"], capsys)
    assert code == 2 and "2 images" in err and "linux/arm64/v8" in err and "linux/amd64" in err


def test_an_oci_tar_gives_what_its_directory_gives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _multi_platform(tmp_path / "oci")
    tarred = tmp_path / "oci.tar"
    with tarfile.open(tarred, "w") as tar:
        tar.add(root, arcname=".")
    argv = ["--platform", "linux/arm64/v8"]
    on_dir = _json_report([str(root), *argv], capsys)
    on_tar = _json_report([str(tarred), *argv], capsys)
    for report in (on_dir, on_tar):
        report["image"].pop("seconds")
    assert on_tar == on_dir


def test_a_gzip_compressed_save_reads_as_the_plain_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = _saved(tmp_path)
    packed = tmp_path / "saved.tar.gz"
    packed.write_bytes(gzip.compress(saved.read_bytes()))
    plain = _json_report([str(saved), "test/app:1"], capsys)
    compressed = _json_report([str(packed), "test/app:1"], capsys)
    for report in (plain, compressed):
        report["image"].pop("seconds")
    assert compressed == plain


async def test_a_layer_that_does_not_hash_to_its_diff_id_is_refused(tmp_path: Path) -> None:
    files = docker_save([(["test/app:1"], [BASE, APP], [step("ADD base"), step("COPY app")])])
    files[f"{digest(APP)[7:]}/layer.tar"] = FIX  # another layer under the name
    source = open_archive(str(write_tar(tmp_path / "lying.tar", files)))
    [image] = (await source.snapshot()).images
    with pytest.raises(ContentsUnavailable, match="does not match its diff id"):
        await source.image_contents(image.id)
    source.close()


def _hostile_tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info in members:
            body = (data or {}).get(info.name)
            if body is not None:
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return path


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _bad_archives(tmp_path: Path, outside: Path) -> dict[str, tuple[Path, str]]:
    """Each broken or hostile archive, with what its error says."""
    saved = docker_save([(["test/app:1"], [BASE], [step("ADD base")])])
    layer_name = f"{digest(BASE)[7:]}/layer.tar"
    saved_tar = write_tar(tmp_path / "good.tar", saved).read_bytes()
    random = tmp_path / "random.bin"
    random.write_bytes(os.urandom(4096))
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(saved_tar[: len(saved_tar) // 2 + 100])
    truncated_gzip = tmp_path / "truncated.tar.gz"
    compressed = gzip.compress(saved_tar)
    truncated_gzip.write_bytes(compressed[: len(compressed) // 2])
    missing = dict(saved)
    del missing[layer_name]
    self_cycle = dict(saved)
    del self_cycle[layer_name]
    layout = Layout()
    image = layout.image([BASE], [step("ADD base")])
    cycle = layout.files([image])
    cycle["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [{"digest": "sha256:" + "0" * 64}]}).encode()
    looping = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}'}
    looping["index.json"] = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + "1" * 64}],
        }
    ).encode()
    escaping = tmp_path / "escaping"
    files = layout.files([image])
    layout_blob = f"blobs/sha256/{image['digest'][7:]}"
    for name, data in files.items():
        (escaping / name).parent.mkdir(parents=True, exist_ok=True)
        if name != layout_blob:
            (escaping / name).write_bytes(data)
    outside.write_bytes(files[layout_blob])
    (escaping / layout_blob).symlink_to(outside)
    huge = tarfile.TarInfo("manifest.json")
    huge.pax_headers = {"comment": "x" * (2 << 20)}
    many = json.loads(saved["manifest.json"])
    many[0]["Layers"] = many[0]["Layers"] * 10_000
    return {
        "not an archive": (random, "not a readable image archive"),
        "truncated": (truncated, "truncated"),
        "truncated gzip": (truncated_gzip, "corrupt or truncated"),
        "dot-dot name": (
            _hostile_tar(tmp_path / "dotdot.tar", [_file("../evil")], {"../evil": b"x"}),
            "outside itself",
        ),
        "absolute name": (
            _hostile_tar(tmp_path / "abs.tar", [_file("/etc/evil")], {"/etc/evil": b"x"}),
            "outside itself",
        ),
        "link out": (
            write_tar(tmp_path / "linkout.tar", missing, {layer_name: "../../../etc/passwd"}),
            "links outside",
        ),
        "absolute link": (write_tar(tmp_path / "abslink.tar", missing, {layer_name: str(outside)}), "links outside"),
        "link cycle": (
            write_tar(
                tmp_path / "cycle.tar", self_cycle, {layer_name: "../a/layer.tar", "a/layer.tar": f"../{layer_name}"}
            ),
            "too many links",
        ),
        "huge header": (_hostile_tar(tmp_path / "huge.tar", [huge], {"manifest.json": b"[]"}), "extended header"),
        "missing blob": (write_tar(tmp_path / "missing.tar", missing), "missing from the archive"),
        "huge count": (
            write_tar(tmp_path / "count.tar", {**saved, "manifest.json": json.dumps(many).encode()}),
            "more than 4096",
        ),
        "index naming nothing": (write_tar(tmp_path / "empty-index.tar", cycle), "holds no image"),
        "index cycle": (
            write_tar(tmp_path / "index-cycle.tar", looping, {f"blobs/sha256/{'1' * 64}": "../../index.json"}),
            "does not match its digest",
        ),
        "symlink out of a layout": (escaping, "leads outside the layout"),
        "empty directory": (tmp_path, "neither manifest.json nor index.json"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "not an archive",
        "truncated",
        "truncated gzip",
        "dot-dot name",
        "absolute name",
        "link out",
        "absolute link",
        "link cycle",
        "huge header",
        "missing blob",
        "huge count",
        "index naming nothing",
        "index cycle",
        "symlink out of a layout",
        "empty directory",
    ],
)
def test_a_broken_or_hostile_archive_gives_one_clear_error(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "outside-blob"
    path, message = _bad_archives(work, outside)[case]
    if case == "empty directory":
        path = work / "empty"
        path.mkdir()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, out, err = _run([str(path)], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("dockerscope: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message in err
    with pytest.raises(ArchiveUnreadable, match=message):
        open_archive(str(path))
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_the_app_command_refuses_a_bad_archive_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 100)
    result = subprocess.run(
        [sys.executable, "-m", "dockerscope", str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("dockerscope: ") and "not a readable image archive" in result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "dockerscope", str(tmp_path / "nothing-here")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr


def test_a_newer_docker_save_with_an_oci_index_takes_the_tags_of_its_manifest_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = Layout()
    image = layout.image([BASE, APP], [step("ADD base"), step("COPY app")], how="plain")
    image["annotations"] = {
        "io.containerd.image.name": "docker.io/test/app:1",
        "org.opencontainers.image.ref.name": "1",
    }
    files = layout.files([image])
    manifest = json.loads(files[f"blobs/sha256/{image['digest'][7:]}"])
    files["manifest.json"] = json.dumps(
        [
            {
                "Config": f"blobs/sha256/{manifest['config']['digest'][7:]}",
                "RepoTags": ["test/app:1"],
                "Layers": [f"blobs/sha256/{layer['digest'][7:]}" for layer in manifest["layers"]],
            }
        ]
    ).encode()
    saved = write_tar(tmp_path / "saved-25.tar", files)
    source = open_archive(str(saved))
    [listed] = asyncio.run(source.snapshot()).images
    assert listed.tags == ("test/app:1",) and listed.id == manifest["config"]["digest"]
    assert asyncio.run(source.daemon_info()).engine == "docker archive"
    source.close()
    report = _json_report([str(saved)], capsys)
    assert [layer["instruction"] for layer in report["layers"]] == ["ADD base", "COPY app"]


def test_an_archive_with_more_members_than_the_bound_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive_reader, "_MAX_MEMBERS", 3)
    files = docker_save([(["test/app:1"], [BASE, APP], [step("ADD base"), step("COPY app")])])
    for form, path in (("plain", tmp_path / "many.tar"), ("gzip", tmp_path / "many.tar.gz")):
        write_tar(tmp_path / "many.tar", files)
        if form == "gzip":
            path.write_bytes(gzip.compress((tmp_path / "many.tar").read_bytes()))
        with pytest.raises(ArchiveUnreadable, match="more than 3 members"):
            open_archive(str(path))


async def test_a_cancelled_layer_read_stops(tmp_path: Path) -> None:
    source = open_archive(str(_saved(tmp_path)))
    [base, _] = sorted((await source.snapshot()).images, key=lambda image: image.tags)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ReadCancelled):
        await source.image_contents(base.id, cancel=cancel)
    contents = await source.image_contents(base.id)
    assert contents.sources == ("archive",) and contents.files.layers
    assert (await source.image_contents(base.id)).sources == ("memory",)
    source.close()


def test_an_archive_whose_documents_exceed_the_budget_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = _saved(tmp_path)
    monkeypatch.setattr(archive_reader, "_DOCUMENTS_TOTAL", 1000)
    with pytest.raises(ArchiveUnreadable, match="manifests and configs take more than"):
        open_archive(str(saved))


async def test_the_app_says_why_a_corrupt_layer_cannot_be_shown(tmp_path: Path) -> None:
    files = docker_save([(["test/app:1"], [BASE, APP], [step("ADD base"), step("COPY app")])])
    files[f"{digest(APP)[7:]}/layer.tar"] = FIX
    app = create_app(open_archive(str(write_tar(tmp_path / "lying.tar", files))), interval=3600)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await highlight_image(pilot, app, "test/app:1")
        await wait_until(pilot, lambda: layer_table(app).row_count == 2)
        await pilot.press("3", "j", "enter")
        await wait_until(
            pilot, lambda: any("does not match its diff id" in note.message for note in app._notifications)
        )
        assert not isinstance(app.screen, LayerContentsScreen)


async def test_the_host_list_probes_and_reopens_an_archive_opened_this_session(tmp_path: Path) -> None:
    opened = open_archive(str(_saved(tmp_path)))
    catalog = HostCatalog(environment={}, root=str(tmp_path))
    choice = HostChoice(opened.host, "opened this session")
    probe = await catalog.probe(choice)
    assert probe.reachable and probe.label == "docker archive"
    again = catalog.open(choice)
    assert len((await again.snapshot()).images) == 2
    again.close()
    opened.close()
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"junk" * 1000)
    probe = await catalog.probe(HostChoice(str(bad), "opened this session"))
    assert not probe.reachable and "not a readable image archive" in probe.problem
