"""Images from an archive or an OCI image layout, read in place without a daemon.

What is read: a `docker save`/`podman save` tarball (plain or gzip-compressed; the legacy layout
`manifest.json` + `<id>.json` + `<id>/layer.tar`, and the newer one with `index.json` and
`blobs/sha256`), and an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) as a
directory or a tar, with nested indexes and gzip, zstd or plain layer blobs.

Nothing is extracted. A plain tar is indexed from its headers (member data is seeked over) and each
layer is read from its member's bytes; a gzip-compressed tar cannot seek, so it is scanned once for
its documents and streamed once more whenever layers are read. Every layer read is hashed: its
uncompressed stream must hash to its diff id. Manifests and configs of an OCI layout must hash to
the digest that names them.

Everything in an archive is hostile: names and links that leave the archive, a directory layout
whose symlinks point outside it, cycles of links or indexes, huge counts and documents all give one
`ArchiveError`, and nothing outside the archive is read.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import posixpath
import re
import stat
import threading
import zlib
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from dockerscope.service.export_reader import (
    ExportFormatError,
    TarMember,
    export_listings,
    index_tar,
    read_export_files,
    read_layer,
    read_layer_members,
    scan_export,
)
from dockerscope.service.file_reading import ContentSink, SinkOpener
from dockerscope.service.layer_files import LayerListing, check_cancel
from dockerscope.service.values import parse_timestamp, text

DOCKER_ARCHIVE = "docker archive"
OCI_LAYOUT = "OCI layout"

_CHUNK = 4 << 20
# Layers read at the same time (each by a thread of its own), at most one per core.
_READERS = 4
# Bounds on what an archive may make dockerscope do.
_MAX_MEMBERS = 1 << 16
_DOCUMENT_LIMIT = 8 << 20
# All the documents read to work out the images together (the export reader keeps as much).
_DOCUMENTS_TOTAL = 64 << 20
_MAX_LINK_HOPS = 40
_MAX_INDEX_DEPTH = 8
_MAX_INDEX_FANOUT = 4096
_MAX_DOCUMENTS = 8192
_MAX_LAYERS = 4096
_QUOTE = 80
_GZIP_MAGIC = b"\x1f\x8b"
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_T = TypeVar("_T")


class ArchiveError(Exception):
    """The archive cannot be read: not an archive, truncated, corrupt, or hostile."""


class _Missing(ArchiveError):
    """A path the archive does not hold (as opposed to one it must not be asked for)."""


def _quote(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= _QUOTE else f"{shown[: _QUOTE - 1]}…"


@dataclass(frozen=True)
class ArchiveLayer:
    diff_id: str
    path: str  # the member or blob holding it
    size: int  # of the blob as stored (compressed when the blob is)


@dataclass(frozen=True)
class ArchiveImage:
    """One image of the archive: one config, with the manifest that names it. The config itself
    is read again when shown (`Archive.config`): parsed, a large one takes many times its size."""

    id: str  # sha256 of its config: what a daemon calls the image once loaded
    tags: tuple[str, ...]
    platform: str  # os/architecture[/variant], "" when the config does not say
    created: datetime | None
    config_path: str
    manifest: Mapping[str, Any]
    layers: tuple[ArchiveLayer, ...]

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)


class _Store(Protocol):
    """Where the archive's files are: a seekable tar, a gzip-compressed tar or a directory."""

    def exists(self, path: str) -> bool: ...

    def size(self, path: str) -> int: ...

    def document(self, path: str) -> bytes: ...

    def listings(
        self, layers: Sequence[ArchiveLayer], cancel: threading.Event | None, on_layer: Callable[[int, int], None]
    ) -> dict[str, LayerListing]: ...

    def read_files(
        self,
        layers: Sequence[ArchiveLayer],
        wanted: Mapping[int, Collection[str]],
        open_sink: SinkOpener,
        cancel: threading.Event | None,
    ) -> None: ...

    def close(self) -> None: ...


def _in_layer(open_sink: SinkOpener, index: int) -> Callable[[str, int], ContentSink]:
    return lambda path, size: open_sink(index, path, size)


