"""Record the API answers dockerscope reads from a daemon, for tests that replay them.

Usage: python scripts/record-daemon.py OUT.json IMAGE [IMAGE ...]
Records /version, and /images/json, /containers/json, inspect and history restricted to the named
images, from the daemon DOCKER_HOST names.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import docker


def record(names: list[str]) -> dict[str, Any]:
    client = docker.APIClient(version="auto", **docker.utils.kwargs_from_env())
    wanted = {client.inspect_image(name)["Id"] for name in names}
    images = [image for image in client.images() if image["Id"] in wanted]
    responses: dict[str, Any] = {
        "/version": client.version(api_version=False),
        "/images/json": images,
        "/containers/json": [c for c in client.containers(all=True) if c["ImageID"] in wanted],
    }
    for image in images:
        responses[f"/images/{image['Id']}/json"] = client.inspect_image(image["Id"])
        responses[f"/images/{image['Id']}/history"] = client.history(image["Id"])
    return responses


if __name__ == "__main__":
    out, names = sys.argv[1], sys.argv[2:]
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(record(names), handle, indent=1)  # key order is document order: keep it
        handle.write("\n")
