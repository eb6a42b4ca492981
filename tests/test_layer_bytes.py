"""The bytes of files in layers from real engines, checked against what the image really holds (its
export read with Python's tarfile): overlay2 directories and the export stream, files as of a higher
layer, overwritten and hard-linked files, a container's writable layer from its upper directory and
from the archive endpoint, remote daemons, Podman, a 40 MiB file read in bounded memory, cancel,
and only GET requests."""

from __future__ import annotations

import contextlib
import io
import os
import re
import tarfile
import threading
import time
import tracemalloc
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import docker
import pytest

from bytesinks import Sinks, export_layer_files
from conftest import APP_IMAGE, CHANGES_CONTAINER, TOOL_IMAGE, WASTE_IMAGE, SSHServer, TLSDaemon
from dockerscope.service import Connection, DockerService, resolve_connection
from dockerscope.service.file_reading import FILE_VIEW_LIMIT, SinkOpener, locate_file, read_file
from dockerscope.service.layer_contents import ContentsUnavailable, SourceChoice
from dockerscope.service.layer_files import ReadCancelled
from dockerscope.service.source import ImageSource
from method_proxy import MethodProxy
from test_podman import CHANGES as PODMAN_CHANGES
from test_podman import LOCAL

BIG_IMAGE = "dockerscope-test/read-big:tmp"
BIG_FILE = "data/big.bin"
BIG_SIZE = 40 << 20
LIVE_CONTAINER = "dockerscope-read-live"
CHANGED = {"app/hello.txt": b"hello from dockerscope\nmore\n", "app/new.txt": b"new\n"}


class Forced:
    """A DockerService whose reads always take one source."""

    def __init__(self, service: DockerService, choice: SourceChoice) -> None:
        self.service = service
        self.choice = choice

    async def read_layer_files(
        self, image_id: str, wanted: Mapping[int, Collection[str]], open_sink: SinkOpener, **kwargs: Any
    ) -> str:
        return await self.service.read_layer_files(image_id, wanted, open_sink, choice=self.choice, **kwargs)


def _expected(api: docker.APIClient, image: str) -> dict[tuple[int, str], bytes]:
    layers = export_layer_files(api.get_image(image))
    return {(index, path): data for index, files in enumerate(layers) for path, data in files.items()}


def _wanted(expected: Mapping[tuple[int, str], bytes]) -> dict[int, list[str]]:
    wanted: dict[int, list[str]] = {}
    for index, path in expected:
        wanted.setdefault(index, []).append(path)
    return wanted


async def _read_all(
    service: DockerService, image: str, expected: Mapping[tuple[int, str], bytes], choice: SourceChoice
) -> tuple[str, Sinks]:
    sinks = Sinks()
    where = await service.read_layer_files(image, _wanted(expected), sinks, choice=choice)
    assert sinks.data() == expected
    assert sinks.all_closed_once()
    assert {key: sink.size for key, sink in sinks.opened.items()} == {key: len(data) for key, data in expected.items()}
    return where, sinks


@pytest.mark.parametrize("image", [WASTE_IMAGE, APP_IMAGE])
@pytest.mark.parametrize(("choice", "source"), [(SourceChoice.OVERLAY, "overlay2"), (SourceChoice.EXPORT, "export")])
async def test_every_file_of_every_layer_is_the_image_s_own_bytes(
    service: DockerService, api: docker.APIClient, image: str, choice: SourceChoice, source: str
) -> None:
    assert service.capabilities.file_contents
    where, _ = await _read_all(service, image, _expected(api, image), choice)
    assert where == source