def _read_files(
    layers: Sequence[ArchiveLayer],
    wanted: Mapping[int, Collection[str]],
    chunks: Callable[[str], Generator[bytes, None, None]],
    open_sink: SinkOpener,
    cancel: threading.Event | None,
) -> None:
    """The wanted files of each layer, read from its own blob up to the last of them."""
    for index, paths in wanted.items():
        layer = layers[index]
        stream = chunks(layer.path)
        try:
            read_layer_members(stream, paths, _in_layer(open_sink, index), cancel=cancel)
        except ExportFormatError as error:
            raise ArchiveError(f"layer {_quote(layer.path)}: {error}") from None
        finally:
            stream.close()


def _check_digest(diff_id: str, digest: str, where: str) -> None:
    if digest != diff_id:
        raise ArchiveError(f"layer {_quote(where)} does not match its diff id {diff_id}: it hashes to {digest}")


def _read_layers(
    layers: Sequence[ArchiveLayer],
    chunks: Callable[[str], Iterator[bytes]],
    cancel: threading.Event | None,
    on_layer: Callable[[int, int], None],
) -> dict[str, LayerListing]:
    """Each distinct layer read from its own bytes, hashed and checked against its diff id. Layers
    are read a few at a time: hashing, most of the work, runs outside the GIL, so the cores share
    it. A failure cancels the layers not yet started."""
    distinct = list({layer.diff_id: layer for layer in layers}.values())
    listings: dict[str, LayerListing] = {}
    lock = threading.Lock()
    done = [0]
    stop = threading.Event()

    def read(layer: ArchiveLayer) -> None:
        if stop.is_set():
            return
        check_cancel(cancel)
        try:
            digest, listing = read_layer(chunks(layer.path), cancel=cancel)
        except ExportFormatError as error:
            raise ArchiveError(f"layer {_quote(layer.path)}: {error}") from None
        _check_digest(layer.diff_id, digest, layer.path)
        with lock:
            listings[layer.diff_id] = listing
            done[0] += layer.size
            on_layer(len(listings), done[0])

    workers = max(1, min(_READERS, os.cpu_count() or 1, len(distinct)))
    with ThreadPoolExecutor(workers, thread_name_prefix="archive-layer") as pool:
        futures = [pool.submit(read, layer) for layer in distinct]
        try:
            for future in futures:
                future.result()
        finally:
            stop.set()
    return listings


class _TarMembers:
    """Link resolution over an outer tar's members, shared by both tar stores."""

    def __init__(self, members: Mapping[str, TarMember]) -> None:
        self._members = members

    def resolve(self, path: str) -> TarMember:
        wanted = path
        for _ in range(_MAX_LINK_HOPS):
            member = self._members.get(path)
            if member is None:
                raise _Missing(f"{_quote(wanted)} is missing from the archive")
            if member.link is None:
                if not member.regular:
                    raise ArchiveError(f"{_quote(wanted)} is not a file in the archive")
                return member
            path = member.link
        raise ArchiveError(f"too many links from {_quote(wanted)} (a cycle?)")

    def exists(self, path: str) -> bool:
        try:
            self.resolve(path)
        except _Missing:
            return False
        return True


class _ChunkedStore:
    """A store that reads each member as one stream of chunks: layers are listed and their files
    read from those."""

    def _chunks(self, path: str) -> Generator[bytes, None, None]:
        raise NotImplementedError

    def listings(
        self, layers: Sequence[ArchiveLayer], cancel: threading.Event | None, on_layer: Callable[[int, int], None]
    ) -> dict[str, LayerListing]:
        return _read_layers(layers, self._chunks, cancel, on_layer)

    def read_files(
        self,
        layers: Sequence[ArchiveLayer],
        wanted: Mapping[int, Collection[str]],
        open_sink: SinkOpener,
        cancel: threading.Event | None,
    ) -> None:
        _read_files(layers, wanted, self._chunks, open_sink, cancel)


