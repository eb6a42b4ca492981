"""Which daemon events refresh what, for the event shapes of API 1.41 through 1.52+ (Docker 29)
and Podman's Docker-compatible API."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from dockerscope.service import EventBatch
from dockerscope.service.events import event_batch
from dockerscope.service.values import parse_timestamp

CONTAINER = "c" * 64
IMAGE = "sha256:" + "1" * 64


def _event(kind: str, action: str, actor_id: str, **legacy: Any) -> dict[str, Any]:
    """An event as API 1.52 sends it (no `status`/`id`/`from`), plus any legacy fields."""
    return {
        "Type": kind,
        "Action": action,
        "Actor": {"ID": actor_id, "Attributes": {"name": "web"}},
        "scope": "local",
        "time": 1764385200,
        "timeNano": 1764385200123456789,
        **legacy,
    }


@pytest.mark.parametrize(
    "action", ["create", "start", "die", "stop", "kill", "pause", "unpause", "destroy", "rename", "oom", "restart"]
)
def test_container_lifecycle_events_touch_that_container(action: str) -> None:
    assert event_batch(_event("container", action, CONTAINER)) == EventBatch(container_ids=frozenset({CONTAINER}))


def test_an_action_with_details_after_a_colon_counts_by_its_name() -> None:
    assert event_batch(_event("container", "health_status: healthy", CONTAINER)).container_ids == {CONTAINER}
    assert not event_batch(_event("container", "exec_start: sh -c date", CONTAINER))


@pytest.mark.parametrize(
    "action", ["attach", "detach", "exec_create", "exec_die", "resize", "top", "archive-path", "exec", "exec_died"]
)
def test_container_events_that_change_nothing_listed_are_ignored(action: str) -> None:
    assert not event_batch(_event("container", action, CONTAINER))


@pytest.mark.parametrize("action", ["init", "cleanup", "remove"])
def test_podman_s_own_lifecycle_actions_refresh_the_container(action: str) -> None:
    assert event_batch(_event("container", action, CONTAINER)) == EventBatch(container_ids=frozenset({CONTAINER}))


def test_an_action_a_newer_daemon_invents_refreshes_the_container() -> None:
    assert event_batch(_event("container", "hibernate", CONTAINER)).container_ids == {CONTAINER}


def test_a_commit_also_lists_the_images_again() -> None:
    batch = event_batch(_event("container", "commit", CONTAINER))
    assert batch.container_ids == {CONTAINER}
    assert batch.all_images


@pytest.mark.parametrize("action", ["tag", "untag", "delete", "import", "load"])
def test_image_events_naming_an_id_touch_that_image(action: str) -> None:
    assert event_batch(_event("image", action, IMAGE)) == EventBatch(image_ids=frozenset({IMAGE}))


@pytest.mark.parametrize(("action", "actor"), [("pull", "busybox:latest"), ("prune", ""), ("load", "app:1")])
def test_image_events_naming_a_reference_or_nothing_list_all_images(action: str, actor: str) -> None:
    assert event_batch(_event("image", action, actor)) == EventBatch(all_images=True)


@pytest.mark.parametrize("action", ["tag", "untag", "remove"])
def test_podman_image_events_naming_a_bare_id_touch_that_image(action: str) -> None:
    """Podman's image events name the image by its hex id without `sha256:`: that one image is
    inspected again, not the whole list."""
    assert event_batch(_event("image", action, "1" * 64)) == EventBatch(image_ids=frozenset({IMAGE}))


@pytest.mark.parametrize("actor", ["1" * 63, "1" * 65, "A" * 64, "app:" + "1" * 60])
def test_an_image_actor_that_is_not_exactly_a_hex_id_lists_all_images(actor: str) -> None:
    assert event_batch(_event("image", "tag", actor)) == EventBatch(all_images=True)


def test_push_and_save_change_no_image() -> None:
    assert not event_batch(_event("image", "push", IMAGE))
    assert not event_batch(_event("image", "save", IMAGE))


def test_other_event_types_are_ignored() -> None:
    assert not event_batch(_event("network", "connect", "n" * 64))
    assert not event_batch(_event("volume", "mount", "data"))


def test_the_pre_1_22_fields_are_understood_when_actor_is_missing() -> None:
    legacy = {"Type": "container", "status": "start", "id": CONTAINER, "from": "busybox"}
    assert event_batch(legacy).container_ids == {CONTAINER}


def test_malformed_events_change_nothing() -> None:
    assert not event_batch({})
    assert not event_batch({"Type": "container", "Action": "start", "Actor": "not a mapping"})
    assert not event_batch({"Type": "container", "Action": "start", "Actor": {"ID": None}})


def test_batches_merge() -> None:
    merged = EventBatch(image_ids=frozenset({IMAGE})) | EventBatch(container_ids=frozenset({CONTAINER}))
    assert merged == EventBatch(image_ids=frozenset({IMAGE}), container_ids=frozenset({CONTAINER}))
    assert (merged | EventBatch(all_images=True)).all_images
    assert not EventBatch()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-29T03:00:00.123456789Z", datetime(2026, 11, 29, 3, 0, 0, 123456, tzinfo=timezone.utc)),
        ("2026-11-29T03:00:00Z", datetime(2026, 11, 29, 3, 0, 0, tzinfo=timezone.utc)),
        ("2026-11-29T04:00:00.5+01:00", datetime(2026, 11, 29, 3, 0, 0, 500000, tzinfo=timezone.utc)),
        ("0001-01-01T00:00:00Z", None),
        ("yesterday", None),
        ("2026-13-45T99:00:00Z", None),
        (1764385200, None),
        (None, None),
    ],
)
def test_inspect_timestamps_are_parsed_as_the_daemon_writes_them(text: object, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected
