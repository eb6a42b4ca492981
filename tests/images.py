"""Making small throwaway images on a daemon: shared by the tests and the soak benchmark."""

from __future__ import annotations

import io
import json
import tarfile
import time

import docker


def import_tiny_image(api: docker.APIClient, reference: str, changes: tuple[str, ...] = ()) -> str:
    """Import a one-file image with unique content (so a new id each time) as `reference`; returns
    its id. `changes`: Dockerfile instructions such as LABEL to apply."""
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as archive:
        data = f"{reference} {time.time_ns()}".encode()
        info = tarfile.TarInfo("tiny.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    repository, tag = reference.rsplit(":", 1)
    result = api.import_image_from_data(payload.getvalue(), repository=repository, tag=tag, changes=list(changes))
    return str(json.loads(result.splitlines()[-1])["status"])


def first_build_of_rebuilt(api: docker.APIClient) -> str:
    """The id of the dangling image the first build of dockerscope-test/rebuilt:1 left
    (scripts/build-fixtures.sh): its /round.txt says `first`, the tagged image's says `second`."""
    for image in api.images(filters={"dangling": True}):
        if any("echo first > /round.txt" in entry["CreatedBy"] for entry in api.history(image["Id"])):
            return str(image["Id"])
    raise AssertionError("no dangling first build of the rebuilt image: run scripts/build-fixtures.sh")
