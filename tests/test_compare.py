"""Comparing two images (`dockerscope diff`): layers aligned on their shared chain ids, config
differences by field and key; hostile documents compared without a crash or an escape reaching
the terminal."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from conftest import APP_IMAGE, BASE_IMAGE, CHAIN_A_IMAGE, CHAIN_C_IMAGE, IMPORTED_IMAGE, WASTE_IMAGE
from dockerscope import diff
from dockerscope.service import (
    ChangeType,
    ImageDetail,
    LayerKind,
    LayerRow,
    LayerStack,
    MappingQuality,
    compare_config,
    compare_layers,
)
from dockerscope.service.compare import VALUE_CHARS, compare_listings
from dockerscope.service.layer_files import EntryType, LayerEntry, LayerListing


def _detail(
    inspect: Mapping[str, Any], chain: Sequence[str] = (), sizes: Sequence[int] = (), history: Sequence[str] = ()
) -> ImageDetail:
    rows = tuple(
        LayerRow(
            number=number + 1,
            created=None,
            created_by=created_by,
            instruction=created_by,
            size=sizes[number] if number < len(sizes) else 0,
            kind=LayerKind.LAYER,
            diff_id=None,
            comment="",
            layer_index=number if number < len(chain) else None,
        )
        for number, created_by in enumerate(history)
    )
    stack = LayerStack(rows, len(chain), sum(sizes), MappingQuality.EXACT, "")
    return ImageDetail("sha256:" + "ab" * 32, inspect, stack, tuple(chain))


def _layers(*diff_ids: str) -> dict[str, Any]:
    return {"RootFS": {"Type": "layers", "Layers": list(diff_ids)}}


def test_layers_align_on_the_shared_chain_prefix_and_name_where_they_diverge() -> None:
    left = _detail(_layers("d1", "d2", "d3"), chain=("c1", "c2", "c3"), sizes=(10, 20, 30), history=("a", "b", "c"))
    right = _detail(
        _layers("d1", "d2", "d4", "d5"), chain=("c1", "c2", "c4", "c5"), sizes=(10, 20, 5, 7), history="abde"
    )
    layers = compare_layers(left, right)
    assert [layer.diff_id for layer in layers.shared] == ["d1", "d2"]
    assert [(layer.index, layer.diff_id, layer.size) for layer in layers.left_only] == [(2, "d3", 30)]
    assert [layer.instruction for layer in layers.right_only] == ["d", "e"]
    assert layers.diverges_at == 2
    assert layers.size_delta == 5 + 7 - 30


def test_the_same_diff_id_on_another_stack_is_not_a_shared_layer() -> None:
    left = _detail(_layers("d1", "d2"), chain=("c1", "c2"))
    right = _detail(_layers("d0", "d2"), chain=("c0", "c9"))
    layers = compare_layers(left, right)
    assert layers.shared == () and layers.diverges_at == 0


def test_identical_stacks_do_not_diverge() -> None:
    image = _detail(_layers("d1"), chain=("c1",), sizes=(3,), history=("a",))
    layers = compare_layers(image, image)
    assert layers.diverges_at is None and layers.size_delta == 0 and len(layers.shared) == 1


def _config(**config: Any) -> dict[str, Any]:
    return {"Config": config, "Architecture": "amd64", "Os": "linux"}


def test_config_changes_by_field_and_key() -> None:
    left = _detail(
        _config(Env=["PATH=/bin", "MODE=a", "MODE=b"], Cmd=["run"], Labels={"x": "1", "gone": "y"}, User="1000")
    )
    right = _detail(
        {
            **_config(Env=["PATH=/usr/bin", "NEW=1"], Cmd=["run"], Labels={"x": "2"}, ExposedPorts={"80/tcp": {}}),
            "Architecture": "arm64",
        }
    )
    changes = {(change.field, change.key): change for change in compare_config(left, right)}
    assert changes["Env", "PATH"].change is ChangeType.CHANGED
    assert (changes["Env", "PATH"].before, changes["Env", "PATH"].after) == ("/bin", "/usr/bin")
    assert changes["Env", "MODE"].change is ChangeType.REMOVED and changes["Env", "MODE"].before == "b"
    assert changes["Env", "NEW"].change is ChangeType.ADDED
    assert changes["Labels", "x"].change is ChangeType.CHANGED
    assert changes["Labels", "gone"].change is ChangeType.REMOVED
    assert changes["User", ""].change is ChangeType.REMOVED
    assert changes["ExposedPorts", "80/tcp"].change is ChangeType.ADDED
    assert (changes["Architecture", ""].before, changes["Architecture", ""].after) == ("amd64", "arm64")
    assert ("Cmd", "") not in changes


def test_history_entries_compare_by_number_in_order() -> None:
    left = _detail({}, history=[f"step {number}" for number in range(12)])
    right = _detail({}, history=[f"step {number}" for number in range(10)] + ["other", "step 11", "more"])
    changes = [(change.field, change.key, change.change) for change in compare_config(left, right)]
    assert changes == [("History", "11", ChangeType.CHANGED), ("History", "13", ChangeType.ADDED)]


@pytest.mark.parametrize(
    "config",
    [
        {"Env": "PATH=/bin", "Labels": ["x"], "ExposedPorts": "80", "Volumes": 5, "Cmd": {"a": [1, None]}},
        {"Env": [None, 5, "=", "NOEQUALS"], "Labels": {"k": {"nested": [1, 2]}, "n": None}},
        None,
        "not a mapping",
    ],
    ids=["wrong types", "odd entries", "null", "a string"],
)
def test_hostile_configs_compare_without_a_crash(config: Any) -> None:
    compare_config(_detail({"Config": config, "RootFS": "x"}), _detail(_config(Env=["A=1"])))
    compare_layers(_detail({"RootFS": {"Layers": "x"}}, chain=("c",)), _detail(_layers("d"), chain=("c",)))


def test_a_huge_value_is_cut() -> None:
    changes = compare_config(_detail(_config(Labels={"big": "x" * 10_000_000})), _detail(_config()))
    assert len(changes[0].before or "") == VALUE_CHARS + 1


def _file(path: str, size: int = 1, mode: int = 0o644, uid: int = 0, kind: EntryType = EntryType.FILE) -> LayerEntry:
    return LayerEntry(path, kind, size, mode, uid, 0)


BASE_LISTING = LayerListing(
    (_file("etc", 0, 0o755, kind=EntryType.DIR), _file("etc/os", 5), _file("etc/keep", 3), _file("etc/gone", 9))
)


def test_final_filesystems_compare_path_by_path() -> None:
    left = [("d1", BASE_LISTING), ("d2", LayerListing((_file("etc/same-size", 4),)))]
    right = [
        ("d1", BASE_LISTING),
        (
            "d3",
            LayerListing(
                (_file("etc/same-size", 4), _file("etc/os", 8, 0o600, uid=1000), _file("new", 2)),
                deleted=frozenset({"etc/gone"}),
            ),
        ),
    ]
    differences = {difference.path: difference for difference in compare_listings(left, right, shared_layers=1)}
    assert set(differences) == {"etc/gone", "etc/os", "etc/same-size", "new"}  # etc/keep: the same layer
    assert differences["etc/gone"].change is ChangeType.REMOVED and differences["etc/gone"].size_delta == -9
    assert differences["new"].change is ChangeType.ADDED and differences["new"].size_delta == 2
    assert differences["etc/os"].changed == ("size", "mode", "owner") and differences["etc/os"].size_delta == 3
    # Written by a layer of its own on each side at the same size: listings cannot tell the contents.
    assert differences["etc/same-size"].changed == ("contents",)


def test_the_same_layers_give_no_file_difference() -> None:
    image = [("d1", BASE_LISTING)]
    assert compare_listings(image, image, shared_layers=1) == []


def _diff(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    out = io.StringIO()
    code = diff.main(list(arguments), out)
    return code, out.getvalue(), capsys.readouterr().err


def test_diff_of_an_image_and_one_built_on_it(
    docker_host: str, api: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _diff(capsys, CHAIN_A_IMAGE, CHAIN_C_IMAGE, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert len(report["layers"]["shared"]) == 3 and report["layers"]["a_only"] == []
    assert [layer["instruction"] for layer in report["layers"]["b_only"]] == [
        "RUN echo b > /chain-b.txt",
        "RUN echo c > /chain-c.txt",
    ]
    assert report["layers"]["diverges_at"] == 3
    assert report["layers"]["size_delta"] == sum(layer["size"] for layer in report["layers"]["b_only"])
    assert {(change["field"], change["change"]) for change in report["config"]} == {("History", "added")}
    assert [(file["path"], file["change"], file["size_delta"]) for file in report["files"]] == [
        ("chain-b.txt", "added", 2),
        ("chain-c.txt", "added", 2),
    ]


def test_diff_lists_the_files_a_later_image_adds_changes_and_removes(
    docker_host: str, api: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _diff(capsys, BASE_IMAGE, WASTE_IMAGE)
    assert code == 0, err
    assert "Files: 8 added, 0 removed, 0 changed" in out
    assert "+ /data/keep/config  +12B" in out  # version two, not the file its first layer wrote
    code, out, err = _diff(capsys, WASTE_IMAGE, BASE_IMAGE, "--no-files", "--json")
    assert code == 0, err
    assert json.loads(out)["files"] is None


def test_diff_of_unrelated_images_and_of_an_image_with_itself(
    docker_host: str, api: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _diff(capsys, IMPORTED_IMAGE, APP_IMAGE)
    assert code == 0, err
    assert "Layers: no layer in common" in out
    # The app image's hostile labels reach the report escaped, never as terminal control codes.
    assert "hostile.escape" in out and "\x1b" not in out and "\x07" not in out
    code, out, err = _diff(capsys, BASE_IMAGE, BASE_IMAGE)
    assert code == 0, err
    assert "Layers: the same 2 layers" in out and "Config: the same" in out


def test_diff_of_a_missing_image_is_one_line(docker_host: str, api: object, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _diff(capsys, BASE_IMAGE, "dockerscope-test/no-such-image:1")
    assert code == 2 and out == ""
    assert err.startswith("dockerscope diff: ") and len(err.strip().splitlines()) == 1


def test_diff_of_two_images_of_a_docker_save_equals_the_daemon_s(
    docker_host: str, api: object, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    saved = tmp_path / "saved.tar"
    subprocess.run(
        ["docker", "save", "-o", str(saved), BASE_IMAGE, WASTE_IMAGE],
        check=True,
        env={**os.environ, "DOCKER_HOST": docker_host},
    )
    code, from_daemon, err = _diff(capsys, BASE_IMAGE, WASTE_IMAGE, "--json")
    assert code == 0, err
    code, from_archive, err = _diff(capsys, str(saved), BASE_IMAGE, WASTE_IMAGE, "--json")
    assert code == 0, err
    daemon_report, archive_report = json.loads(from_daemon), json.loads(from_archive)
    for part in ("config", "files"):
        assert archive_report[part] == daemon_report[part], part

    def stacks(report: dict[str, Any]) -> dict[str, Any]:
        """The layers without their sizes: an archive knows a layer's tar size, a daemon its
        content's."""
        layers = report["layers"]
        return {
            "diverges_at": layers["diverges_at"],
            **{
                side: [(layer["index"], layer["diff_id"], layer["instruction"]) for layer in layers[side]]
                for side in ("shared", "a_only", "b_only")
            },
        }

    assert stacks(archive_report) == stacks(daemon_report)
    assert stacks(archive_report)["diverges_at"] == 2
    assert archive_report["files"], "the waste image adds files to the base"
    with pytest.raises(SystemExit) as exited:
        diff.main([str(saved), BASE_IMAGE])
    assert exited.value.code == 2 and "give A B, or FILE|DIR A B" in capsys.readouterr().err
