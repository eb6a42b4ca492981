"""Image archives and OCI layouts built in a test with tarfile: layers, configs, manifests, indexes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import zstandard

CREATED = "2026-11-29T03:00:00Z"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def layer(files: Mapping[str, bytes | None]) -> bytes:
    """An uncompressed layer tar: a path maps to its bytes, or None for a directory."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.mtime = 1700000000
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def config(layers: Sequence[bytes], history: Sequence[Mapping[str, Any]], arch: str = "amd64", **extra: Any) -> bytes:
    document = {
        "architecture": arch,
        "os": "linux",
        "created": CREATED,
        "config": {"Cmd": ["/bin/sh"], "Labels": {"made.by": "tests/archives.py"}},
        "rootfs": {"type": "layers", "diff_ids": [digest(data) for data in layers]},
        "history": list(history),
        **extra,
    }
    return json.dumps(document).encode()


def step(created_by: str, empty: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"created": CREATED, "created_by": created_by}
    if empty:
        entry["empty_layer"] = True
    return entry


class Layout:
    """The blobs of an OCI layout and its index.json, written as a directory or a tar."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def blob(self, data: bytes, media_type: str = "application/octet-stream") -> dict[str, Any]:
        self.blobs[digest(data)] = data
        return {"mediaType": media_type, "digest": digest(data), "size": len(data)}

    def image(
        self,
        layers: Sequence[bytes],
        history: Sequence[Mapping[str, Any]],
        *,
        how: str = "gzip",
        arch: str = "amd64",
        tag: str | None = None,
        platform: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """An image manifest's descriptor, its config and layers stored as blobs."""
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": self.blob(config(layers, history, arch), "application/vnd.oci.image.config.v1+json"),
            "layers": [
                self.blob(compress(data, how), "application/vnd.oci.image.layer.v1.tar+gzip") for data in layers
            ],
        }
        descriptor = self.blob(json.dumps(manifest).encode(), MANIFEST_TYPE)
        if tag is not None:
            descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
        if platform is not None:
            descriptor["platform"] = dict(platform)
        return descriptor

    def index(self, descriptors: Sequence[Mapping[str, Any]], tag: str | None = None) -> dict[str, Any]:
        document = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": list(descriptors)}
        descriptor = self.blob(json.dumps(document).encode(), INDEX_TYPE)
        if tag is not None:
            descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
        return descriptor

    def files(self, descriptors: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
        index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": list(descriptors)}
        files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": json.dumps(index).encode()}
        for name, data in self.blobs.items():
            files[f"blobs/sha256/{name.removeprefix('sha256:')}"] = data
        return files

    def write_dir(self, root: Path, descriptors: Sequence[Mapping[str, Any]]) -> Path:
        for name, data in self.files(descriptors).items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return root


def write_tar(path: Path, files: Mapping[str, bytes], links: Mapping[str, str] = {}) -> Path:
    """A tar of `files` (path: bytes) and symlinks (`links`, path: target)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


def docker_save(
    images: Sequence[tuple[Sequence[str], Sequence[bytes], Sequence[Mapping[str, Any]]]],
) -> dict[str, bytes]:
    """The members of a legacy `docker save` of (tags, layers, history) images."""
    files: dict[str, bytes] = {}
    manifest = []
    for tags, layers, history in images:
        config_data = config(layers, history)
        config_name = f"{digest(config_data)[7:]}.json"
        files[config_name] = config_data
        paths = []
        for data in layers:
            path = f"{digest(data)[7:]}/layer.tar"
            files[path] = data
            paths.append(path)
        manifest.append({"Config": config_name, "RepoTags": list(tags), "Layers": paths})
    files["manifest.json"] = json.dumps(manifest).encode()
    return files
