"""`z`: the focused pane of the explorer to the whole screen and back, by keys, on the private
daemon's fixture images."""

from __future__ import annotations

from apphelpers import SIZE, highlight_image, layer_table
from conftest import APP_IMAGE
from dockerscope.service import DockerService
from dockerscope.ui import create_app


async def test_z_zooms_the_focused_pane_and_z_or_escape_brings_the_others_back(service: DockerService) -> None:
    app = create_app(service, interval=60)
    async with app.run_test(size=SIZE) as pilot:
        await highlight_image(pilot, app, APP_IMAGE)
        screen = app.explorer
        layers_pane = screen.query_one("#layers-pane")
        narrow = layers_pane.region.width
        await pilot.press("3", "z")
        await pilot.pause()
        assert screen.maximized is layers_pane
        assert layers_pane.region.width > narrow and layers_pane.region.width >= SIZE[0] - 2
        assert screen.query_one("#images-pane").region.width == 0  # out of the way
        assert screen.query_one("#status").region.height > 0  # the status line stays
        rows = layer_table(app).row_count
        await pilot.press("z")
        await pilot.pause()
        assert screen.maximized is None and layers_pane.region.width == narrow
        await pilot.press("1", "z")
        await pilot.pause()
        assert screen.maximized is screen.query_one("#images-pane")
        await pilot.press("escape")
        await pilot.pause()
        assert screen.maximized is None
        assert layer_table(app).row_count == rows