@pytest.mark.parametrize("choice", [SourceChoice.AUTO, SourceChoice.EXPORT])
async def test_a_file_as_of_a_later_layer_its_overwritten_version_and_a_hard_link(
    service: DockerService, api: docker.APIClient, choice: SourceChoice
) -> None:
    image_id = api.inspect_image(WASTE_IMAGE)["Id"]
    files = (await service.image_contents(image_id)).files
    top = len(files.layers) - 1
    expected = _expected(api, WASTE_IMAGE)
    source = cast(ImageSource, Forced(service, choice))

    async def shown(as_of: int, path: str) -> tuple[int, bytes]:
        contents = await read_file(source, image_id, locate_file(files, as_of, path))
        assert contents.source == ("overlay2" if choice is SourceChoice.AUTO else "export")
        return contents.version.layer, contents.data

    # /data/keep/config: v1 in layer 3, rewritten in layer 4; its hard link keeps v1 in layer 3.
    assert await shown(2, "data/keep/config") == (2, b"v1\n")
    assert await shown(top, "data/keep/config") == (3, b"version-two\n")
    assert await shown(top, "data/keep/config.link") == (2, b"v1\n")
    assert await shown(top, "data/config.symlink") == (3, b"version-two\n")
    # The base layer's busybox as of the top layer: the first MiB of it.
    layer, head = await shown(top, "bin/busybox")
    assert layer == 0 and head == expected[(0, "bin/busybox")][:FILE_VIEW_LIMIT]


@pytest.fixture
def live_container(api: docker.APIClient) -> Iterator[dict[str, Any]]:
    """A running container that wrote /live.txt into its writable layer."""
    with contextlib.suppress(docker.errors.NotFound):
        api.remove_container(LIVE_CONTAINER, force=True)
    container = api.create_container(
        TOOL_IMAGE,
        ["sh", "-c", "echo live > /live.txt && sleep 100000"],
        name=LIVE_CONTAINER,
        host_config=api.create_host_config(network_mode="none"),
    )
    try:
        api.start(container)
        deadline = time.monotonic() + 30
        while not any(change["Path"] == "/live.txt" for change in api.diff(container) or []):
            assert time.monotonic() < deadline, "the container never wrote /live.txt"
            time.sleep(0.1)
        yield api.inspect_container(container)
    finally:
        api.remove_container(container, force=True)


@pytest.mark.parametrize(
    ("choice", "source"), [(SourceChoice.AUTO, "overlay2 upper dir"), (SourceChoice.EXPORT, "container archive")]
)
async def test_a_container_s_writable_layer_from_its_upper_dir_or_its_archive(
    service: DockerService,
    api: docker.APIClient,
    live_container: dict[str, Any],
    choice: SourceChoice,
    source: str,
) -> None:
    changes = api.inspect_container(CHANGES_CONTAINER)
    image = api.inspect_image(changes["Image"])
    writable = len(image["RootFS"]["Layers"])
    expected = _expected(api, changes["Image"])
    [hello_layer] = [index for index, path in expected if path == "app/hello.txt"]
    sinks = Sinks()
    wanted = {hello_layer: ["app/hello.txt"], writable: [*CHANGED, "app/data.bin", "app/newdir", "app/nothing"]}
    where = await service.read_layer_files(image["Id"], wanted, sinks, container_id=changes["Id"], choice=choice)
    assert where == f"{'overlay2' if choice is SourceChoice.AUTO else 'export'}, {source}"
    assert sinks.data() == {
        (hello_layer, "app/hello.txt"): expected[(hello_layer, "app/hello.txt")],
        **{(writable, path): data for path, data in CHANGED.items()},
    }
    assert sinks.all_closed_once()
    # A running container's writable layer, as it is now.
    live = Sinks()
    top = len(api.inspect_image(live_container["Image"])["RootFS"]["Layers"])
    where = await service.read_layer_files(
        live_container["Image"], {top: ["live.txt"]}, live, container_id=live_container["Id"], choice=choice
    )
    assert (where, live.data()) == (source, {(top, "live.txt"): b"live\n"})


