"""Record the API answers dockerscope reads from a daemon, for tests that replay them.

Usage: python scripts/record-daemon.py OUT.json [IMAGE_PREFIX]
Records /version, /images/json, /containers/json and, for each listed image whose tags start with
IMAGE_PREFIX (all images when omitted), its inspect document and history.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import docker


def record(prefix: str) -> dict[str, Any]:
    client = docker.APIClient(version="auto", **docker.utils.kwargs_from_env())
    images = [image for image in client.images() if any(tag.startswith(prefix) for tag in image.get("RepoTags") or [])]
    responses: dict[str, Any] = {
        "/version": client.version(api_version=False),
        "/images/json": images,
        "/containers/json": [c for c in client.containers(all=True) if c["ImageID"] in {i["Id"] for i in images}],
    }
    for image in images:
        responses[f"/images/{image['Id']}/json"] = client.inspect_image(image["Id"])
        responses[f"/images/{image['Id']}/history"] = client.history(image["Id"])
    return responses


if __name__ == "__main__":
    out, prefix = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(record(prefix), handle, indent=1, sort_keys=True)
        handle.write("\n")
