"""The demo: a recorded, anonymised snapshot of a real daemon, shipped in the package
(`demo-recording.json.gz`, written by scripts/record-demo.py), served by a `RecordedSource`.

File format: gzip of one JSON object: `format`, `answers` (API path to the daemon's answer, as
`Recording.answers`), `layers` (a list of layer listings in the layer cache's document form, each
naming its diff id) and `writable` (container id to its writable layer's listing, diff id
`writable`). The file is read as any other input: bounded, and checked before use.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from dockerscope.service.errors import DockerServiceError
from dockerscope.service.layer_cache import listing_document, listing_from_document
from dockerscope.service.layer_contents import WRITABLE_LAYER
from dockerscope.service.layer_files import LayerListing
from dockerscope.service.recorded_source import RecordedSource, Recording

DEMO_HOST = "dockerscope demo"
DEMO_FILE = "demo-recording.json.gz"
FORMAT = "dockerscope demo 1"
# The recording inflates to some hundreds of kB; anything far past that is not ours.
MAX_INFLATED_BYTES = 64 * 1024 * 1024


def demo_source() -> RecordedSource:
    """The packaged demo as an image source. Raises DockerServiceError when the file is missing
    or damaged (an install that left it out)."""
    try:
        data = resources.files("dockerscope.service").joinpath(DEMO_FILE).read_bytes()
    except OSError as error:
        raise DockerServiceError(DEMO_HOST, f"the demo recording is missing from the package: {error}") from error
    return RecordedSource(read_recording(data), DEMO_HOST, containers=True, demo=True)


def read_recording(data: bytes) -> Recording:
    """A demo file's recording; DockerServiceError when it is damaged or of another format."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            inflated = stream.read(MAX_INFLATED_BYTES + 1)
        if len(inflated) > MAX_INFLATED_BYTES:
            raise ValueError("it inflates past its bound")
        document: Any = json.loads(inflated)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError("it is not a dockerscope demo recording")
        answers, layers, writable = document["answers"], document["layers"], document["writable"]
        if not isinstance(answers, dict) or not isinstance(layers, list) or not isinstance(writable, dict):
            raise ValueError("its parts are of the wrong type")
        listings: dict[str, LayerListing] = {}
        for layer in layers:
            diff_id = layer.get("diff_id") if isinstance(layer, dict) else None
            if not isinstance(diff_id, str):
                raise ValueError("a layer listing names no diff id")
            listings[diff_id] = _listing(layer, diff_id)
        return Recording(
            answers=answers,
            layers=listings,
            writable={str(container): _listing(layer, WRITABLE_LAYER) for container, layer in writable.items()},
        )
    except (OSError, EOFError, ValueError, TypeError, KeyError, RecursionError) as error:
        raise DockerServiceError(DEMO_HOST, f"the demo recording cannot be read: {error}") from error


def _listing(document: object, diff_id: str) -> LayerListing:
    listing = listing_from_document(document, diff_id)
    if listing is None:
        raise ValueError(f"the listing of {diff_id[:80]!r} is damaged")
    return listing


def write_recording(
    answers: Mapping[str, Any], layers: Mapping[str, LayerListing], writable: Mapping[str, LayerListing]
) -> bytes:
    """A demo file's bytes; the same input gives the same bytes (no time in the gzip header)."""
    document = {
        "format": FORMAT,
        "answers": answers,
        "layers": [listing_document(diff_id, _sorted(layers[diff_id])) for diff_id in sorted(layers)],
        "writable": {
            container: listing_document(WRITABLE_LAYER, _sorted(writable[container])) for container in sorted(writable)
        },
    }
    text = json.dumps(document, separators=(",", ":"))
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def _sorted(listing: LayerListing) -> LayerListing:
    """The listing with its entries in path order: a directory walk's order is the disk's."""
    return LayerListing(tuple(sorted(listing.entries, key=lambda entry: entry.path)), listing.deleted, listing.opaque)
