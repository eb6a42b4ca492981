import hashlib
import json
import socket
from pathlib import Path

import pytest

from dockerscope.service import DockerServiceError, SocketPlace, found_sockets, resolve_connection, socket_places
from dockerscope.service.connection import DEFAULT_HOST
from dockerscope.service.ssh_transport import SSHTarget, describe_ssh_failure, parse_ssh_url


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty docker CLI config directory, so the machine's own config cannot leak in."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    return tmp_path


def _add_context(config: Path, name: str, host: str, skip_tls_verify: bool = False) -> None:
    """A context as `docker context create` writes it."""
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": skip_tls_verify}
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}}))


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


def test_without_settings_or_sockets_the_default_socket_is_used_and_the_places_are_listed(
    docker_config: Path, short_tmp: Path
) -> None:
    connection = resolve_connection(None, {"XDG_RUNTIME_DIR": "/run/user/1000"}, root=str(short_tmp))
    assert connection.host == f"unix://{short_tmp}/var/run/docker.sock"
    assert connection.source == "default (no socket found)"
    assert [(place.kind, place.path) for place in connection.searched] == [
        ("Docker", f"{short_tmp}/var/run/docker.sock"),
        ("rootless Docker", f"{short_tmp}/run/user/1000/docker.sock"),
        ("Podman rootless", f"{short_tmp}/run/user/1000/podman/podman.sock"),
        ("Podman rootful", f"{short_tmp}/run/podman/podman.sock"),
    ]


def test_the_places_are_the_documented_defaults() -> None:
    assert socket_places({"XDG_RUNTIME_DIR": "/run/user/1000/"}) == (
        SocketPlace("Docker", "/var/run/docker.sock"),
        SocketPlace("rootless Docker", "/run/user/1000/docker.sock"),
        SocketPlace("Podman rootless", "/run/user/1000/podman/podman.sock"),
        SocketPlace("Podman rootful", "/run/podman/podman.sock"),
    )
    assert SocketPlace("Docker", "/var/run/docker.sock").host == DEFAULT_HOST


def test_without_a_runtime_directory_the_rootless_places_are_not_searched() -> None:
    for environment in ({}, {"XDG_RUNTIME_DIR": ""}, {"XDG_RUNTIME_DIR": "relative/dir"}):
        kinds = [place.kind for place in socket_places(environment)]
        assert kinds == ["Docker", "Podman rootful"]


