"""Build `dockerscope-bench/big:1`, a ~1 GB image of ~60,000 files for the layer-analysis benchmarks.

`python benchmarks/big_image.py [--rebuild]` talks to the daemon DOCKER_HOST names. Nothing is
pulled: the base layer holds the host's static busybox, the other layers are generated from a
seeded random pool (so every build gives the same image: same diff IDs, same image ID) and the
image goes in with one streamed `docker load`. The layers look like a typical application image:
system libraries and tools, Python packages, node_modules, assets with MB-sized files, then a
layer deleting a 64 MiB file, one removing whole directories and one overwriting files. An image
already there is kept unless `--rebuild` is given. Prints the image size, layer count and counts.
`--plus` also builds `dockerscope-bench/big-plus:1` on it (three files and an `ENV`), the second
image of the comparison benchmarks.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import posixpath
import random
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import docker
from docker.utils import kwargs_from_env

IMAGE = "dockerscope-bench/big:1"
SEED = 20240101
POOL_BYTES = 16 << 20
BIG_FILE = "opt/app/data/model-64m.bin"
BIG_FILE_BYTES = 64 << 20
EPOCH = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp())
COPY_BUFFER = 1 << 20
LABEL_PREFIX = "dockerscope.bench."
APPLETS = "sh ash cat cp echo env grep head ls mkdir mv rm sed sort tail tar vi"


@dataclass(frozen=True)
class Entry:
    """One tar entry of a layer. `kind` is file, dir, symlink, hardlink or whiteout; `offset` says
    where in the random pool a file's bytes start."""

    path: str
    kind: str
    size: int = 0
    link: str = ""
    offset: int = 0
    mode: int = 0o644


@dataclass
class Layer:
    """One layer: the history line that made it and its entries (parent directories are implied)."""

    created_by: str
    entries: list[Entry] = field(default_factory=list)


def _log_size(rng: random.Random, low: int, high: int) -> int:
    """A size spread evenly on a log scale between low and high, as real file sizes roughly are."""
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


