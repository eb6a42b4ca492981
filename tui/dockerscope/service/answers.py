"""Daemon answers read into the service's models.

An answer of the wrong shape (a list that is not a list of objects, an inspect that is not an
object) raises DaemonAnswerInvalid; every field is then read through `values`, so an odd value
reads as unknown instead of raising."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dockerscope.service.errors import DaemonAnswerInvalid
from dockerscope.service.layer_contents import diff_ids
from dockerscope.service.layers import map_history
from dockerscope.service.models import Change, ChangeKind, ContainerSummary, ImageDetail, ImageSummary
from dockerscope.service.sharing import chain_ids
from dockerscope.service.values import count, parse_timestamp, text, unix_time

# An exit code is a 32-bit number: a longer one is not read (int() refuses thousands of digits).
_EXIT_CODE = re.compile(r"^Exited \((-?\d{1,10})\)")


def object_list(host: str, answer: object, what: str) -> list[Mapping[str, Any]]:
    """A list answer whose items must all be objects; anything else is an invalid answer."""
    if not isinstance(answer, list) or not all(isinstance(item, Mapping) for item in answer):
        raise DaemonAnswerInvalid(host, f"{what} is not a list of objects")
    return answer


def one_object(host: str, answer: object, what: str) -> Mapping[str, Any]:
    if not isinstance(answer, Mapping):
        raise DaemonAnswerInvalid(host, f"{what} is not an object")
    return answer


def engine_name(version: Mapping[str, Any]) -> str:
    """`Podman` when the version answer's components name a Podman engine (its Docker-compatible
    API), else `Docker`."""
    components = version.get("Components")
    if not isinstance(components, list):
        return "Docker"
    names = (text(component.get("Name")) for component in components if isinstance(component, Mapping))
    return "Podman" if any(name.startswith("Podman") for name in names) else "Docker"


def image_summaries(host: str, answer: object) -> list[ImageSummary]:
    return [image_summary(raw) for raw in object_list(host, answer, "the image list")]


def container_summaries(host: str, answer: object) -> list[ContainerSummary]:
    return [container_summary(raw) for raw in object_list(host, answer, "the container list")]


def _tags(raw: Mapping[str, Any]) -> tuple[str, ...]:
    tags = raw.get("RepoTags")
    if not isinstance(tags, list):
        return ()
    return tuple(tag for tag in map(text, tags) if tag and tag != "<none>:<none>")


def image_summary(raw: Mapping[str, Any]) -> ImageSummary:
    """An image list entry; its container count is filled in by `DockerService._publish`."""
    return ImageSummary(
        id=text(raw.get("Id")),
        tags=_tags(raw),
        created=unix_time(raw.get("Created")),
        size=count(raw.get("Size")),
        containers=0,
    )


def image_from_inspect(inspect: Mapping[str, Any]) -> ImageSummary:
    """The list entry of an image, from its inspect document (same fields, Created in RFC 3339)."""
    return ImageSummary(
        id=text(inspect.get("Id")),
        tags=_tags(inspect),
        # Whole seconds, as the image list gives them.
        created=created.replace(microsecond=0) if (created := parse_timestamp(inspect.get("Created"))) else None,
        size=count(inspect.get("Size")),
        containers=0,
    )


def build_image_detail(image_id: str, inspect: Mapping[str, Any], history: list[Mapping[str, Any]]) -> ImageDetail:
    layers = diff_ids(inspect)
    return ImageDetail(
        id=text(inspect.get("Id")) or image_id,
        inspect=inspect,
        layers=map_history(history, layers),
        chain=chain_ids(layers),
    )


def container_summary(raw: Mapping[str, Any]) -> ContainerSummary:
    names = raw.get("Names")
    state = text(raw.get("State"))
    status = text(raw.get("Status"))
    exit_code = _EXIT_CODE.match(status) if state == "exited" else None
    return ContainerSummary(
        id=text(raw.get("Id")),
        name=text(names[0]).removeprefix("/") if isinstance(names, list) and names else "",
        image=text(raw.get("Image")),
        image_id=text(raw.get("ImageID")),
        state=state,
        status=status,
        created=unix_time(raw.get("Created")),
        exit_code=int(exit_code.group(1)) if exit_code else None,
    )


def listed_size(raw: Mapping[str, Any], key: str) -> int | None:
    """A size from the container list; the daemon omits zero sizes, anything but a count is unknown."""
    value = raw.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def sorted_changes(raw: list[Mapping[str, Any]]) -> tuple[Change, ...]:
    """`docker diff` entries sorted by path (the daemon's order changes from call to call). The API
    sends null for none; kinds this version does not know are left out."""
    known = {kind.value: kind for kind in ChangeKind}
    changes = (
        Change(path=text(change.get("Path")), kind=known[kind])
        for change in raw
        if isinstance(kind := change.get("Kind"), int) and not isinstance(kind, bool) and kind in known
    )
    return tuple(sorted(changes, key=lambda change: change.path))