class _SeekableTar(_ChunkedStore):
    """A plain tar file: members indexed from their headers, data read where it lies."""

    def __init__(self, path: str, cancel: threading.Event | None) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._end = os.fstat(self._fd).st_size
            try:
                members = index_tar(self._read_at, self._end, max_members=_MAX_MEMBERS, cancel=cancel)
            except ExportFormatError as error:
                raise ArchiveError(str(error)) from None
        except BaseException:
            os.close(self._fd)
            raise
        self._members = _TarMembers(members)

    def _read_at(self, offset: int, count: int) -> bytes:
        return os.pread(self._fd, count, offset)

    def exists(self, path: str) -> bool:
        return self._members.exists(path)

    def size(self, path: str) -> int:
        return self._members.resolve(path).size

    def document(self, path: str) -> bytes:
        member = self._members.resolve(path)
        if member.size > _DOCUMENT_LIMIT:
            raise ArchiveError(f"{_quote(path)} is too large for a manifest or config ({member.size} bytes)")
        data = self._read_at(member.offset, member.size)
        if len(data) < member.size:
            raise ArchiveError(f"the archive is truncated inside {_quote(path)}")
        return data

    def _chunks(self, path: str) -> Generator[bytes, None, None]:
        member = self._members.resolve(path)
        offset, end = member.offset, member.offset + member.size
        while offset < end:
            data = self._read_at(offset, min(_CHUNK, end - offset))
            if not data:
                raise ArchiveError(f"the archive is truncated inside {_quote(path)}")
            offset += len(data)
            yield data

    def close(self) -> None:
        os.close(self._fd)


def _gunzip(path: str) -> Generator[bytes, None, None]:
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            yield chunk


class _GzipTar:
    """A gzip-compressed tar: scanned once for its documents; layers read in one more pass, each
    matched by the digest of its content."""

    def __init__(self, path: str, cancel: threading.Event | None) -> None:
        self._path = path
        members, self._documents = _gzip_errors(
            lambda: scan_export(_gunzip(path), max_members=_MAX_MEMBERS, cancel=cancel)
        )
        self._members = _TarMembers(members)

    def exists(self, path: str) -> bool:
        return self._members.exists(path)

    def size(self, path: str) -> int:
        return self._members.resolve(path).size

    def document(self, path: str) -> bytes:
        member = self._members.resolve(path)
        data = self._documents.get(member.path)
        if data is None:
            raise ArchiveError(f"{_quote(path)} is too large for a manifest or config ({member.size} bytes)")
        return data

    def listings(
        self, layers: Sequence[ArchiveLayer], cancel: threading.Event | None, on_layer: Callable[[int, int], None]
    ) -> dict[str, LayerListing]:
        wanted = list(dict.fromkeys(layer.diff_id for layer in layers))
        found = _gzip_errors(lambda: export_listings(_gunzip(self._path), wanted, cancel=cancel, on_progress=on_layer))
        for layer in layers:
            if layer.diff_id not in found:
                raise ArchiveError(f"no layer of the archive hashes to {layer.diff_id} ({_quote(layer.path)})")
        return found

    def read_files(
        self,
        layers: Sequence[ArchiveLayer],
        wanted: Mapping[int, Collection[str]],
        open_sink: SinkOpener,
        cancel: threading.Event | None,
    ) -> None:
        """One more pass over the archive, up to the wanted layers' files."""
        paths: dict[str, list[int]] = {}
        for index, layer in enumerate(layers):
            paths.setdefault(self._members.resolve(layer.path).path, []).append(index)
        diff_ids = [layer.diff_id for layer in layers]
        stream = _gunzip(self._path)
        try:
            _gzip_errors(
                lambda: read_export_files(stream, diff_ids, wanted, open_sink, cancel=cancel, layer_paths=paths)
            )
        finally:
            stream.close()

    def close(self) -> None:
        pass


def _gzip_errors(read: Callable[[], _T]) -> _T:
    try:
        return read()
    except ExportFormatError as error:
        raise ArchiveError(str(error)) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise ArchiveError(f"the gzip stream is corrupt or truncated ({error})") from None


