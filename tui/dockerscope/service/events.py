"""Which daemon events change what dockerscope lists, and which objects they touched."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import docker
from docker.types.daemon import CancellableStream

from dockerscope.service.models import EventBatch
from dockerscope.service.values import text

# Event types the watcher subscribes to.
WATCHED_TYPES = ("image", "container")

# Container actions that leave the container list as it was (no state, name or image change).
# Anything else, including actions a newer daemon invents, refreshes the container.
QUIET_CONTAINER_ACTIONS = frozenset(
    {
        "archive-path",
        "attach",
        "copy",
        "detach",
        "exec_create",
        "exec_detach",
        "exec_die",
        "exec_start",
        "exec",  # Podman: an exec started
        "exec_died",  # Podman: an exec ended
        "export",
        "extract-to-dir",
        "resize",
        "top",
    }
)
_BARE_IMAGE_ID = re.compile(r"[0-9a-f]{64}")
# Image actions that change no image.
QUIET_IMAGE_ACTIONS = frozenset({"push", "save"})


def event_batch(event: Mapping[str, Any]) -> EventBatch:
    """What one event touched; an empty batch when it changes nothing dockerscope lists.

    Reads `Type`, `Action` and `Actor.ID`, falling back to the pre-1.52 `status`/`id` fields. An
    action may carry details after a colon (`health_status: healthy`, `exec_start: sh`)."""
    actor = event.get("Actor")
    object_id = text((actor.get("ID") if isinstance(actor, Mapping) else None) or event.get("id"))
    action = text(event.get("Action") or event.get("status")).split(":", 1)[0].strip()
    kind = event.get("Type")
    if kind == "container":
        if action in QUIET_CONTAINER_ACTIONS or not object_id:
            return EventBatch()
        # A commit makes an image without an image event of its own.
        return EventBatch(container_ids=frozenset({object_id}), all_images=action == "commit")
    if kind == "image":
        if action in QUIET_IMAGE_ACTIONS:
            return EventBatch()
        # A pull or a prune names a reference or nothing, not an image id: list the images again.
        if object_id.startswith("sha256:"):
            return EventBatch(image_ids=frozenset({object_id}))
        # Podman names the image by its bare hex id; a reference can never be 64 hex digits.
        if _BARE_IMAGE_ID.fullmatch(object_id):
            return EventBatch(image_ids=frozenset({f"sha256:{object_id}"}))
        return EventBatch(all_images=True)
    return EventBatch()


class EventStream:
    """An open `GET /events` stream and the client that holds its connection: an `EventFeed`.

    Iterate it in one thread for what each event touched (events that change nothing listed are
    left out); `close()` from any other thread ends the iteration (and is safe to call more than
    once)."""

    def __init__(self, stream: CancellableStream, client: docker.APIClient) -> None:
        self._stream = stream
        self._client = client
        self._lock = threading.Lock()
        self._closed = False

    def __iter__(self) -> Iterator[EventBatch]:
        for event in self._stream:
            if isinstance(event, Mapping) and (batch := event_batch(event)):
                yield batch

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stream.close()
        self._client.close()
