"""Sinks that keep what a source hands over, for the tests of `read_layer_files`."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from collections.abc import Iterable


class Kept:
    """One file's sink: keeps its bytes (or the first `stop_after`), counts closes, and may set a
    cancel event on its first write."""

    def __init__(self, size: int, stop_after: int | None = None, cancel: threading.Event | None = None) -> None:
        self.size = size
        self.data = bytearray()
        self.closes = 0
        self.writes = 0
        self._stop_after = stop_after
        self._cancel = cancel

    def write(self, data: bytes | memoryview) -> bool:
        assert not self.closes, "written after close"
        self.writes += 1
        self.data += data
        if self._cancel is not None:
            self._cancel.set()
        return self._stop_after is None or len(self.data) < self._stop_after

    def close(self) -> None:
        self.closes += 1


class Sinks:
    """A `SinkOpener` keeping every sink it opened by (layer, path)."""

    def __init__(self, stop_after: int | None = None, cancel: threading.Event | None = None) -> None:
        self.opened: dict[tuple[int, str], Kept] = {}
        self._stop_after = stop_after
        self._cancel = cancel

    def __call__(self, layer: int, path: str, size: int) -> Kept:
        assert (layer, path) not in self.opened, f"opened twice: {layer} {path}"
        sink = self.opened[(layer, path)] = Kept(size, self._stop_after, self._cancel)
        return sink

    def data(self) -> dict[tuple[int, str], bytes]:
        return {key: bytes(sink.data) for key, sink in self.opened.items()}

    def all_closed_once(self) -> bool:
        return all(sink.closes == 1 for sink in self.opened.values())


def export_layer_files(chunks: Iterable[bytes]) -> list[dict[str, bytes]]:
    """The regular files of each layer of an image export (`docker save`), oldest first, read with
    Python's tarfile: what the image really holds. Whiteouts and hard link members are left out."""
    layers = []
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as outer:
        manifest_file = outer.extractfile("manifest.json")
        assert manifest_file is not None
        for path in json.load(manifest_file)[0]["Layers"]:
            blob = outer.extractfile(path)
            assert blob is not None
            with tarfile.open(fileobj=io.BytesIO(blob.read())) as layer:
                files = {}
                for member in layer:
                    name = member.name.removeprefix("./")
                    if member.isreg() and ".wh." not in name:
                        data = layer.extractfile(member)
                        assert data is not None
                        files[name] = data.read()
                layers.append(files)
    return layers