class _Directory(_ChunkedStore):
    """An unpacked layout: every path must stay inside the directory once symlinks are resolved."""

    def __init__(self, root: str) -> None:
        self._root = os.path.realpath(root)

    def _file(self, path: str) -> str:
        parts = path.split("/")
        if path.startswith("/") or ".." in parts or not path:
            raise ArchiveError(f"the layout names a path outside itself: {_quote(path)}")
        full = os.path.realpath(os.path.join(self._root, path))
        if os.path.commonpath([self._root, full]) != self._root:
            raise ArchiveError(f"{_quote(path)} leads outside the layout")
        try:
            info = os.stat(full)
        except FileNotFoundError:
            raise _Missing(f"{_quote(path)} is missing from the layout") from None
        except OSError as error:
            raise ArchiveError(f"{_quote(path)} cannot be read: {error.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise ArchiveError(f"{_quote(path)} is not a file in the layout")
        return full

    def exists(self, path: str) -> bool:
        try:
            self._file(path)
        except _Missing:
            return False
        return True

    def size(self, path: str) -> int:
        return os.stat(self._file(path)).st_size

    def document(self, path: str) -> bytes:
        try:
            with open(self._file(path), "rb") as file:
                data = file.read(_DOCUMENT_LIMIT + 1)
        except OSError as error:
            raise ArchiveError(f"{_quote(path)} cannot be read: {error.strerror}") from None
        if len(data) > _DOCUMENT_LIMIT:
            raise ArchiveError(f"{_quote(path)} is too large for a manifest or config")
        return data

    def _chunks(self, path: str) -> Generator[bytes, None, None]:
        try:
            with open(self._file(path), "rb") as file:
                while chunk := file.read(_CHUNK):
                    yield chunk
        except OSError as error:
            raise ArchiveError(f"{_quote(path)} cannot be read: {error.strerror}") from None

    def close(self) -> None:
        pass


class Archive:
    """An opened archive or layout: its kind, its images, and its layers' listings on demand."""

    def __init__(self, path: str, *, cancel: threading.Event | None = None) -> None:
        self._store = _open_store(path, cancel)
        try:
            self.kind, self.images = _read_images(self._store)
        except BaseException:
            self._store.close()
            raise

    def listings(
        self,
        image: ArchiveImage,
        *,
        cancel: threading.Event | None = None,
        on_layer: Callable[[int, int], None] = lambda layers, size: None,
    ) -> list[tuple[str, LayerListing]]:
        """Every layer of the image, oldest first, read from the archive and checked against its
        diff id. Blocking."""
        found = self._store.listings(image.layers, cancel, on_layer)
        check_cancel(cancel)
        return [(layer.diff_id, found[layer.diff_id]) for layer in image.layers]

    def read_files(
        self,
        image: ArchiveImage,
        wanted: Mapping[int, Collection[str]],
        open_sink: SinkOpener,
        *,
        cancel: threading.Event | None = None,
    ) -> None:
        """Hand the wanted files of the image's layers (by layer index) to sinks, as
        `ImageSource.read_layer_files` does. Blocking."""
        self._store.read_files(image.layers, wanted, open_sink, cancel)

    def config(self, image: ArchiveImage) -> dict[str, Any]:
        """The image's config, read again and checked against the id it was listed under.
        Blocking."""
        return _object(_json(self._store, image.config_path, image.id), f"the config of {image.id[7:19]}")

    def close(self) -> None:
        self._store.close()


def _open_store(path: str, cancel: threading.Event | None) -> _Store:
    try:
        if os.path.isdir(path):
            return _Directory(path)
        with open(path, "rb") as file:
            head = file.read(2)
        if head == _GZIP_MAGIC:
            return _GzipTar(path, cancel)
        return _SeekableTar(path, cancel)
    except OSError as error:
        raise ArchiveError(f"cannot open it: {error.strerror or error}") from None
    except ArchiveError as error:
        raise ArchiveError(f"not a readable image archive: {error}") from None


def _json(store: _Store, path: str, digest: str | None = None) -> Any:
    data = store.document(path)
    if digest is not None and f"sha256:{hashlib.sha256(data).hexdigest()}" != digest:
        raise ArchiveError(f"{_quote(path)} does not match its digest")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:
        raise ArchiveError(f"{_quote(path)} is not JSON: {_quote(str(error))}") from None


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ArchiveError(f"{what} is not a JSON object")
    return value


def _list(value: object, what: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise ArchiveError(f"{what} is not a list")
    if len(value) > limit:
        raise ArchiveError(f"{what} lists {len(value)} entries, more than {limit}")
    return value


def _blob(digest: object) -> tuple[str, str]:
    """A descriptor's digest and the path of its blob; only sha256 digests are read."""
    match = _DIGEST.match(digest) if isinstance(digest, str) else None
    if match is None:
        raise ArchiveError(f"unsupported or malformed digest {_quote(digest)}")
    return digest, f"blobs/sha256/{match.group(1)}"  # type: ignore[return-value]


def _platform(value: object) -> str:
    if not isinstance(value, Mapping):
        return ""
    parts = [text(value.get(key)) for key in ("os", "architecture", "variant")]
    return "/".join(part for part in parts if part)


def _layers(store: _Store, config: dict[str, Any], paths: Sequence[str], what: str) -> tuple[ArchiveLayer, ...]:
    rootfs = _object(config.get("rootfs"), f"the rootfs of {what}")
    diff_ids = _list(rootfs.get("diff_ids"), f"the diff ids of {what}", _MAX_LAYERS)
    if len(diff_ids) != len(paths):
        raise ArchiveError(f"{what} names {len(paths)} layers but its config {len(diff_ids)} diff ids")
    layers = []
    for diff_id, path in zip(diff_ids, paths, strict=True):
        if not isinstance(diff_id, str) or _DIGEST.match(diff_id) is None:
            raise ArchiveError(f"{what} has a malformed diff id {_quote(diff_id)}")
        try:
            size = store.size(path)
        except ArchiveError as error:
            raise ArchiveError(f"a layer of {what}: {error}") from None
        layers.append(ArchiveLayer(diff_id, path, size))
    return tuple(layers)


def _config_id(store: _Store, path: str) -> tuple[str, dict[str, Any]]:
    data = store.document(path)
    try:
        config = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise ArchiveError(f"{_quote(path)} is not JSON: {_quote(str(error))}") from None
    return f"sha256:{hashlib.sha256(data).hexdigest()}", _object(config, f"the config {_quote(path)}")


class _Budgeted:
    """A store whose documents, read while the images are worked out, share one byte budget: a
    hostile index naming thousands of large configs stops there, as the export reader's kept
    members do."""

    def __init__(self, store: _Store) -> None:
        self._store = store
        self._left = _DOCUMENTS_TOTAL

    def exists(self, path: str) -> bool:
        return self._store.exists(path)

    def size(self, path: str) -> int:
        return self._store.size(path)

    def document(self, path: str) -> bytes:
        data = self._store.document(path)
        self._left -= len(data)
        if self._left < 0:
            raise ArchiveError(f"the archive's manifests and configs take more than {_DOCUMENTS_TOTAL >> 20} MiB")
        return data

    def listings(
        self, layers: Sequence[ArchiveLayer], cancel: threading.Event | None, on_layer: Callable[[int, int], None]
    ) -> dict[str, LayerListing]:
        return self._store.listings(layers, cancel, on_layer)

    def read_files(
        self,
        layers: Sequence[ArchiveLayer],
        wanted: Mapping[int, Collection[str]],
        open_sink: SinkOpener,
        cancel: threading.Event | None,
    ) -> None:
        self._store.read_files(layers, wanted, open_sink, cancel)

    def close(self) -> None:
        self._store.close()


def _read_images(archive: _Store) -> tuple[str, tuple[ArchiveImage, ...]]:
    store = _Budgeted(archive)
    if store.exists("index.json"):
        images = _oci_images(store)
        kind = DOCKER_ARCHIVE if store.exists("manifest.json") else OCI_LAYOUT
    elif store.exists("manifest.json"):
        images = _docker_images(store)
        kind = DOCKER_ARCHIVE
    else:
        raise ArchiveError("not an image archive: it has neither manifest.json nor index.json")
    if not images:
        raise ArchiveError("the archive holds no image")
    return kind, images


def _docker_images(store: _Store) -> tuple[ArchiveImage, ...]:
    """The legacy `docker save` layout: manifest.json lists each image's config and layer members."""
    manifest = _list(_json(store, "manifest.json"), "manifest.json", _MAX_INDEX_FANOUT)
    images: dict[str, ArchiveImage] = {}
    for number, raw in enumerate(manifest, 1):
        entry = _object(raw, f"entry {number} of manifest.json")
        config_path = entry.get("Config")
        paths = _list(entry.get("Layers"), f"the layers of entry {number} of manifest.json", _MAX_LAYERS)
        if not isinstance(config_path, str) or not all(isinstance(path, str) for path in paths):
            raise ArchiveError(f"entry {number} of manifest.json names its config or layers oddly")
        image_id, config = _config_id(store, config_path)
        tags = entry.get("RepoTags")
        tag_list = tuple(text(tag) for tag in tags if isinstance(tag, str)) if isinstance(tags, list) else ()
        layers = _layers(store, config, paths, f"image {image_id[7:19]}")
        created = parse_timestamp(config.get("created"))
        _merge(images, ArchiveImage(image_id, tag_list, _platform(config), created, config_path, entry, layers))
    return tuple(images.values())


def _merge(images: dict[str, ArchiveImage], image: ArchiveImage) -> None:
    """One row per config: a config reached twice (two tags) keeps the first and adds the tags."""
    known = images.get(image.id)
    if known is None:
        images[image.id] = image
    else:
        tags = tuple(dict.fromkeys((*known.tags, *image.tags)))
        images[image.id] = replace(known, tags=tags)


def _saved_tags(store: _Store) -> dict[str, tuple[str, ...]]:
    """RepoTags by config path from a newer `docker save`'s manifest.json, when it has one."""
    if not store.exists("manifest.json"):
        return {}
    tags: dict[str, tuple[str, ...]] = {}
    raw = _json(store, "manifest.json")
    for entry in raw[:_MAX_INDEX_FANOUT] if isinstance(raw, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("Config"), str) and isinstance(entry.get("RepoTags"), list):
            tags[posixpath.normpath(entry["Config"])] = tuple(
                text(tag) for tag in entry["RepoTags"] if isinstance(tag, str)
            )
    return tags


def _ref_name(annotations: object) -> str:
    if not isinstance(annotations, Mapping):
        return ""
    return text(annotations.get("io.containerd.image.name")) or text(
        annotations.get("org.opencontainers.image.ref.name")
    )


class _IndexWalk:
    """index.json to every image manifest, through nested indexes: each document once (a cycle or
    a diamond costs nothing more), bounded depth, fan-out and document count."""

    def __init__(self, store: _Store) -> None:
        self.store = store
        self.images: dict[str, ArchiveImage] = {}
        self.saved_tags = _saved_tags(store)
        self._visited: set[str] = set()

    def walk(self, index: object, depth: int, tag: str, platform: str) -> None:
        what = "index.json" if depth == 0 else "a nested index"
        for raw in _list(_object(index, what).get("manifests"), f"the manifests of {what}", _MAX_INDEX_FANOUT):
            descriptor = _object(raw, f"a descriptor of {what}")
            annotations = descriptor.get("annotations")
            if (
                isinstance(annotations, Mapping)
                and annotations.get("vnd.docker.reference.type") == "attestation-manifest"
            ):
                continue
            digest, path = _blob(descriptor.get("digest"))
            if not self.store.exists(path):
                continue  # a platform left out of the archive
            key = f"{path} {tag} {platform}"
            if key in self._visited:
                continue
            if len(self._visited) >= _MAX_DOCUMENTS:
                raise ArchiveError(f"the archive's indexes name more than {_MAX_DOCUMENTS} documents")
            self._visited.add(key)
            document = _object(_json(self.store, path, digest), f"the document {digest[:19]}")
            here_tag = _ref_name(annotations) or tag
            here_platform = _platform(descriptor.get("platform")) or platform
            if "manifests" in document:
                if depth >= _MAX_INDEX_DEPTH:
                    raise ArchiveError(f"the archive's indexes nest deeper than {_MAX_INDEX_DEPTH}")
                self.walk(document, depth + 1, here_tag, here_platform)
            elif "layers" in document:
                self._image(document, here_tag, here_platform)

    def _image(self, manifest: dict[str, Any], tag: str, platform: str) -> None:
        config_digest, config_path = _blob(_object(manifest.get("config"), "a manifest's config").get("digest"))
        if not self.store.exists(config_path):
            raise ArchiveError(f"a manifest names a config missing from the archive: {config_digest}")
        config = _object(_json(self.store, config_path, config_digest), f"the config {config_digest[:19]}")
        paths = [
            _blob(_object(layer, "a manifest's layer").get("digest"))[1]
            for layer in _list(manifest.get("layers"), "a manifest's layers", _MAX_LAYERS)
        ]
        # A newer docker save's manifest.json has the tags as `docker images` shows them; the
        # index's annotation then holds the same name in full (`docker.io/library/app:1`).
        tags = self.saved_tags.get(config_path) or ((tag,) if tag else ())
        layers = _layers(self.store, config, paths, f"image {config_digest[7:19]}")
        created = parse_timestamp(config.get("created"))
        platform = platform or _platform(config)
        image = ArchiveImage(config_digest, tags, platform, created, config_path, manifest, layers)
        _merge(self.images, image)


def _oci_images(store: _Store) -> tuple[ArchiveImage, ...]:
    walk = _IndexWalk(store)
    walk.walk(_json(store, "index.json"), 0, "", "")
    return tuple(walk.images.values())
