"""`dockerscope extract` against the private daemon and a saved archive: what it writes is what a
container of the image holds (`docker export` of a created container), path for path, with bytes,
modes, owners, symlink targets and hard links; lower layers; the exit codes."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from conftest import APP_IMAGE, WASTE_IMAGE
from dockerscope import extract
from dockerscope.service import ContentSink, DockerService, SinkOpener, resolve_connection

Content = dict[str, tuple[str, int, int, int, bytes]]


def exported(api: docker.APIClient, image: str, subtree: str) -> Content:
    """Every path below `subtree` in a container of the image, as `docker export` writes it."""
    container = api.create_container(image, name=f"dockerscope-extract-{uuid.uuid4().hex[:8]}", network_disabled=True)
    try:
        data = b"".join(api.export(container["Id"]))
    finally:
        api.remove_container(container["Id"], force=True)
    found: Content = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            name = member.name.strip("/")
            if not name.startswith(f"{subtree}/"):
                continue
            relative = name[len(subtree) + 1 :]
            if member.isdir():
                found[relative] = ("dir", stat.S_IMODE(member.mode), member.uid, member.gid, b"")
            elif member.issym():
                found[relative] = ("symlink", 0, member.uid, member.gid, member.linkname.encode())
            else:
                target = tar.getmember(member.linkname) if member.islnk() else member
                reader = tar.extractfile(target)
                assert reader is not None
                found[relative] = ("file", stat.S_IMODE(target.mode), target.uid, target.gid, reader.read())
    return found


def on_disk(root: Path) -> Content:
    found: Content = {}
    for folder, directories, files in os.walk(root):
        for name in directories + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            relative = os.path.relpath(path, root)
            mode = stat.S_IMODE(info.st_mode)
            if stat.S_ISDIR(info.st_mode):
                found[relative] = ("dir", mode, info.st_uid, info.st_gid, b"")
            elif stat.S_ISLNK(info.st_mode):
                found[relative] = ("symlink", 0, info.st_uid, info.st_gid, os.readlink(path).encode())
            else:
                found[relative] = ("file", mode, info.st_uid, info.st_gid, Path(path).read_bytes())
    return found


def run(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = extract.main(arguments)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def host(docker_host: str, api: docker.APIClient) -> str:
    return docker_host


@pytest.mark.parametrize(("image", "subtree"), [(WASTE_IMAGE, "data"), (WASTE_IMAGE, "opq"), (APP_IMAGE, "bin")])
def test_a_directory_is_what_a_container_of_the_image_holds(
    host: str, api: docker.APIClient, tmp_path: Path, capsys: pytest.CaptureFixture[str], image: str, subtree: str
) -> None:
    dest = tmp_path / "out"
    code, out, err = run(["--host", host, image, f"/{subtree}", "-o", str(dest)], capsys)
    assert (code, err) == (0, "")
    assert out.startswith(f"Extracted /{subtree} as of layer ")
    assert on_disk(dest) == exported(api, image, subtree)
    if os.geteuid() == 0 and subtree == "opq":
        assert os.stat(dest / "new" / "file").st_uid == 1000


def test_hard_links_of_a_layer_stay_hard_links_and_a_lower_layer_gives_its_version(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # waste:1 layer 3 made /data/keep/config with a hard link to it; layer 4 wrote config again.
    three = tmp_path / "three"
    code, _, err = run(["--host", host, WASTE_IMAGE, "/data/keep", "--layer", "3", "-o", str(three)], capsys)
    assert (code, err) == (0, "")
    assert (three / "config").read_text() == "v1\n"
    assert os.stat(three / "config").st_ino == os.stat(three / "config.link").st_ino
    code, out, _ = run(["--host", host, WASTE_IMAGE, "/data/keep/config", "-o", str(tmp_path / "top")], capsys)
    assert code == 0
    assert (tmp_path / "top").read_text() == "version-two\n"
    assert "1 file, 12 B" in out


def test_a_removed_file_is_there_as_of_the_layer_below_its_removal(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(["--host", host, APP_IMAGE, "/tmp/scratch", "--layer", "6", "-o", str(tmp_path / "s")], capsys)
    assert code == 0
    assert (tmp_path / "s").read_text() == "scratch\n"
    code, out, err = run(["--host", host, APP_IMAGE, "/tmp/scratch", "-o", str(tmp_path / "t")], capsys)
    assert (code, out) == (2, "")
    assert err == "dockerscope extract: /tmp/scratch is not in the image as of layer 7\n"
    assert not (tmp_path / "t").exists()


def test_bad_input_exits_2_with_one_line_and_an_existing_destination_is_kept(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "hello.txt"
    dest.write_text("mine")
    arguments = ["--host", host, APP_IMAGE, "/app/hello.txt", "-o", str(dest)]
    code, _, err = run(arguments, capsys)
    assert (code, err) == (2, f"dockerscope extract: {dest} exists (--replace replaces it)\n")
    assert dest.read_text() == "mine"
    code, _, _ = run([*arguments, "--replace"], capsys)
    assert (code, dest.read_text()) == (0, "hello from dockerscope\n")
    for wrong, message in (
        ([APP_IMAGE, "/app", "--layer", "99"], "--layer 99: the image has 7 layers"),
        (["dockerscope-test/none:1", "/app"], "No such image"),
        ([APP_IMAGE, "/app/hello.txt/x"], "/app/hello.txt is not a directory"),
    ):
        code, out, err = run(["--host", host, *wrong, "-o", str(tmp_path / "never")], capsys)
        assert (code, out) == (2, "")
        assert message in err and err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["hello.txt"]


def test_the_command_runs_as_a_subprocess_and_defaults_to_the_paths_name(host: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dockerscope", "extract", "--host", host, APP_IMAGE, "/app"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"Extracted /app as of layer 7 to {tmp_path / 'app'}: 3 files, 300.0 kB\n"
    assert sorted(os.listdir(tmp_path / "app")) == ["cache", "data.bin", "hello.txt"]


@pytest.fixture
def saved(host: str, tmp_path: Path) -> Iterator[Path]:
    archive = tmp_path / "saved.tar"
    subprocess.run(
        ["docker", "save", "-o", str(archive), APP_IMAGE, WASTE_IMAGE],
        check=True,
        env={**os.environ, "DOCKER_HOST": host},
    )
    yield archive


def test_an_archive_and_an_oci_layout_are_sources_too(
    saved: Path, api: docker.APIClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "data"
    code, out, err = run([str(saved), WASTE_IMAGE, "/data", "-o", str(dest)], capsys)
    assert (code, err) == (0, "")
    assert out.startswith("Extracted /data as of layer 5")
    assert on_disk(dest) == exported(api, WASTE_IMAGE, "data")
    code, _, err = run([str(saved), "/data", "-o", str(tmp_path / "which")], capsys)
    assert code == 2
    assert "it holds 2 images" in err
    layout = tmp_path / "oci"
    subprocess.run(
        ["skopeo", "copy", "--quiet", f"docker-archive:{saved}:{WASTE_IMAGE}", f"oci:{layout}:waste"], check=True
    )
    code, _, err = run([str(layout), "/data/keep/config", "--layer", "3", "-o", str(tmp_path / "config")], capsys)
    assert (code, err) == (0, "")
    assert (tmp_path / "config").read_text() == "v1\n"


def test_sigterm_while_writing_removes_the_partial_output(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminated(DockerService):
        """Sends this process SIGTERM once the first bytes are on their way to disk."""

        async def read_layer_files(self, image_id: str, wanted: Any, open_sink: SinkOpener, **kwargs: Any) -> str:
            def first(layer: int, path: str, size: int) -> ContentSink:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.5)  # the main thread handles the signal meanwhile
                return open_sink(layer, path, size)

            return await super().read_layer_files(image_id, wanted, first, **kwargs)

    monkeypatch.setattr(
        extract, "connect", lambda host_url, context: Terminated(resolve_connection(host_url, context=context))
    )
    before = signal.getsignal(signal.SIGTERM)
    code, out, err = run(["--host", host, APP_IMAGE, "/app", "-o", str(tmp_path / "app")], capsys)
    assert (code, out) == (130, "")
    assert err == "dockerscope extract: interrupted: nothing was written\n"
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) == before