class _Planner:
    """Decides every layer's entries. Deterministic: the same seed gives the same image."""

    def __init__(self, busybox_size: int) -> None:
        self.rng = random.Random(SEED)
        self.busybox_size = busybox_size
        self.python_packages: list[str] = []
        self.node_packages: list[str] = []
        self.python_files: list[Entry] = []
        self.node_files: list[Entry] = []
        self.libraries: list[Entry] = []

    def file(self, path: str, size: int, mode: int = 0o644) -> Entry:
        return Entry(path, "file", size=size, offset=self.rng.randrange(POOL_BYTES), mode=mode)

    def layers(self) -> list[Layer]:
        return [
            self.base(),
            self.system(),
            self.python(),
            self.node(),
            self.assets(),
            Layer(f"/bin/sh -c rm /{BIG_FILE}", [Entry(_whiteout(BIG_FILE), "whiteout")]),
            self.cleanup(),
            self.upgrade(),
        ]

    def base(self) -> Layer:
        layer = Layer("/bin/sh -c #(nop) ADD file:busybox in / ")
        layer.entries.append(Entry("bin/busybox", "file", size=self.busybox_size, mode=0o755))
        for applet in APPLETS.split():
            layer.entries.append(Entry(f"bin/{applet}", "symlink", link="/bin/busybox", mode=0o777))
        for name, size in (("passwd", 512), ("group", 256), ("hostname", 9), ("os-release", 300)):
            layer.entries.append(self.file(f"etc/{name}", size))
        layer.entries += [Entry(name, "dir", mode=0o755) for name in ("tmp", "root", "var/cache", "var/log")]
        return layer

    def system(self) -> Layer:
        """Shared libraries with their symlinks, tools, docs, locales and headers: ~9,500 files."""
        rng = self.rng
        layer = Layer("/bin/sh -c apt-get update && apt-get install -y --no-install-recommends build-essential")
        libdir = "usr/lib/x86_64-linux-gnu"
        for number in range(300):
            real = f"{libdir}/libpkg{number:03d}.so.{number % 7}.{number % 11}.0"
            library = self.file(real, _log_size(rng, 8 << 10, 2 << 20))
            self.libraries.append(library)
            layer.entries.append(library)
            layer.entries.append(Entry(f"{libdir}/libpkg{number:03d}.so.{number % 7}", "symlink", link=Path(real).name))
        for number in range(250):
            tool = self.file(f"usr/bin/tool-{number:03d}", _log_size(rng, 8 << 10, 1 << 20), mode=0o755)
            layer.entries.append(tool)
            if number % 25 == 0:
                layer.entries.append(Entry(f"{tool.path}-alias", "hardlink", link=tool.path, mode=0o755))
        for number in range(800):
            layer.entries.append(self.file(f"usr/share/doc/pkg-{number:03d}/copyright", _log_size(rng, 300, 40 << 10)))
            layer.entries.append(
                self.file(f"usr/share/doc/pkg-{number:03d}/changelog.Debian.gz", _log_size(rng, 300, 30 << 10))
            )
        for locale in range(50):
            for number in range(40):
                path = f"usr/share/locale/l{locale:02d}/LC_MESSAGES/pkg-{number:03d}.mo"
                layer.entries.append(self.file(path, _log_size(rng, 1 << 10, 100 << 10)))
        for number in range(5000):
            parts = [f"inc{rng.randrange(12):02d}"] + [f"sub{rng.randrange(6)}" for _ in range(rng.randrange(3))]
            path = "/".join(["usr/include", *parts, f"header{number:04d}.h"])
            layer.entries.append(self.file(path, _log_size(rng, 200, 60 << 10)))
        return layer

    def python(self) -> Layer:
        """190 packages with modules up to two directories below the package, bytecode, dist-info and
        a few big extension modules: ~26,000 files."""
        rng = self.rng
        layer = Layer("/bin/sh -c pip install --no-cache-dir -r /tmp/requirements.txt")
        root = "usr/lib/python3.11/site-packages"
        for number in range(190):
            package = f"pkg{number:03d}"
            self.python_packages.append(package)
            for module in range(_log_size(rng, 5, 400)):
                depth = rng.randrange(3)
                parts = [package] + [f"sub{rng.randrange(3)}" for _ in range(depth)]
                source = self.file("/".join([*parts, f"mod{module:03d}.py"]), _log_size(rng, 100, 40 << 10))
                self.python_files.append(source)
                layer.entries.append(source)
                if module % 2 == 0:
                    compiled = "/".join([*parts, "__pycache__", f"mod{module:03d}.cpython-311.pyc"])
                    layer.entries.append(self.file(compiled, _log_size(rng, 200, 60 << 10)))
            if number % 12 == 0:
                extension = f"{package}/_speedups.cpython-311-x86_64-linux-gnu.so"
                layer.entries.append(self.file(extension, _log_size(rng, 1 << 20, 12 << 20), mode=0o755))
            info = f"{package}-1.{number % 10}.0.dist-info"
            for name in ("METADATA", "RECORD", "WHEEL", "top_level.txt", "INSTALLER"):
                layer.entries.append(self.file(f"{info}/{name}", _log_size(rng, 10, 20 << 10)))
        layer.entries = [_under(root, entry) for entry in layer.entries]
        self.python_files = [_under(root, entry) for entry in self.python_files]
        return layer

    def node(self) -> Layer:
        """800 npm packages, some nested, with package.json, docs and lib trees: ~23,000 files."""
        rng = self.rng
        layer = Layer("/bin/sh -c cd /app && npm ci --omit=dev")
        for number in range(800):
            package = f"app/node_modules/npm-{number:03d}"
            if number % 10 == 9:
                package = f"{self.node_packages[-1]}/node_modules/dep-{number:03d}"
            self.node_packages.append(package)
            for name in ("package.json", "README.md", "LICENSE"):
                layer.entries.append(self.file(f"{package}/{name}", _log_size(rng, 200, 12 << 10)))
            for module in range(_log_size(rng, 2, 110)):
                parts = [package, "lib"] + [f"part{rng.randrange(3)}" for _ in range(rng.randrange(3))]
                extension = rng.choice((".js", ".js", ".d.ts", ".js.map", ".mjs"))
                script = self.file("/".join([*parts, f"m{module:03d}{extension}"]), _log_size(rng, 40, 40 << 10))
                self.node_files.append(script)
                layer.entries.append(script)
        return layer

    def assets(self) -> Layer:
        """Static assets, data shards and the 64 MiB model that the next layer deletes."""
        rng = self.rng
        layer = Layer("/bin/sh -c #(nop) COPY dir:assets in /opt/app ")
        layer.entries.append(self.file(BIG_FILE, BIG_FILE_BYTES))
        for number in range(8):
            layer.entries.append(
                self.file(f"opt/app/data/shards/shard-{number:02d}.bin", _log_size(rng, 4 << 20, 16 << 20))
            )
        for number in range(1000):
            kind = rng.choice(("img", "img", "fonts", "js", "css"))
            layer.entries.append(
                self.file(
                    f"opt/app/static/{kind}/{number % 30:02d}/asset-{number:04d}", _log_size(rng, 2 << 10, 1 << 20)
                )
            )
        return layer

    def cleanup(self) -> Layer:
        """Removes whole directories: the docs, the headers, a few Python and npm packages."""
        rng = self.rng
        removed = ["usr/share/doc", "usr/include"]
        removed += [f"usr/lib/python3.11/site-packages/{name}" for name in rng.sample(self.python_packages, 10)]
        top_level = [name for name in self.node_packages if name.count("node_modules") == 1]
        removed += rng.sample(top_level, 25)
        gone = tuple(name + "/" for name in removed)
        self.python_files = [entry for entry in self.python_files if not entry.path.startswith(gone)]
        self.node_files = [entry for entry in self.node_files if not entry.path.startswith(gone)]
        command = "/bin/sh -c rm -rf /usr/share/doc /usr/include && pip uninstall -y ... && npm prune"
        return Layer(command, [Entry(_whiteout(name), "whiteout") for name in sorted(removed)])

    def upgrade(self) -> Layer:
        """Overwrites Python modules, a few libraries and some npm files, and adds new ones."""
        rng = self.rng
        layer = Layer("/bin/sh -c pip install --upgrade pkg000 pkg017 && apt-get install -y --only-upgrade libpkg")
        for old in rng.sample(self.python_files, 1500) + rng.sample(self.node_files, 400):
            layer.entries.append(self.file(old.path, max(1, int(old.size * rng.uniform(0.8, 1.3)))))
        for old in sorted(rng.sample(self.libraries, 12), key=lambda entry: entry.size)[-8:]:
            layer.entries.append(self.file(old.path, old.size + rng.randrange(1 << 16)))
        for number in range(300):
            layer.entries.append(
                self.file(f"app/generated/g{number % 10}/out-{number:03d}.json", _log_size(rng, 50, 20 << 10))
            )
        return layer


