"""Memory that must not grow with use: moving between panes and screens again and again keeps a
bounded number of widgets alive (the soak in benchmarks/soak.py grew by 200 % before this held)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import pytest
from textual._styles_cache import StylesCache
from textual.widgets._footer import FooterKey

from apphelpers import SIZE, highlight_image, wait_until
from conftest import WASTE_IMAGE
from dockerscope.service import DockerService
from dockerscope.ui import DockerscopeApp, create_app
from dockerscope.ui.layer_contents_screen import LayerContentsScreen

ROUNDS = 12


@pytest.fixture
async def app(service: DockerService) -> AsyncIterator[DockerscopeApp]:
    yield create_app(service, interval=60)


def live_count(kind: type) -> int:
    gc.collect()
    return sum(1 for thing in gc.get_objects() if isinstance(thing, kind))


async def test_moving_between_panes_keeps_no_old_footer_keys(app: DockerscopeApp) -> None:
    """Each focus move rebuilds the footer's keys; the keys it replaced must be freed."""
    async with app.run_test(size=SIZE) as pilot:
        # A headless app has no terminal focus, and Footer rebuilds only with it (as in a terminal).
        app.app_focus = True
        await highlight_image(pilot, app, WASTE_IMAGE)
        await pilot.press("2", "3", "1")
        await pilot.pause(0.2)
        before, styles_before = live_count(FooterKey), live_count(StylesCache)
        for _ in range(ROUNDS):
            await pilot.press("2", "4", "3", "1")
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        after, styles_after = live_count(FooterKey), live_count(StylesCache)
        # 4 rebuilds a round: a leak would keep 4 x ROUNDS x (keys shown) more.
        assert after <= before + 10, f"{before} footer keys alive before, {after} after {ROUNDS} rounds"
        # Each widget has one StylesCache, with its rendered lines; a Textual memo kept those of
        # the last 1,024 widgets drawn, removed or not.
        assert styles_after <= styles_before + 10, f"{styles_before} style caches before, {styles_after} after"


async def test_opening_and_closing_layer_contents_keeps_no_old_screens(app: DockerscopeApp) -> None:
    """Enter on a layer, then Esc, again and again: the closed screens go, and so do the footer
    keys rebuilt each time the explorer shows again."""
    async with app.run_test(size=SIZE) as pilot:
        app.app_focus = True
        await highlight_image(pilot, app, WASTE_IMAGE)
        await pilot.press("3")

        async def open_and_close() -> None:
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, LayerContentsScreen))
            await pilot.press("a", "s", "escape")
            await wait_until(pilot, lambda: not isinstance(app.screen, LayerContentsScreen))
            await pilot.pause(0.05)

        await open_and_close()
        await pilot.pause(0.2)
        footer_keys = live_count(FooterKey)
        for _ in range(ROUNDS):
            await open_and_close()
        await pilot.pause(0.2)
        assert live_count(LayerContentsScreen) <= 1
        assert live_count(FooterKey) <= footer_keys + 10, f"{footer_keys} footer keys alive before"