async def test_a_layer_or_container_that_is_not_there_is_one_clear_error(
    service: DockerService, api: docker.APIClient
) -> None:
    image_id = api.inspect_image(WASTE_IMAGE)["Id"]
    with pytest.raises(ContentsUnavailable, match="no layer 6"):
        await service.read_layer_files(image_id, {5: ["x"]}, Sinks())
    changes = api.inspect_container(CHANGES_CONTAINER)
    with pytest.raises(ContentsUnavailable, match="not the image asked for"):
        await service.read_layer_files(image_id, {0: ["x"]}, Sinks(), container_id=changes["Id"])


@pytest.fixture(scope="module")
def big_image(api: docker.APIClient) -> Iterator[tuple[str, bytes]]:
    """A one-layer image holding a 40 MiB file of random bytes: its id and the file's first MiB."""
    data = os.urandom(BIG_SIZE)
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as archive:
        info = tarfile.TarInfo(BIG_FILE)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    result = api.import_image_from_data(payload.getvalue(), repository=BIG_IMAGE.split(":")[0], tag="tmp")
    image_id = re.findall(r"sha256:[0-9a-f]{64}", result)[-1]
    yield image_id, data[:FILE_VIEW_LIMIT]
    with contextlib.suppress(docker.errors.NotFound):
        api.remove_image(image_id, force=True)


@pytest.mark.parametrize("choice", [SourceChoice.OVERLAY, SourceChoice.EXPORT])
async def test_the_first_mib_of_a_40_mib_file_costs_a_few_mib_of_memory(
    service: DockerService, big_image: tuple[str, bytes], choice: SourceChoice
) -> None:
    image_id, head = big_image
    files = (await service.image_contents(image_id)).files
    version = locate_file(files, 0, BIG_FILE)
    tracemalloc.start()
    try:
        contents = await read_file(cast(ImageSource, Forced(service, choice)), image_id, version)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (contents.data, contents.size, contents.truncated) == (head, BIG_SIZE, True)
    assert peak < 8 << 20, f"peak {peak / (1 << 20):.1f} MiB"


@pytest.mark.parametrize("choice", [SourceChoice.OVERLAY, SourceChoice.EXPORT])
async def test_a_cancelled_read_stops_and_closes_its_sinks(
    service: DockerService, big_image: tuple[str, bytes], choice: SourceChoice
) -> None:
    image_id, _ = big_image
    cancel = threading.Event()
    sinks = Sinks(cancel=cancel)  # sets the event on its first write
    with pytest.raises(ReadCancelled):
        await service.read_layer_files(image_id, {0: [BIG_FILE]}, sinks, choice=choice, cancel=cancel)
    assert sinks.all_closed_once()
    [sink] = sinks.opened.values()
    assert len(sink.data) < BIG_SIZE


class DiskFull:
    def write(self, data: bytes | memoryview) -> bool:
        raise OSError(28, "No space left on device")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("choice", [SourceChoice.OVERLAY, SourceChoice.EXPORT])
async def test_a_sink_s_own_failure_reaches_the_caller_as_it_was(
    service: DockerService, api: docker.APIClient, choice: SourceChoice
) -> None:
    image_id = api.inspect_image(WASTE_IMAGE)["Id"]
    with pytest.raises(OSError, match="No space left on device") as failure:
        await service.read_layer_files(image_id, {2: ["data/keep/config"]}, lambda *_: DiskFull(), choice=choice)
    assert failure.value.errno == 28
    assert (await service.daemon_info()).engine  # the daemon is not taken for lost