def _whiteout(path: str) -> str:
    parent, name = posixpath.split(path)
    return posixpath.join(parent, ".wh." + name)


def _under(root: str, entry: Entry) -> Entry:
    return Entry(f"{root}/{entry.path}", entry.kind, entry.size, entry.link, entry.offset, entry.mode)


class _PoolReader:
    """`size` bytes of the random pool from `offset` on, wrapping around: a file's content."""

    def __init__(self, pool: bytes, offset: int, size: int) -> None:
        self.pool = memoryview(pool)
        self.offset = offset
        self.left = size

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        pieces = []
        while size:
            piece = self.pool[self.offset : self.offset + size]
            pieces.append(piece)
            self.offset = (self.offset + len(piece)) % len(self.pool)
            size -= len(piece)
        return b"".join(pieces)


class _HashingWriter:
    """A file that hashes and counts what goes through it."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.target.write(data)


@dataclass(frozen=True)
class Written:
    """A layer tar on disk."""

    path: Path
    diff_id: str
    size: int


def _tar_info(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mtime = EPOCH
    info.mode = entry.mode
    info.uname = info.gname = "root"
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, entry.link
    elif entry.kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, entry.link
    elif entry.kind == "whiteout":
        info.mode = 0o600
    else:
        info.size = entry.size
    return info


def _parents(path: str) -> Iterator[str]:
    parent = posixpath.dirname(path)
    if parent:
        yield from _parents(parent)
        yield parent


def write_layer(layer: Layer, target: Path, pool: bytes, busybox: Path) -> Written:
    """Writes the layer tar as docker would: every entry's parent directories come first."""
    with target.open("wb") as raw:
        writer = _HashingWriter(raw)
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFFER) as tar:
            written: set[str] = set()
            for entry in layer.entries:
                for parent in _parents(entry.path):
                    if parent not in written:
                        written.add(parent)
                        tar.addfile(_tar_info(Entry(parent, "dir", mode=0o755)))
                if entry.kind == "dir":
                    if entry.path not in written:
                        written.add(entry.path)
                        tar.addfile(_tar_info(entry))
                elif entry.kind == "file" and entry.path == "bin/busybox":
                    with busybox.open("rb") as content:
                        tar.addfile(_tar_info(entry), content)
                elif entry.kind == "file":
                    tar.addfile(_tar_info(entry), _PoolReader(pool, entry.offset, entry.size))
                else:
                    tar.addfile(_tar_info(entry))
    digest = writer.digest.hexdigest()
    return Written(path=target, diff_id=f"sha256:{digest}", size=writer.size)


