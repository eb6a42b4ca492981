"""A hostile file name and contents in the file view: shown escaped, never interpreted. A module of
its own: it imports an image, so it runs with the tests that change the daemon, while the other
file view tests only read it."""

from __future__ import annotations

import io
import tarfile
from collections.abc import AsyncIterator, Iterator

import docker
import pytest

from apphelpers import SIZE
from dockerscope.service import DockerService
from dockerscope.ui import DockerscopeApp, create_app
from file_view_helpers import open_file, shown, title
from test_layer_contents_app import open_layer

HOSTILE_IMAGE = "dockerscope-test/view-hostile:tmp"
HOSTILE_NAME = "evil\x1b]0;pwned\x07[red]name[/red].txt"
HOSTILE_BYTES = b"\x1b[2J\x1b]52;c;cHduZWQ=\x07[bold red]alarm[/bold red]\n\xe2\x80\xaeevil\tend\r\nlast"


@pytest.fixture
async def app(service: DockerService) -> AsyncIterator[DockerscopeApp]:
    yield create_app(service, interval=60)


@pytest.fixture
def hostile_image(api: docker.APIClient) -> Iterator[str]:
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(HOSTILE_NAME)
        info.size = len(HOSTILE_BYTES)
        archive.addfile(info, io.BytesIO(HOSTILE_BYTES))
    repository, tag = HOSTILE_IMAGE.split(":")
    api.import_image_from_data(payload.getvalue(), repository=repository, tag=tag)
    yield HOSTILE_IMAGE
    api.remove_image(HOSTILE_IMAGE, force=True)


async def test_hostile_names_and_contents_are_shown_escaped_never_interpreted(
    app: DockerscopeApp, hostile_image: str
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_layer(pilot, app, hostile_image, "")
        view = await open_file(pilot, app, HOSTILE_NAME)
        assert title(view).startswith("/evil\\x1b]0;pwned\\x07[red]name[/red].txt · as of layer 1 of 1")
        assert shown(view) == [
            "1 │ \\x1b[2J\\x1b]52;c;cHduZWQ=\\x07[bold red]alarm[/bold red]",
            "2 │ \\u202eevil   end",
            "3 │ last",
        ]
        await pilot.press("h")
        assert shown(view)[0] == "00000000  1b 5b 32 4a 1b 5d 35 32  3b 63 3b 63 48 64 75 5a  |.[2J.]52;c;cHduZ|"