def _bind(path: Path) -> socket.socket:
    """A real unix socket at `path` (its directories made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    return listener


ENV = {"XDG_RUNTIME_DIR": "/run/user/1000"}


@pytest.mark.parametrize(
    ("sockets", "found", "source"),
    [
        (["var/run/docker.sock", "run/podman/podman.sock"], "var/run/docker.sock", "found: Docker socket"),
        (["run/user/1000/docker.sock"], "run/user/1000/docker.sock", "found: rootless Docker socket"),
        (
            ["run/user/1000/podman/podman.sock", "run/podman/podman.sock"],
            "run/user/1000/podman/podman.sock",
            "found: rootless Podman socket",
        ),
        (["run/podman/podman.sock"], "run/podman/podman.sock", "found: rootful Podman socket"),
    ],
)
def test_the_first_existing_socket_is_found(
    docker_config: Path, short_tmp: Path, sockets: list[str], found: str, source: str
) -> None:
    listeners = [_bind(short_tmp / relative) for relative in sockets]
    try:
        connection = resolve_connection(None, ENV, root=str(short_tmp))
        every = [place.path for place in found_sockets(ENV, str(short_tmp))]
    finally:
        for listener in listeners:
            listener.close()
    assert connection.host == f"unix://{short_tmp}/{found}"
    assert connection.source == source
    assert connection.searched == ()
    assert every == [f"{short_tmp}/{relative}" for relative in sockets]  # in the order they are tried


def test_files_and_directories_that_are_not_sockets_are_passed_over(docker_config: Path, short_tmp: Path) -> None:
    (short_tmp / "var/run").mkdir(parents=True)
    (short_tmp / "var/run/docker.sock").write_text("a regular file")
    (short_tmp / "run/user/1000/docker.sock").mkdir(parents=True)  # a directory
    (short_tmp / "run/user/1000/podman").mkdir()
    (short_tmp / "run/user/1000/podman/podman.sock").symlink_to(short_tmp / "nowhere")  # dangling
    listener = _bind(short_tmp / "run/podman/podman.sock")
    try:
        connection = resolve_connection(None, ENV, root=str(short_tmp))
        assert found_sockets(ENV, str(short_tmp)) == (
            SocketPlace("Podman rootful", f"{short_tmp}/run/podman/podman.sock"),
        )
    finally:
        listener.close()
    assert connection.source == "found: rootful Podman socket"


def test_a_symlink_to_a_socket_counts(docker_config: Path, short_tmp: Path) -> None:
    listener = _bind(short_tmp / "real.sock")
    (short_tmp / "var/run").mkdir(parents=True)
    (short_tmp / "var/run/docker.sock").symlink_to(short_tmp / "real.sock")
    try:
        assert resolve_connection(None, {}, root=str(short_tmp)).source == "found: Docker socket"
    finally:
        listener.close()


def test_settings_win_over_discovery(docker_config: Path, short_tmp: Path) -> None:
    listener = _bind(short_tmp / "var/run/docker.sock")
    try:
        env = {"DOCKER_HOST": "tcp://127.0.0.1:2375"}
        assert resolve_connection(None, env, root=str(short_tmp)).source == "DOCKER_HOST"
        assert resolve_connection("unix:///x.sock", {}, root=str(short_tmp)).source == "--host"
    finally:
        listener.close()


def test_the_default_context_as_current_leaves_the_choice_to_discovery(docker_config: Path, short_tmp: Path) -> None:
    (docker_config / "config.json").write_text(json.dumps({"currentContext": "default"}))
    listener = _bind(short_tmp / "run/podman/podman.sock")
    try:
        assert resolve_connection(None, {}, root=str(short_tmp)).source == "found: rootful Podman socket"
    finally:
        listener.close()


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


def test_context_flag_wins_over_the_environment(docker_config: Path) -> None:
    _add_context(docker_config, "other", "tcp://127.0.0.1:2999")
    (docker_config / "config.json").write_text("{}")
    connection = resolve_connection(None, {"DOCKER_HOST": "tcp://127.0.0.1:1"}, context="other")
    assert connection.host == "tcp://127.0.0.1:2999"
    assert connection.source == "context other"


def test_context_default_is_the_default_socket(docker_config: Path) -> None:
    assert resolve_connection(None, {}, context="default").host == DEFAULT_HOST


@pytest.mark.parametrize("named_by", ["--context", "DOCKER_CONTEXT"])
def test_an_unknown_context_is_a_clear_error(docker_config: Path, named_by: str) -> None:
    (docker_config / "config.json").write_text("{}")
    with pytest.raises(DockerServiceError) as raised:
        if named_by == "--context":
            resolve_connection(None, {}, context="nowhere")
        else:
            resolve_connection(None, {"DOCKER_CONTEXT": "nowhere"})
    assert raised.value.host == "context 'nowhere'"
    assert raised.value.reason == f"no such context (named by {named_by}; `docker context ls` lists them)"


def test_a_corrupted_context_is_a_clear_error(docker_config: Path) -> None:
    _add_context(docker_config, "broken", "tcp://127.0.0.1:1")
    meta = next((docker_config / "contexts" / "meta").iterdir()) / "meta.json"
    meta.write_text("{not json")
    (docker_config / "config.json").write_text("{}")
    with pytest.raises(DockerServiceError) as raised:
        resolve_connection(None, {}, context="broken")
    assert "cannot read it" in raised.value.reason


@pytest.mark.parametrize("skip_tls_verify", [False, True])
def test_a_contexts_tls_material_comes_with_it(docker_config: Path, skip_tls_verify: bool) -> None:
    _add_context(docker_config, "secure", "tcp://127.0.0.1:2376", skip_tls_verify)
    tls = docker_config / "contexts" / "tls" / hashlib.sha256(b"secure").hexdigest() / "docker"
    tls.mkdir(parents=True)
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tls / name).write_text("not really a certificate")
    (docker_config / "config.json").write_text("{}")
    connection = resolve_connection(None, {}, context="secure")
    assert connection.client_kwargs["tls"].ca_cert == str(tls / "ca.pem")
    assert connection.client_kwargs["tls"].cert == (str(tls / "cert.pem"), str(tls / "key.pem"))
    # Skipping verification is an explicit False: docker-py's None would let requests verify anyway.
    assert connection.client_kwargs["tls"].verify is (not skip_tls_verify)


def test_host_and_context_together_are_refused(docker_config: Path) -> None:
    with pytest.raises(DockerServiceError):
        resolve_connection("tcp://127.0.0.1:1", {}, context="other")


@pytest.mark.parametrize(
    "address",
    [
        "ssh://-oProxyCommand=x",
        "ssh://user@host/some/path",
        "ssh://user:secret@host",
        "ssh://host:99999",
        "ssh://host:0",
        "ssh://-l@host",
        "ssh://",
    ],
)
def test_a_malformed_ssh_address_is_refused_before_ssh_runs(docker_config: Path, address: str) -> None:
    with pytest.raises(DockerServiceError) as raised:
        resolve_connection(address, {})
    assert raised.value.host == address


def test_an_ssh_address_becomes_an_ssh_command_line() -> None:
    target = parse_ssh_url("ssh://deploy@build.example:2222")
    assert target.command()[-4:] == ["2222", "--", "build.example", "docker system dial-stdio"]
    assert target.command()[target.command().index("-l") :][:2] == ["-l", "deploy"]
    assert "BatchMode=yes" in target.command()
    assert parse_ssh_url("ssh://build.example").command()[-3:] == ["--", "build.example", "docker system dial-stdio"]


TARGET = SSHTarget("build.example", "deploy", 2222)


@pytest.mark.parametrize(
    ("stderr", "status", "reason"),
    [
        ("deploy@build.example: Permission denied (publickey).\n", 255, "did not accept the key"),
        ("Host key verification failed.\n", 255, "host key of deploy@build.example:2222 is not known"),
        ("bash: line 1: docker: command not found\n", 127, "no docker command on"),
        ("", 127, "no docker command on"),
        ("failed to open the raw stream connection: dial unix /x.sock: connect: no such file", 1, "no daemon answers"),
        ("ssh: connect to host build.example port 2222: Connection refused\n", 255, "connection refused by"),
        ("ssh: Could not resolve hostname build.example: Name or service not known\n", 255, "host name not found"),
        ("ssh: connect to host build.example port 2222: No route to host\n", 255, "cannot be reached"),
        ("Connection timed out during banner exchange\n", 255, "cannot be reached"),
    ],
)
def test_ssh_failures_are_told_in_words(stderr: str, status: int, reason: str) -> None:
    said, hint = describe_ssh_failure(TARGET, stderr, status)
    assert reason in said
    assert hint


def test_an_unknown_ssh_failure_quotes_sshs_last_line_and_the_status() -> None:
    said, hint = describe_ssh_failure(TARGET, "a banner\nsomething \x1b[2Jodd happened\n", 3)
    assert said == "ssh to deploy@build.example:2222 ended (exit status 3): something \x1b[2Jodd happened"
    assert hint == "Try `ssh -p 2222 deploy@build.example docker version` in a terminal."
    # The reason reaches a screen or stderr only through the sanitiser (checked where it is shown).