@dataclass
class Counts:
    """What the layers hold: tar entries written (directories included, whiteouts not), files
    among them (not directories), whiteouts, and what the final filesystem shows."""

    entries: int = 0
    files: int = 0
    whiteouts: int = 0
    final_files: int = 0
    final_bytes: int = 0

    def labels(self) -> dict[str, str]:
        return {f"{LABEL_PREFIX}{name}": str(value) for name, value in vars(self).items()}


def count(layers: Sequence[Layer]) -> Counts:
    """Counts the layers' entries and stacks them the way an overlay mount would."""
    counts = Counts()
    final: dict[str, Entry] = {}
    for layer in layers:
        dirs: set[str] = set()
        for entry in layer.entries:
            dirs.update(_parents(entry.path))
            if entry.kind == "whiteout":
                counts.whiteouts += 1
                parent, name = posixpath.split(entry.path)
                gone = posixpath.join(parent, name.removeprefix(".wh."))
                for path in [path for path in final if path == gone or path.startswith(gone + "/")]:
                    del final[path]
            elif entry.kind == "dir":
                dirs.add(entry.path)
            else:
                counts.files += 1
                final[entry.path] = entry
        counts.entries += len(dirs)
        for parent in dirs:
            final.setdefault(parent, Entry(parent, "dir"))
    counts.entries += counts.files
    files = [entry for entry in final.values() if entry.kind != "dir"]
    counts.final_files = len(files)
    counts.final_bytes = sum(entry.size for entry in files if entry.kind == "file")
    return counts


def _config(layers: Sequence[Layer], written: Sequence[Written], counts: Counts, architecture: str) -> bytes:
    created = datetime.fromtimestamp(EPOCH, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    history = [{"created": created, "created_by": layer.created_by} for layer in layers]
    # Metadata-only steps, as a Dockerfile makes them: history entries without a layer.
    for position, created_by in ((1, "ENV PATH=/usr/local/bin:/usr/bin:/bin"), (4, "WORKDIR /app")):
        history.insert(
            position, {"created": created, "created_by": f"/bin/sh -c #(nop) {created_by}", "empty_layer": True}
        )
    history.append({"created": created, "created_by": '/bin/sh -c #(nop)  CMD ["/bin/sh"]', "empty_layer": True})
    config = {
        "architecture": architecture,
        "os": "linux",
        "created": created,
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
            "Cmd": ["/bin/sh"],
            "WorkingDir": "/app",
            "Labels": counts.labels(),
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in written]},
        "history": history,
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = EPOCH
    archive.addfile(info, io.BytesIO(data))


def _stream_archive(target: BinaryIO, written: Sequence[Written], config: bytes) -> None:
    """A docker-archive (the `docker save` layout) of the image, written as a stream."""
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    manifest = [
        {
            "Config": config_name,
            "RepoTags": [IMAGE],
            "Layers": [f"{layer.diff_id.removeprefix('sha256:')}/layer.tar" for layer in written],
        }
    ]
    with tarfile.open(fileobj=target, mode="w|", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFFER) as archive:
        _add_bytes(archive, config_name, config)
        for layer, name in zip(written, manifest[0]["Layers"], strict=True):
            with layer.path.open("rb") as content:
                info = tarfile.TarInfo(name)
                info.size = layer.size
                info.mtime = EPOCH
                archive.addfile(info, content)
        _add_bytes(archive, "manifest.json", json.dumps(manifest).encode())


def load(api: docker.APIClient, written: Sequence[Written], config: bytes) -> None:
    """Streams the archive into `docker load` through a pipe: nothing of it is held in memory."""
    read_fd, write_fd = os.pipe()
    failures: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as pipe:
                _stream_archive(pipe, written, config)
        except BaseException as error:  # re-raised below, after the load has ended
            failures.append(error)

    producer = threading.Thread(target=produce, name="archive-writer", daemon=True)
    producer.start()
    with os.fdopen(read_fd, "rb") as pipe:
        chunks: Iterable[bytes] = iter(lambda: pipe.read(COPY_BUFFER), b"")
        for line in api.load_image(chunks):
            if isinstance(line, dict) and line.get("error"):
                raise RuntimeError(f"docker load failed: {line['error']}")
    producer.join()
    if failures:
        raise RuntimeError("writing the archive failed") from failures[0]


