"""Grow the daemon's scale set to N images and M containers, cheaply and idempotently.

`python benchmarks/scale_set.py --images N --containers M` talks to the daemon DOCKER_HOST names.
Images `scale/img-NNNN:latest` share one tiny layer, add one of a few small size-class layers (so
sorting by size reorders the list) and differ by a label; the missing ones are loaded with a
single `docker load` of an archive built in memory. Containers
`scale-ctr-NNNN` are created (never started) with network mode none, spread over the images.
Running 300/150 and then 1000/500 adds only what is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import docker
from docker.utils import kwargs_from_env

IMAGE_REPO = "scale/img-{:04d}"
IMAGE_TAG = "latest"
CONTAINER_NAME = "scale-ctr-{:04d}"
CREATE_THREADS = 4
SIZE_CLASSES = 5
# Each image is "created" one minute after the previous one, long ago: relative times on screen
# stay put while a benchmark runs, and sorting by creation time reverses the name order.
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


def image_ref(index: int) -> str:
    """The full reference of scale image `index`."""
    return f"{IMAGE_REPO.format(index)}:{IMAGE_TAG}"


def size_class(index: int) -> int:
    """Which size-class layer image `index` has: a higher class is a larger image."""
    return index % SIZE_CLASSES


@dataclass
class GrowReport:
    """What one call to grow() found and did, with the seconds each step took."""

    images_before: int
    images_added: int
    containers_before: int
    containers_added: int
    seconds: dict[str, float]


def connect(timeout: float = 120.0) -> docker.APIClient:
    """A low-level client for the daemon DOCKER_HOST names."""
    return docker.APIClient(version="auto", timeout=timeout, **kwargs_from_env())


def _add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(EPOCH.timestamp())
    archive.addfile(info, io.BytesIO(data))


@dataclass(frozen=True)
class _Layer:
    path: str  # where the layer tar sits in the archive
    diff_id: str
    data: bytes


def _layer(name: str, content: bytes) -> _Layer:
    """A layer holding a single file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as layer:
        _add_file(layer, name, content)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    return _Layer(path=f"{digest}/layer.tar", diff_id=f"sha256:{digest}", data=data)


def _config(index: int, layers: Sequence[_Layer], architecture: str) -> bytes:
    created = (EPOCH + timedelta(minutes=index)).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = {
        "architecture": architecture,
        "os": "linux",
        "created": created,
        "config": {"Cmd": ["/nothing"], "Labels": {"scale.index": str(index)}},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [
            {"created": created, "created_by": f"scale_set.py image {index} layer {number}"}
            for number in range(len(layers))
        ],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def build_archive(indices: Iterable[int], architecture: str) -> bytes:
    """A docker-archive (the `docker save` layout) holding the scale images with these indices."""
    shared = _layer("scale.txt", b"dockerscope scale set\n")
    classes = [_layer("size.bin", bytes(1000 * (k + 1))) for k in range(SIZE_CLASSES)]
    buffer = io.BytesIO()
    manifest = []
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for layer in (shared, *classes):
            _add_file(archive, layer.path, layer.data)
        for index in indices:
            layers = (shared, classes[size_class(index)])
            config = _config(index, layers, architecture)
            config_path = f"{hashlib.sha256(config).hexdigest()}.json"
            _add_file(archive, config_path, config)
            manifest.append(
                {"Config": config_path, "RepoTags": [image_ref(index)], "Layers": [layer.path for layer in layers]}
            )
        _add_file(archive, "manifest.json", json.dumps(manifest).encode())
    return buffer.getvalue()


def existing_images(api: docker.APIClient) -> set[int]:
    """Indices of the scale images the daemon already has."""
    found: set[int] = set()
    for image in api.images(filters={"reference": "scale/img-*"}):
        for tag in image.get("RepoTags") or ():
            repo, _, tag_name = tag.rpartition(":")
            if repo.startswith("scale/img-") and tag_name == IMAGE_TAG and repo[len("scale/img-") :].isdigit():
                found.add(int(repo[len("scale/img-") :]))
    return found


def existing_containers(api: docker.APIClient) -> set[int]:
    """Indices of the scale containers the daemon already has."""
    found: set[int] = set()
    for container in api.containers(all=True, filters={"name": "scale-ctr-"}):
        for name in container.get("Names") or ():
            suffix = name.lstrip("/").removeprefix("scale-ctr-")
            if name.lstrip("/").startswith("scale-ctr-") and suffix.isdigit():
                found.add(int(suffix))
    return found


def _load(api: docker.APIClient, data: bytes) -> None:
    for line in api.load_image(data):  # docker-py yields the decoded progress messages
        if isinstance(line, dict) and line.get("error"):
            raise RuntimeError(f"docker load failed: {line['error']}")


def _create_containers(indices: Sequence[int], images: int, containers: int) -> None:
    local = threading.local()
    clients: list[docker.APIClient] = []
    lock = threading.Lock()

    def create(index: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = connect()
            with lock:
                clients.append(client)
        # Spread the containers evenly over the images (with M <= N, at most one per image).
        image = image_ref(index * images // containers % images)
        client.create_container(
            image,
            command=["/nothing"],
            name=CONTAINER_NAME.format(index),
            host_config=client.create_host_config(network_mode="none"),
            network_disabled=True,
        )

    try:
        with ThreadPoolExecutor(max_workers=CREATE_THREADS) as pool:
            for future in [pool.submit(create, index) for index in indices]:
                future.result()
    finally:
        for client in clients:
            client.close()


def grow(images: int, containers: int, api: docker.APIClient | None = None) -> GrowReport:
    """Make sure the daemon holds scale images 0..images-1 and scale containers 0..containers-1."""
    own = api is None
    api = api or connect()
    seconds: dict[str, float] = {}
    try:
        started = time.monotonic()
        have_images = existing_images(api)
        have_containers = existing_containers(api)
        seconds["list"] = time.monotonic() - started

        missing_images = [index for index in range(images) if index not in have_images]
        if missing_images:
            started = time.monotonic()
            data = build_archive(missing_images, str(api.version().get("Arch") or "amd64"))
            seconds["build archive"] = time.monotonic() - started
            started = time.monotonic()
            _load(api, data)
            seconds["docker load"] = time.monotonic() - started

        missing_containers = [index for index in range(containers) if index not in have_containers]
        if missing_containers:
            started = time.monotonic()
            _create_containers(missing_containers, images, containers)
            seconds["create containers"] = time.monotonic() - started
        return GrowReport(
            images_before=len(have_images & set(range(images))),
            images_added=len(missing_images),
            containers_before=len(have_containers & set(range(containers))),
            containers_added=len(missing_containers),
            seconds=seconds,
        )
    finally:
        if own:
            api.close()


def describe(report: GrowReport) -> str:
    """One line about what grow() did and how long each step took."""
    steps = ", ".join(f"{step} {value:.2f}s" for step, value in report.seconds.items())
    return (
        f"scale set: images {report.images_before} present + {report.images_added} added, "
        f"containers {report.containers_before} present + {report.containers_added} added ({steps})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--images", type=int, required=True, metavar="N")
    parser.add_argument("--containers", type=int, required=True, metavar="M")
    args = parser.parse_args(argv)
    if args.images < 1 or args.images > 10000 or args.containers < 0 or args.containers > 10000:
        parser.error("--images must be 1..10000 and --containers 0..10000")
    print(describe(grow(args.images, args.containers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
