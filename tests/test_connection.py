import hashlib
import json
from pathlib import Path

import pytest

from dockerscope.service import DockerServiceError, resolve_connection
from dockerscope.service.connection import DEFAULT_HOST


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty docker CLI config directory, so the machine's own config cannot leak in."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    return tmp_path


def _add_context(config: Path, name: str, host: str) -> None:
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host}}}))


def test_host_flag_wins_over_environment(docker_config: Path) -> None:
    connection = resolve_connection("tcp://127.0.0.1:2375", {"DOCKER_HOST": "unix:///elsewhere.sock"})
    assert connection.host == "tcp://127.0.0.1:2375"
    assert connection.source == "--host"
    assert connection.client_kwargs["base_url"] == "tcp://127.0.0.1:2375"


def test_docker_host_environment_is_used(docker_config: Path) -> None:
    connection = resolve_connection(None, {"DOCKER_HOST": "unix:///run/user/1000/docker.sock"})
    assert connection.host == "unix:///run/user/1000/docker.sock"
    assert connection.source == "DOCKER_HOST"


def test_tls_settings_come_with_docker_host(docker_config: Path, tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("not really a certificate")
    env = {"DOCKER_HOST": "tcp://127.0.0.1:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)}
    connection = resolve_connection(None, env)
    assert connection.client_kwargs["tls"].ca_cert == str(tmp_path / "ca.pem")


def test_missing_tls_certificates_are_a_clear_error(docker_config: Path, tmp_path: Path) -> None:
    env = {"DOCKER_HOST": "tcp://127.0.0.1:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)}
    with pytest.raises(DockerServiceError) as raised:
        resolve_connection(None, env)
    assert raised.value.host == "tcp://127.0.0.1:2376"
    assert "certificate" in raised.value.reason


def test_without_settings_the_default_socket_is_used(docker_config: Path) -> None:
    connection = resolve_connection(None, {})
    assert connection.host == DEFAULT_HOST
    assert connection.source == "default"


def test_current_docker_cli_context_is_followed(docker_config: Path) -> None:
    _add_context(docker_config, "remote", "tcp://127.0.0.1:2376")
    (docker_config / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    connection = resolve_connection(None, {})
    assert connection.host == "tcp://127.0.0.1:2376"
    assert connection.source == "context remote"


def test_docker_context_variable_overrides_config(docker_config: Path) -> None:
    _add_context(docker_config, "other", "tcp://127.0.0.1:2999")
    (docker_config / "config.json").write_text("{}")
    connection = resolve_connection(None, {"DOCKER_CONTEXT": "other"})
    assert connection.host == "tcp://127.0.0.1:2999"
