"""Docker 29 (API 1.52, containerd image store) answers, hand-built from the API reference and
replayed over a unix socket to the real service and app: no GraphDriver, no ContainerConfig, ids
that are index digests, `Containers` counts on the image list, `<missing>` history ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from apphelpers import SIZE, image_list, inspect_tree, layer_table, status_text, tree_title, wait_until
from dockerscope.service import Connection, DockerService, LayerKind, MappingQuality
from dockerscope.service.answers import engine_name
from dockerscope.ui import create_app
from recorded_daemon import RecordedDaemon, load_recording

WEB = "sha256:" + "a1" * 32


@pytest.fixture
def docker29(short_tmp: Path) -> Iterator[DockerService]:
    with RecordedDaemon(short_tmp / "d29.sock", load_recording("docker29-containerd.json")) as daemon:
        service = DockerService(Connection(host=daemon.url, source="test", client_kwargs={"base_url": daemon.url}))
        yield service
        service.close()
        assert all(path.startswith(("/version", "/events", "/images", "/containers")) for path in daemon.requests_seen)


async def test_the_service_reads_a_docker_29_daemon(docker29: DockerService) -> None:
    snapshot = await docker29.snapshot()
    assert snapshot.daemon.engine_version == "29.0.1"
    assert snapshot.daemon.api_version == "1.52"
    web, old = snapshot.images
    assert (web.id, web.tags, web.containers, web.short_id) == (WEB, ("web:latest",), 1, "a1" * 6)
    assert old.dangling and old.name == "<none>"
    assert (snapshot.container_count, snapshot.running_count) == (1, 1)

    detail = await docker29.image_detail(web)
    stack = detail.layers
    assert "GraphDriver" not in detail.inspect and "ContainerConfig" not in detail.inspect
    assert stack.quality is MappingQuality.EXACT
    assert [(row.instruction, row.kind) for row in stack.rows] == [
        ("ADD alpine-minirootfs-3.22.0-x86_64.tar.gz /", LayerKind.LAYER),
        ('CMD ["/bin/sh"]', LayerKind.EMPTY),
        ("ENV NODE_ENV=production", LayerKind.EMPTY),
        ("WORKDIR /srv", LayerKind.EMPTY),
        ("COPY package.json package-lock.json ./", LayerKind.LAYER),
        ("RUN npm ci --omit=dev", LayerKind.LAYER),
        ('CMD ["node" "server.js"]', LayerKind.EMPTY),
    ]
    assert [row.diff_id for row in stack.rows if row.diff_id] == detail.inspect["RootFS"]["Layers"]
    assert stack.total_size == web.size


async def test_the_app_shows_a_docker_29_image(docker29: DockerService) -> None:
    app = create_app(docker29, interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: tree_title(app) == "web:latest" and layer_table(app).row_count == 7)
        keys = [node.label.plain.split(" ")[0].rstrip(":") for node in inspect_tree(app).root.children]
        assert "Descriptor" in keys and "Manifests" in keys and "GraphDriver" not in keys
        assert [cell.plain for cell in image_list(app).get_row(WEB)][1:3] == ["a1a1a1a1a1a1", "49.9MB"]
        status = app.explorer.query_one("#status").render().plain
        assert "Docker 29.0.1 (API 1.52)" in status and "1 container (1 running)" in status


# The version answer of Podman's Docker-compatible API (Podman 4.3, Debian 12), trimmed.
PODMAN_VERSION = {
    "Platform": {"Name": "linux/amd64/debian-12"},
    "Components": [{"Name": "Podman Engine", "Version": "4.3.1", "Details": {"APIVersion": "4.3.1"}}],
    "Version": "4.3.1",
    "ApiVersion": "1.41",
    "MinAPIVersion": "1.24",
}


async def test_a_podman_daemon_is_named_as_such(short_tmp: Path) -> None:
    recording = {**load_recording("docker29-containerd.json"), "/version": PODMAN_VERSION}
    with RecordedDaemon(short_tmp / "podman.sock", recording) as daemon:
        service = DockerService(Connection(host=daemon.url, source="test", client_kwargs={"base_url": daemon.url}))
        app = create_app(service, interval=3600)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: image_list(app).row_count > 0)
            assert "Podman 4.3.1 (API 1.41)" in status_text(app)


@pytest.mark.parametrize(
    "components",
    [None, "Podman Engine", [None, 3, "Podman"], [{"Name": ["Podman Engine"]}], [{"Name": "Engine"}, {"Name": "runc"}]],
)
def test_anything_but_a_podman_component_reads_as_docker(components: object) -> None:
    assert engine_name({"Components": components, "Version": "29.0.0"}) == "Docker"