def build(api: docker.APIClient, busybox: Path) -> dict[str, float]:
    """Generates the layers into a scratch directory and loads the image. Returns step timings."""
    seconds: dict[str, float] = {}
    started = time.monotonic()
    layers = _Planner(busybox.stat().st_size).layers()
    counts = count(layers)
    seconds["plan"] = time.monotonic() - started
    pool = random.Random(SEED).randbytes(POOL_BYTES)
    with tempfile.TemporaryDirectory(prefix="dockerscope-big-") as scratch:
        started = time.monotonic()
        written = [
            write_layer(layer, Path(scratch, f"layer-{number}.tar"), pool, busybox)
            for number, layer in enumerate(layers)
        ]
        seconds["write layers"] = time.monotonic() - started
        started = time.monotonic()
        load(api, written, _config(layers, written, counts, str(api.version().get("Arch") or "amd64")))
        seconds["docker load"] = time.monotonic() - started
    return seconds


def connect() -> docker.APIClient:
    """A low-level client for the daemon DOCKER_HOST names."""
    return docker.APIClient(version="auto", timeout=600, **kwargs_from_env())


def describe(image: dict) -> str:
    """The image's size, layers and the counts its labels carry."""
    labels = (image.get("Config") or {}).get("Labels") or {}

    def label(name: str) -> int:
        return int(labels.get(LABEL_PREFIX + name, 0))

    return (
        f"{IMAGE} {image['Id'][:19]}: size {image['Size'] / 1e9:.2f} GB ({image['Size']:,} bytes), "
        f"{len(image['RootFS']['Layers'])} layers; entries written {label('entries'):,} "
        f"(files {label('files'):,}, whiteouts {label('whiteouts'):,}); final filesystem "
        f"{label('final_files'):,} files, {label('final_bytes') / 1e9:.2f} GB"
    )


PLUS_IMAGE = "dockerscope-bench/big-plus:1"


def build_plus(api: docker.APIClient) -> None:
    """An image built on the big one, for the comparisons: three files copied in and one `ENV`
    (the legacy builder, no network)."""
    rng = random.Random(SEED + 1)
    files = {
        "one": b"a\n",
        "two": rng.randbytes(50_000),
        "three": "".join(f"{number}\n" for number in range(1, 20_001)).encode(),
        "Dockerfile": f"FROM {IMAGE}\nCOPY one two three /opt/extra/\nENV EXTRA=1\n".encode(),
    }
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        for name, data in files.items():
            _add_bytes(archive, name, data)
    context.seek(0)
    for line in api.build(
        fileobj=context, custom_context=True, tag=PLUS_IMAGE, network_mode="none", rm=True, forcerm=True, decode=True
    ):
        if "error" in line:
            raise RuntimeError(line["error"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rebuild", action="store_true", help=f"remove {IMAGE} first if it exists and load it again")
    parser.add_argument("--busybox", type=Path, default=Path(os.environ.get("BUSYBOX", "/bin/busybox")))
    parser.add_argument("--plus", action="store_true", help=f"also build {PLUS_IMAGE} on it (for the comparisons)")
    args = parser.parse_args(argv)
    if not args.busybox.is_file():
        parser.error(f"no static busybox at {args.busybox} (apt-get install busybox-static, or --busybox PATH)")
    api = connect()
    try:
        try:
            existing = api.inspect_image(IMAGE)
        except docker.errors.ImageNotFound:
            existing = None
        if existing is not None and not args.rebuild:
            print(f"already there (--rebuild to build again): {describe(existing)}")
        else:
            if existing is not None:
                api.remove_image(IMAGE)
            seconds = build(api, args.busybox)
            print(describe(api.inspect_image(IMAGE)))
            print("built in " + ", ".join(f"{step} {value:.1f}s" for step, value in seconds.items()))
        if args.plus:
            build_plus(api)
            print(f"{PLUS_IMAGE} built on it")
        return 0
    finally:
        api.close()


if __name__ == "__main__":
    sys.exit(main())
