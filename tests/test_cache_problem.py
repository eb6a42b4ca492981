"""A layer cache directory that is not the user's alone is not used, and dockerscope says so once:
one notification in the app, one line on stderr from `analyze`, and the work goes on without it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from apphelpers import SIZE
from conftest import WASTE_IMAGE
from dockerscope import analyze
from dockerscope.service import Connection, DockerService
from dockerscope.service.layer_cache import LayerCache
from dockerscope.ui import create_app
from test_layer_contents_app import open_layer


def _open_to_others(root: Path) -> Path:
    layers = root / "dockerscope" / "layers"
    layers.mkdir(parents=True)
    layers.chmod(0o755)
    return layers


def test_analyze_says_once_on_stderr_that_the_cache_is_not_used(
    docker_host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    layers = _open_to_others(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    out = io.StringIO()
    assert analyze.main([WASTE_IMAGE, "--json", "--host", docker_host], out=out) == 0
    assert json.loads(out.getvalue())["image"]["tags"] == [WASTE_IMAGE]
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"dockerscope: layer cache {layers} not used: ")
    assert list(layers.iterdir()) == []  # nothing was written there


async def test_the_app_says_once_that_the_cache_is_not_used(connection: Connection, tmp_path: Path) -> None:
    layers = _open_to_others(tmp_path)
    service = DockerService(connection, cache=LayerCache(layers))
    app = create_app(service, interval=60)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        await pilot.press("escape")
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        told = [note for note in app._notifications if note.title == "Layer cache"]
        assert len(told) == 1
        assert str(layers) in told[0].message and "not used" in told[0].message
    assert list(layers.iterdir()) == []
