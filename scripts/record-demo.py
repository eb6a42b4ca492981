"""Record the demo `dockerscope --demo` opens: build its images and containers (scripts/build-demo.sh)
on the daemon DOCKER_HOST names, record what dockerscope reads of them (lists, inspects, histories,
changes, every layer's listing and every writable layer's), anonymise it, write it into the
package, and remove the containers and images.

Usage: python scripts/record-demo.py [OUT]   (default: tui/dockerscope/service/demo-recording.json.gz)

Anonymised: the daemon's data root becomes /var/lib/docker (its other directories /run/docker), the
kernel version and build time are left out (the script fails if this machine's host name or
directories are left anywhere), and a container's random ids (its own, its layer directory's, its
network sandbox's) become hashes of its name. A re-run gives an equivalent file: the same images,
containers, states, layer listings and changes; what differs is times, status texts, process ids,
and the ids that hash them (image and layer ids: a RUN step's files get the time of the build).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker

from dockerscope.service.demo import write_recording
from dockerscope.service.layer_contents import Daemon, SourceChoice, listing_from_diff, read_image_layers
from dockerscope.service.layer_files import LayerListing
from dockerscope.service.overlay_reader import read_layer_dir

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tui" / "dockerscope" / "service" / "demo-recording.json.gz"
PREFIX = "dockerscope-demo"
NEUTRAL_ROOT = "/var/lib/docker"
# Fields of /version that describe this machine rather than the engine.
MACHINE_FIELDS = ("KernelVersion", "BuildTime")


def build() -> str:
    """Build the demo objects; the untagged image's id."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "build-demo.sh")], check=True, capture_output=True, text=True)
    return done.stdout.split()[-1]


def record(client: docker.APIClient, host: str, untagged: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The answers, layer listings and writable layer listings of the demo objects."""
    version = client.version(api_version=False)
    images = sorted(
        (
            image
            for image in client.images()
            if image["Id"] == untagged or any(tag.startswith(f"{PREFIX}/") for tag in image.get("RepoTags") or [])
        ),
        key=lambda image: (image.get("RepoTags") or ["~"])[0],
    )
    containers = sorted(
        (c for c in client.containers(all=True, size=True) if c["Names"][0].startswith(f"/{PREFIX}-")),
        key=lambda container: container["Names"][0],
    )
    answers: dict[str, Any] = {"/version": version, "/images/json": images, "/containers/json": containers}
    daemon = Daemon(client, f"unix://{host}")
    layers: dict[str, LayerListing] = {}
    for image in images:
        inspect = client.inspect_image(image["Id"])
        answers[f"/images/{image['Id']}/json"] = inspect
        answers[f"/images/{image['Id']}/history"] = client.history(image["Id"])
        listings, _ = read_image_layers(
            daemon, inspect, choice=SourceChoice.AUTO, cache=None, cancel=None, on_progress=None
        )
        layers.update(listings)
    writable: dict[str, LayerListing] = {}
    for container in containers:
        inspect = client.inspect_container(container["Id"])
        changes = sorted(client.diff(container["Id"]) or [], key=lambda change: change["Path"])
        answers[f"/containers/{container['Id']}/json"] = inspect
        answers[f"/containers/{container['Id']}/changes"] = changes
        upper = (inspect.get("GraphDriver") or {}).get("Data", {}).get("UpperDir")
        writable[container["Id"]] = read_layer_dir(upper) if upper else listing_from_diff(changes)
    for field in MACHINE_FIELDS:
        version.pop(field, None)
        for component in version.get("Components") or []:
            (component.get("Details") or {}).pop(field, None)
    return answers, layers, writable


def _random_ids(inspect: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """The random ids of a container (its own, its layer directory's, its network sandbox's and
    endpoints'), each with what it names."""
    yield inspect["Id"], "container"
    upper = (inspect.get("GraphDriver") or {}).get("Data", {}).get("UpperDir")
    if upper:
        yield Path(upper).parent.name, "layer"
    network = inspect.get("NetworkSettings") or {}
    if network.get("SandboxID"):
        yield network["SandboxID"], "sandbox"
    for network_name, endpoint in (network.get("Networks") or {}).items():
        if endpoint.get("EndpointID"):
            yield endpoint["EndpointID"], f"endpoint {network_name}"


def anonymise(value: Any, replacements: Mapping[str, str]) -> Any:
    """`value` with every string (keys too) rewritten by `replacements`, longest first."""
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {anonymise(key, replacements): anonymise(item, replacements) for key, item in value.items()}
    if isinstance(value, list):
        return [anonymise(item, replacements) for item in value]
    return value


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def main(out: Path) -> None:
    untagged = build()
    client = docker.APIClient(version="auto", **docker.utils.kwargs_from_env())
    socket_path = docker.utils.kwargs_from_env().get("base_url", "unix:///var/run/docker.sock").removeprefix("unix://")
    try:
        answers, layers, writable = record(client, socket_path, untagged)
        root = client.info()["DockerRootDir"]
        replacements: dict[str, str] = {}
        for container in answers["/containers/json"]:
            name = container["Names"][0]
            for random_id, role in _random_ids(answers[f"/containers/{container['Id']}/json"]):
                neutral = hashlib.sha256(f"{name} {role}".encode()).hexdigest()
                replacements[random_id] = neutral
                replacements[random_id[:12]] = neutral[:12]
        replacements[root] = NEUTRAL_ROOT
        replacements[str(Path(root).parent)] = "/run/docker"
        # Names without the prefix that keeps them apart on the recording daemon, so that the lists
        # show them whole: `web` for the container `dockerscope-demo-web`, `demo/web:1` for the
        # image `dockerscope-demo/web:1` (a tag is no part of the content an image id hashes).
        replacements[f"/{PREFIX}-"] = "/"
        replacements[f"{PREFIX}/"] = "demo/"
        replacements = dict(sorted(replacements.items(), key=lambda item: -len(item[0])))
        answers = anonymise(answers, replacements)
        writable = {anonymise(key, replacements): listing for key, listing in writable.items()}
    finally:
        names = [
            c["Names"][0].lstrip("/") for c in client.containers(all=True) if c["Names"][0].startswith(f"/{PREFIX}-")
        ]
        subprocess.run(["bash", str(ROOT / "scripts" / "build-demo.sh"), "--remove", *names], check=True)
        # The untagged image first: it is a child of a tagged one, which then goes with its tags.
        tags = [tag for image in client.images() for tag in image.get("RepoTags") or [] if tag.startswith(f"{PREFIX}/")]
        subprocess.run(["docker", "rmi", untagged, *tags], check=True, capture_output=True)
    data = write_recording(answers, layers, writable)
    leaks = set(_strings(json.loads(gzip.decompress(data)))) & {socket.gethostname(), socket.getfqdn()}
    text = gzip.decompress(data).decode()
    leaks |= {leak for leak in (str(Path(root).parent), str(Path(socket_path).parent)) if leak in text}
    if leaks:
        raise SystemExit(f"record-demo: the recording still names {sorted(leaks)}")
    out.write_bytes(data)
    print(
        f"wrote {out}: {len(data):,} bytes, {len(answers['/images/json'])} images, "
        f"{len(answers['/containers/json'])} containers, {len(layers)} layers"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)
