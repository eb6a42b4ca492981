import subprocess
import sys

import pytest

from dockerscope import __version__
from dockerscope.cli import build_parser, main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dockerscope", *args], capture_output=True, text=True, timeout=30)


def test_version_flag_prints_the_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"dockerscope {__version__}"


def test_help_names_every_option() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for option in ("--host", "--interval", "--version"):
        assert option in result.stdout


@pytest.mark.parametrize("args", [["--bogus"], ["--interval", "soon"], ["--interval", "0"], ["--host"]])
def test_bad_flags_exit_2_with_a_usage_message(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert "usage: dockerscope" in result.stderr
    assert "Traceback" not in result.stderr


def test_interval_and_host_are_parsed() -> None:
    args = build_parser().parse_args(["--interval", "0.5", "--host", "tcp://127.0.0.1:2375"])
    assert args.interval == 0.5
    assert args.host == "tcp://127.0.0.1:2375"


def test_unusable_tls_settings_end_with_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    assert main([]) == 2
    assert "dockerscope: tcp://127.0.0.1:2376:" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    from importlib.metadata import entry_points

    scripts = {entry.name: entry.value for entry in entry_points(group="console_scripts")}
    assert scripts.get("dockerscope") == "dockerscope.cli:main"
