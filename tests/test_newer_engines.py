"""Docker 29 (API 1.52, containerd image store) answers, hand-built from the API reference and
replayed over a unix socket to the real service and app: no GraphDriver, no ContainerConfig, ids
that are index digests, `Containers` counts on the image list, `<missing>` history ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from apphelpers import SIZE, image_list, inspect_tree, layer_table, tree_title, wait_until
from dockerscope.service import Connection, DockerService, LayerKind, MappingQuality
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
