"""Real archives of the fixture images: `docker save` from the test daemon (Docker 20.10 writes the
legacy layout), a gzip of it, `skopeo copy docker-archive:F oci:DIR:TAG` and a tar of that layout.
`analyze` on each gives what it gives on the daemon; the app explores them by keyboard."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from textual.widgets import Static

from apphelpers import SIZE, highlight_image, layer_table, shown_names, status_text, tree_title, wait_until
from conftest import APP_IMAGE, BASE_IMAGE, CHAIN_A_IMAGE, CHAIN_B_IMAGE, WASTE_IMAGE
from dockerscope import analyze
from dockerscope.service import open_archive
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.file_tree import FileTree
from dockerscope.ui.layer_contents_screen import LayerContentsScreen

SAVED = (APP_IMAGE, BASE_IMAGE, CHAIN_A_IMAGE, CHAIN_B_IMAGE, WASTE_IMAGE)


@pytest.fixture(scope="module")
def archives(
    api: docker.APIClient, docker_host: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Path]]:
    """The fixture images saved by the daemon, and the same in the other forms."""
    root = tmp_path_factory.mktemp("archives")
    saved = root / "saved.tar"
    subprocess.run(
        ["docker", "save", "-o", str(saved), *SAVED], check=True, env={**os.environ, "DOCKER_HOST": docker_host}
    )
    packed = root / "saved.tar.gz"
    with saved.open("rb") as source, gzip.open(packed, "wb") as target:
        shutil.copyfileobj(source, target)
    layout = root / "oci"
    subprocess.run(
        ["skopeo", "copy", "--quiet", f"docker-archive:{saved}:{WASTE_IMAGE}", f"oci:{layout}:waste"], check=True
    )
    oci_tar = root / "oci.tar"
    with tarfile.open(oci_tar, "w") as tar:
        tar.add(layout, arcname=".")
    yield {"saved": saved, "packed": packed, "layout": layout, "oci_tar": oci_tar}


def _report(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out = io.StringIO()
    code = analyze.main([*argv, "--json", "--no-cache"], out)
    assert (code, capsys.readouterr().err) == (0, "")
    report: dict[str, Any] = json.loads(out.getvalue())
    for key in ("source", "seconds"):
        report["image"].pop(key)
    return report


def test_docker_save_writes_the_layout_its_api_version_says(archives: dict[str, Path], api: docker.APIClient) -> None:
    """API 1.43 and older (Docker 20.10 here) write the legacy layout, 1.44 and newer an OCI index
    and blobs as well: the tests above then cover that one."""
    with tarfile.open(archives["saved"]) as tar:
        names = tar.getnames()
    major, minor = (int(part) for part in api.version()["ApiVersion"].split("."))
    assert "manifest.json" in names
    assert ("index.json" in names and any(name.startswith("blobs/") for name in names)) == ((major, minor) >= (1, 44))


@pytest.mark.parametrize("image", [APP_IMAGE, WASTE_IMAGE])
@pytest.mark.parametrize("form", ["saved", "packed"])
def test_analyze_on_a_saved_archive_equals_analyze_on_the_daemon(
    image: str, form: str, archives: dict[str, Path], docker_host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    on_daemon = _report([image, "--host", docker_host, "--source", "export"], capsys)
    on_archive = _report([str(archives[form]), image], capsys)
    # docker save writes the tags it was asked for, the daemon knows them all.
    assert on_archive["image"].pop("tags") == [image]
    assert image in on_daemon["image"].pop("tags")
    assert on_archive == on_daemon
    assert on_archive["image"]["wasted_bytes"] > 0 or image == APP_IMAGE


@pytest.mark.parametrize("form", ["layout", "oci_tar"])
def test_analyze_on_an_oci_layout_from_skopeo_gives_the_daemons_listings(
    form: str, archives: dict[str, Path], docker_host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    on_daemon = _report([WASTE_IMAGE, "--host", docker_host, "--source", "export"], capsys)
    on_layout = _report([str(archives[form])], capsys)
    # skopeo writes an OCI config (another digest, so another image id) and gzips the layers; the
    # layers themselves, their diff ids and what they hold are the same.
    assert on_layout["image"]["tags"] == ["waste"]
    for report in (on_daemon, on_layout):
        report["image"].pop("id")
        report["image"].pop("tags")
    assert on_layout == on_daemon


async def test_the_app_explores_a_saved_archive(archives: dict[str, Path]) -> None:
    source = open_archive(str(archives["saved"]))
    app = create_app(source, interval=3600)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await highlight_image(pilot, app, APP_IMAGE)
        assert sorted(shown_names(app)) == sorted(SAVED)
        status = status_text(app)
        assert "● polling" in status and "docker archive · 5 images · 0 containers" in status
        assert not app.explorer.query_one("#containers-pane").display
        await pilot.press("4")
        await wait_until(pilot, lambda: any("has no containers" in note.message for note in app._notifications))
        await wait_until(pilot, lambda: tree_title(app) == APP_IMAGE and layer_table(app).row_count > 0)
        summary = app.explorer.query_one("#layer-summary", Static)
        await wait_until(pilot, lambda: "base: dockerscope-test/base:1" in summary.render().plain)
        assert "exact" in summary.render().plain
        table = layer_table(app)
        rows = [[cell.plain for cell in table.get_row_at(row)] for row in range(table.row_count)]
        # Exact from empty_layer: the zero-size-looking WORKDIR and the deleting RUN made layers.
        made = [row[-1].split(" ", 1)[0] for row in rows if row[3] not in ("—", "")]
        assert made == ["COPY", "RUN", "WORKDIR", "COPY", "COPY", "RUN", "RUN"]
        assert [row[4] for row in rows if row[3] not in ("—", "")][:2] == ["4 other", "4 other"]

        await pilot.press("3")
        while "data.bin" not in table.get_row_at(table.cursor_row)[-1].plain:
            await pilot.press("j")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, LayerContentsScreen) and "data.bin" in _tree(app))
        assert "+ data.bin" in _tree(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, LayerContentsScreen))


def _tree(app: DockerscopeApp) -> str:
    """The layer contents screen's file tree as the user sees it."""
    assert isinstance(app.screen, LayerContentsScreen)
    tree = app.screen.query_one(FileTree)
    return "\n".join(tree.render_line(y).text for y in range(min(tree.last_line + 1, tree.size.height)))


def test_platform_picks_on_a_daemon_too(docker_host: str, capsys: pytest.CaptureFixture[str]) -> None:
    on_amd = _report([APP_IMAGE, "--host", docker_host, "--platform", "linux/amd64", "--source", "export"], capsys)
    assert on_amd["image"]["tags"][0] == APP_IMAGE
    code = analyze.main([APP_IMAGE, "--host", docker_host, "--platform", "linux/arm64"], io.StringIO())
    assert code == 2 and "no image matches dockerscope-test/app:1 linux/arm64" in capsys.readouterr().err
