"""Enter on a file in the layer contents: its bytes as that layer leaves them, driven by keys against
the private daemon's fixture images and checked against the image's own bytes (`docker save`)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import platform
import subprocess
import tarfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest
from textual.widgets import Static

from apphelpers import SIZE, highlight_container, layer_table, wait_until
from conftest import CHANGES_CONTAINER, WASTE_IMAGE
from dockerscope.service import Connection, DockerService, open_archive
from dockerscope.service.demo import demo_source
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.file_view_screen import FileViewScreen
from dockerscope.ui.layer_contents_screen import LayerContentsScreen
from file_view_helpers import open_file, shown, title, tree
from test_layer_contents_app import open_layer


@pytest.fixture
async def app(service: DockerService) -> AsyncIterator[DockerscopeApp]:
    yield create_app(service, interval=60)


def layer_bytes(api: docker.APIClient, image: str, layer: int, path: str) -> bytes:
    """The bytes layer `layer` (0: the first) of `image` stores for `path`, from `docker save`."""
    saved = io.BytesIO(b"".join(api.get_image(image)))
    with tarfile.open(fileobj=saved) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        blob = outer.extractfile(manifest[0]["Layers"][layer])
        assert blob is not None
        with tarfile.open(fileobj=io.BytesIO(blob.read())) as inner:
            member = inner.extractfile(path)
            assert member is not None
            return member.read()


def numbered(lines: list[str]) -> list[str]:
    """The text lines as the view shows them, with line numbers."""
    width = len(str(len(lines)))
    return [f"{number:>{width}} │ {line}".rstrip() for number, line in enumerate(lines, 1)]


async def test_enter_on_a_file_shows_its_text_as_the_layer_leaves_it(
    app: DockerscopeApp, api: docker.APIClient
) -> None:
    real = layer_bytes(api, WASTE_IMAGE, 3, "data/keep/config")
    assert real == b"version-two\n"
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        view = await open_file(pilot, app, "data/keep/config")
        assert shown(view) == numbered(real.decode().splitlines())
        head = title(view)
        assert "/data/keep/config · as of layer 4 of 5 (written by layer 4 · RUN echo version-two" in head
        assert "12B (12 bytes) · -rw-r--r-- · 0:0 · text" in head
        assert "read from overlay2 in " in head or "read from export in " in head
        await pilot.press("h")
        assert shown(view)[0].startswith("00000000  76 65 72 73 69 6f 6e 2d  74 77 6f 0a")
        assert "|version-two.|" in shown(view)[0]
        await pilot.press("escape")
        assert isinstance(app.screen, LayerContentsScreen)
        assert app.focused is tree(app)
        await pilot.press("escape")
        assert app.screen is app.explorer


async def test_a_removed_file_shows_the_last_version_before_the_removal(
    app: DockerscopeApp, api: docker.APIClient
) -> None:
    real = layer_bytes(api, WASTE_IMAGE, 2, "data/big.bin")
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        view = await open_file(pilot, app, "data/big.bin")
        head = title(view)
        assert "as of layer 3 of 5, the last version before layer 4 removed it (written by layer 3" in head
        assert "1.05MB (1,048,576 bytes)" in head and "binary: data" in head
        assert "showing the first" not in head  # exactly 1 MiB: all of it
        assert shown(view)[0] == "00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|"
        await pilot.press("end")
        await pilot.pause()
        assert shown(view)[-1].startswith(f"{len(real) - 16:08x}  00 00")


async def test_a_symlink_shows_its_target_and_a_hard_link_the_bytes_it_shares(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        await pilot.press("a")  # the whole filesystem as of layer 4
        view = await open_file(pilot, app, "data/config.symlink")
        assert shown(view) == numbered(["version-two"])
        assert "symlinks followed: /data/config.symlink → /data/keep/config" in title(view)
        await pilot.press("escape")
        view = await open_file(pilot, app, "data/keep/config.link")
        assert shown(view) == numbered(["v1"])  # linked to the layer 3 config, which layer 4 replaced
        assert "written by layer 3" in title(view)
        assert "hard link to /data/keep/config: the bytes it shares" in title(view)


async def test_a_binary_shows_a_hex_dump_its_type_and_the_first_mib(app: DockerscopeApp, api: docker.APIClient) -> None:
    real = layer_bytes(api, WASTE_IMAGE, 0, "bin/busybox")
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "COPY")
        view = await open_file(pilot, app, "bin/busybox")
        head = title(view)
        machine = {"x86_64": "x86-64", "aarch64": "AArch64"}.get(platform.machine(), "")
        assert ("binary: ELF 64-bit LSB " in head and head.split("·")[-2].strip().endswith(machine)) or machine in head
        if len(real) > 1 << 20:
            assert f"showing the first 1.0 MiB of {len(real) / (1 << 20):.1f} MiB" in head
        first = real[:16]
        assert shown(view)[0].startswith(f"00000000  {first[:8].hex(' ')}  {first[8:].hex(' ')}  |.ELF")
        await pilot.press("end")
        await pilot.pause()
        assert shown(view)[-1].startswith(f"{(1 << 20) - 16:08x}  {real[(1 << 20) - 16 : (1 << 20) - 8].hex(' ')}")


async def test_a_containers_writable_layer_shows_what_the_container_wrote(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await highlight_container(pilot, app, CHANGES_CONTAINER)
        table = layer_table(app)
        await wait_until(pilot, lambda: table.get_row_at(table.row_count - 1)[0].plain == "RW")
        await pilot.press("3", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, LayerContentsScreen) and bool(tree(app).root.children))
        view = await open_file(pilot, app, "app/hello.txt")
        assert shown(view) == numbered(["hello from dockerscope", "more"])
        assert "as of layer 8 of 8 (written by layer 8 · container writable layer)" in title(view)


async def test_enter_on_a_directory_opens_it_and_on_a_path_without_contents_notifies(app: DockerscopeApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        file_tree = tree(app)
        node = file_tree.cursor_node
        assert node is not None and node.data is not None and node.data.path == "data" and node.is_expanded
        await pilot.press("enter")
        assert not node.is_expanded and isinstance(app.screen, LayerContentsScreen)
        await pilot.press("enter")
        assert node.is_expanded
        while (
            file_tree.cursor_node is None
            or file_tree.cursor_node.data is None
            or file_tree.cursor_node.data.path != "data/gone"
        ):
            await pilot.press("j")
        await pilot.press("enter")  # removed by this layer, and a directory below it
        await wait_until(pilot, lambda: bool(app._notifications))
        notification = next(iter(app._notifications))
        assert (notification.title, notification.message) == ("No contents to show", "/data/gone is a directory")
        assert isinstance(app.screen, LayerContentsScreen)


async def test_a_source_without_file_contents_says_so() -> None:
    app = create_app(demo_source(), interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, "demo/worker:1", "work.sh")
        file_tree = tree(app)
        while file_tree.cursor_node is None or file_tree.cursor_node.data is None or file_tree.cursor_node.data.is_dir:
            await pilot.press("j")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app._notifications))
        assert isinstance(app.screen, LayerContentsScreen)
        assert "holds no file contents" in next(iter(app._notifications)).message


class SlowReads(DockerService):
    """The real service, with every file read held in its thread until the test opens the gate."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.gate = threading.Event()
        self.started = threading.Event()
        self.cancel: threading.Event | None = None

    async def read_layer_files(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        self.cancel = kwargs.get("cancel")
        self.started.set()
        await asyncio.to_thread(self.gate.wait, 10)
        return await super().read_layer_files(*args, **kwargs)


async def test_escape_while_the_file_is_read_cancels_and_goes_back(service: DockerService) -> None:
    slow = SlowReads(service.connection)
    app = create_app(slow, interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        file_tree = tree(app)
        while (
            file_tree.cursor_node is None
            or file_tree.cursor_node.data is None
            or file_tree.cursor_node.data.path != "data/keep/config"
        ):
            await pilot.press("j")
        await pilot.press("enter")
        await wait_until(pilot, slow.started.is_set)
        assert isinstance(app.screen, FileViewScreen)
        assert "reading the file" in app.screen.query_one("#file-loading", Static).render().plain
        await pilot.press("escape")
        assert isinstance(app.screen, LayerContentsScreen)
        assert slow.cancel is not None and slow.cancel.is_set()
        slow.gate.set()
        await pilot.pause(0.2)
        assert isinstance(app.screen, LayerContentsScreen) and not app._notifications
    slow.close()


async def test_a_saved_archive_shows_the_same_bytes(api: docker.APIClient, docker_host: str, tmp_path: Path) -> None:
    saved = tmp_path / "waste.tar"
    subprocess.run(
        ["docker", "save", "-o", str(saved), WASTE_IMAGE], check=True, env={**os.environ, "DOCKER_HOST": docker_host}
    )
    app = create_app(open_archive(str(saved)), interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, WASTE_IMAGE, "version-two")
        view = await open_file(pilot, app, "data/big.bin")
        assert "the last version before layer 4 removed it" in title(view) and "read from archive" in title(view)
        assert shown(view)[0] == "00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|"
        await pilot.press("escape")
        view = await open_file(pilot, app, "data/keep/config")
        assert shown(view) == numbered(["version-two"])