async def test_reading_files_sends_only_gets(
    short_tmp: Path, docker_host: str, api: docker.APIClient, live_container: dict[str, Any]
) -> None:
    with MethodProxy(short_tmp / "read-only.sock", docker_host) as proxy:
        service = DockerService(Connection(host=proxy.url, source="test", client_kwargs={"base_url": proxy.url}))
        try:
            where, _ = await _read_all(service, WASTE_IMAGE, _expected(api, WASTE_IMAGE), SourceChoice.EXPORT)
            assert where == "export"
            top = len(api.inspect_image(live_container["Image"])["RootFS"]["Layers"])
            sinks = Sinks()
            await service.read_layer_files(
                live_container["Image"],
                {top: ["live.txt"]},
                sinks,
                container_id=live_container["Id"],
                choice=SourceChoice.EXPORT,
            )
            assert sinks.data() == {(top, "live.txt"): b"live\n"}
            for _ in range(2):  # the fast path asks where the layers are once, not per file
                assert await service.read_layer_files(WASTE_IMAGE, {2: ["data/keep/config"]}, Sinks()) == "overlay2"
        finally:
            service.close()
    assert [request.path for request in proxy.requests].count("/info") == 1
    assert proxy.refused == []
    paths = {re.sub(r"/(sha256:)?[0-9a-f]{12,}(?=/)", "/{id}", request.path) for request in proxy.requests}
    assert {"/images/{id}/get", "/containers/{id}/archive"} <= paths


async def test_a_remote_daemon_s_files_come_from_its_export_and_its_archive_endpoint(
    ssh_client: SSHServer, tls_daemon: TLSDaemon, api: docker.APIClient
) -> None:
    over_ssh = DockerService(resolve_connection(ssh_client.host, {}))
    try:
        sinks = Sinks()
        expected = _expected(api, WASTE_IMAGE)
        assert await over_ssh.read_layer_files(WASTE_IMAGE, _wanted(expected), sinks) == "export"
        assert sinks.data() == expected
        changes = api.inspect_container(CHANGES_CONTAINER)
        writable = len(api.inspect_image(changes["Image"])["RootFS"]["Layers"])
        sinks = Sinks()
        where = await over_ssh.read_layer_files(
            changes["Image"], {writable: list(CHANGED)}, sinks, container_id=changes["Id"]
        )
        assert (where, sinks.data()) == ("container archive", {(writable, p): d for p, d in CHANGED.items()})
    finally:
        over_ssh.close()
    environment = {
        "DOCKER_HOST": tls_daemon.host,
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(tls_daemon.certs),
    }
    over_tls = DockerService(resolve_connection(None, environment))
    try:
        expected = _expected(api, APP_IMAGE)  # the TLS daemon holds the same image
        sinks = Sinks()
        assert await over_tls.read_layer_files(APP_IMAGE, _wanted(expected), sinks) == "export"
        assert sinks.data() == expected
        with pytest.raises(ContentsUnavailable, match="not readable here"):
            await over_tls.read_layer_files(APP_IMAGE, _wanted(expected), Sinks(), choice=SourceChoice.OVERLAY)
    finally:
        over_tls.close()


@pytest.mark.parametrize(("choice", "source"), [(SourceChoice.AUTO, "overlay"), (SourceChoice.EXPORT, "export")])
async def test_podman_s_files_from_its_overlay_directories_and_its_export(
    podman_host: str, choice: SourceChoice, source: str
) -> None:
    podman = docker.APIClient(base_url=podman_host, version="auto", timeout=60)
    service = DockerService(Connection(host=podman_host, source="test", client_kwargs={"base_url": podman_host}))
    try:
        expected = _expected(podman, LOCAL + WASTE_IMAGE)
        where, _ = await _read_all(service, LOCAL + WASTE_IMAGE, expected, choice)
        assert where == source
        changes = podman.inspect_container(PODMAN_CHANGES)
        writable = len(podman.inspect_image(changes["Image"])["RootFS"]["Layers"])
        sinks = Sinks()
        where = await service.read_layer_files(
            changes["Image"], {writable: list(CHANGED)}, sinks, container_id=changes["Id"], choice=choice
        )
        archive = "overlay upper dir" if choice is SourceChoice.AUTO else "container archive"
        assert (where, sinks.data()) == (archive, {(writable, p): d for p, d in CHANGED.items()})
    finally:
        service.close()
        podman.close()
