"""What start-up loads and does, and in which order, checked without a clock: a change that makes
`--help` load docker-py or Textual, makes `analyze` load Textual, sends the first poll only after
Textual has loaded, loads a screen the first frame does not show, builds the footer's keys again
for nothing, or leaves the cycle collector off, fails here (benchmarks/startup.py has the times)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from textual.widgets._footer import FooterKey

import dockerscope.ui
from apphelpers import SIZE, shown_names, wait_until
from dockerscope import cli
from dockerscope.ui import create_app
from dockerscope.ui.key_footer import KeyFooter
from recorded_daemon import load_recording
from recorded_source import RecordedSource

HEAVY = ("docker", "requests", "urllib3", "textual", "rich", "humanize")


def loaded_after(code: str) -> list[str]:
    """The heavy packages a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_load_neither_docker_py_nor_textual(flag: str) -> None:
    code = f"from dockerscope.cli import main\ntry:\n    main([{flag!r}])\nexcept SystemExit:\n    pass"
    assert loaded_after(code) == []


def test_analyze_loads_no_textual() -> None:
    loaded = loaded_after("import dockerscope.analyze")
    assert "textual" not in loaded
    assert "rich" not in loaded
    assert "docker" in loaded  # the probe sees what it should: analyze needs docker-py at once


def test_the_first_poll_is_sent_before_textual_loads() -> None:
    # The daemon answers the first lists while Textual loads: the poll must be on its way first.
    code = (
        "import sys\n"
        "from dockerscope.service import DockerService\n"
        "def prefetch(self):\n"
        "    print('textual loaded at the first poll:', 'textual' in sys.modules)\n"
        "    raise SystemExit(0)\n"
        "DockerService.prefetch = prefetch\n"
        "from dockerscope.cli import main\n"
        "main(['--host', 'unix:///nonexistent/docker.sock'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "textual loaded at the first poll: False"


def test_the_app_loads_no_screen_its_first_frame_does_not_show() -> None:
    # Each is loaded when first pushed: the help, the layer views, the connection problem.
    code = (
        "import json, sys\n"
        "import dockerscope.ui\n"
        "print(json.dumps([name for name in sys.modules if name.startswith('dockerscope.ui.')]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = json.loads(result.stdout)
    assert "dockerscope.ui.explorer" in loaded  # the probe sees what it should
    assert [name for name in loaded if name.endswith("_screen")] == []


async def test_the_footer_builds_its_keys_again_only_when_they_change() -> None:
    # Start-up asks the footer to rebuild five times (the explorer mounts, the list takes focus, its
    # first row highlights), nearly always with the keys it shows already.
    app = create_app(RecordedSource(load_recording("recorded-fixtures.json")), interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        app.app_focus = True  # a headless app has no terminal focus, and Footer rebuilds only with it
        await wait_until(pilot, lambda: bool(shown_names(app)))
        await pilot.pause(0.2)
        footer = app.explorer.query_one(KeyFooter)
        keys = list(footer.query(FooterKey))
        assert "Sort" in [key.description for key in keys]
        await footer.recompose()
        assert list(footer.query(FooterKey)) == keys
        await pilot.press("2")  # the inspect tree has keys of its own
        await wait_until(pilot, lambda: "Expand all" in [key.description for key in footer.query(FooterKey)])
        assert "Sort" not in [key.description for key in footer.query(FooterKey)]


@pytest.fixture
def collector() -> Iterator[None]:
    """Undo what `main` does to the collector: tests after this one collect everything again."""
    was_enabled = gc.isenabled()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


@pytest.mark.usefixtures("collector")
def test_the_app_runs_with_the_collector_on_and_start_up_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    class FakeApp:
        return_code = 3

        def run(self) -> None:
            seen["enabled"] = gc.isenabled()
            seen["frozen"] = gc.get_freeze_count()

    def create_app(service: object, interval: float, demo: object = None) -> FakeApp:
        seen["enabled_while_building"] = gc.isenabled()
        return FakeApp()

    monkeypatch.setattr(cli, "connect", lambda host, context: SimpleNamespace(prefetch=lambda: None))
    monkeypatch.setattr(dockerscope.ui, "create_app", create_app)
    gc.unfreeze()
    assert cli.main([]) == 3
    assert seen["enabled_while_building"] is False
    assert seen["enabled"] is True
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000
    assert gc.isenabled()


@pytest.mark.usefixtures("collector")
@pytest.mark.parametrize("args", [["--help"], ["analyze", "--help"], ["--bogus"]])
def test_an_early_exit_leaves_the_collector_on(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(args)
    assert gc.isenabled()


@pytest.mark.usefixtures("collector")
def test_a_collector_that_was_off_stays_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "connect", lambda host, context: None)
    gc.disable()
    assert cli.main([]) == 2
    assert not gc.isenabled()
