#!/usr/bin/env bash
# Build the fixture images and containers the tests and screenshots use, on the daemon DOCKER_HOST
# names. Nothing is pulled: every image starts FROM scratch with the static busybox, and every build
# and container runs with --network none. Re-running replaces the fixture containers.
set -euo pipefail

busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "build-fixtures: no static busybox at $busybox (apt-get install busybox-static)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() { # build TAG DIR [extra docker build args...]
    local tag=$1 dir=$2; shift 2
    DOCKER_BUILDKIT=0 docker build --network none -t "$tag" "$@" "$dir" >"$work/build.log" 2>&1 \
        || { cat "$work/build.log" >&2; exit 1; }
}

# Base image: busybox and its applets, two layers.
mkdir -p "$work/base"
cp "$busybox" "$work/base/busybox"
cat > "$work/base/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
CMD ["/bin/sh"]
DOCKERFILE
build dockerscope-test/base:1 "$work/base"

# Application image on the base: real layers, metadata-only steps, a zero-size WORKDIR layer
# and a zero-size RUN that only deletes.
mkdir -p "$work/app"
head -c 300000 /dev/urandom > "$work/app/data.bin"
printf 'hello from dockerscope\n' > "$work/app/hello.txt"
cat > "$work/app/Dockerfile" <<'DOCKERFILE'
FROM dockerscope-test/base:1
ENV APP_HOME=/app GREETING=hello
WORKDIR /app
COPY hello.txt /app/hello.txt
COPY data.bin /app/data.bin
RUN mkdir -p /app/cache /tmp && echo built > /app/cache/stamp && echo scratch > /tmp/scratch
RUN rm -f /tmp/scratch
LABEL org.opencontainers.image.title="dockerscope fixture app"
EXPOSE 8080
USER 1000
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/hello.txt"]
DOCKERFILE
build dockerscope-test/app:1 "$work/app" \
    --label "hostile.markup=[bold red]alarm[/bold red] [link=https://example.invalid]click[/link]" \
    --label "hostile.escape=$(printf 'before\033[2J\033]0;pwned\007after')"
docker tag dockerscope-test/app:1 dockerscope-test/app:latest

# A second image on the same base: shares the base layers with the app.
mkdir -p "$work/tool"
cat > "$work/tool/Dockerfile" <<'DOCKERFILE'
FROM dockerscope-test/base:1
RUN echo tool > /tool.txt
CMD ["cat", "/tool.txt"]
DOCKERFILE
build dockerscope-test/tool:1 "$work/tool"

# Huge metadata: a 1 MB label and 10,000 environment variables. A Dockerfile line may not pass
# 64 KiB, so the config goes straight to the Engine API's commit endpoint.
huge_container=$(docker create --network none dockerscope-test/base:1)
{
    printf '{"Env": ["PATH=/bin"'
    for n in $(seq 1 10000); do printf ',"VAR_%05d=value-%d"' "$n" "$n"; done
    printf '], "Labels": {"huge.label": "%s"}, "Cmd": ["/bin/sh"]}' "$(head -c 750000 /dev/urandom | base64 -w0)"
} > "$work/huge.json"
curl -fsS --unix-socket "${DOCKER_HOST#unix://}" -H 'Content-Type: application/json' \
    -X POST --data-binary @"$work/huge.json" \
    "http://localhost/commit?container=$huge_container&repo=dockerscope-test/huge&tag=1&comment=huge+metadata" >/dev/null
docker rm "$huge_container" >/dev/null

# A dangling image: build a tag twice with different content; the first build loses its tag.
mkdir -p "$work/dangling"
for round in first second; do
    cat > "$work/dangling/Dockerfile" <<DOCKERFILE
FROM dockerscope-test/base:1
RUN echo $round > /round.txt
DOCKERFILE
    build dockerscope-test/rebuilt:1 "$work/dangling"
done

# An imported image: one layer, history entry without an instruction.
mkdir -p "$work/rootfs/etc"
printf 'imported\n' > "$work/rootfs/etc/imported.txt"
tar -C "$work/rootfs" -cf - . | docker import - dockerscope-test/imported:1 >/dev/null

# A chain of images built on each other, for base image detection: chain-c's base is chain-b,
# chain-b's is chain-a, chain-a's is the base image.
parent=dockerscope-test/base:1
for link in a b c; do
    mkdir -p "$work/chain-$link"
    cat > "$work/chain-$link/Dockerfile" <<DOCKERFILE
FROM $parent
RUN echo $link > /chain-$link.txt
DOCKERFILE
    build "dockerscope-test/chain-$link:1" "$work/chain-$link"
    parent=dockerscope-test/chain-$link:1
done

# Wasted space: a layer adds files that later layers overwrite or delete (a 1 MiB file, a whole
# directory), and a directory removed and made again in one step, which makes it opaque.
mkdir -p "$work/waste"
cat > "$work/waste/Dockerfile" <<'DOCKERFILE'
FROM dockerscope-test/base:1
RUN mkdir -p /data/keep /data/gone/deep /opq/old && head -c 1048576 /dev/zero > /data/big.bin \
    && echo v1 > /data/keep/config && echo old > /opq/old/file && echo x > /data/gone/deep/x \
    && ln /data/keep/config /data/keep/config.link && ln -s keep/config /data/config.symlink
RUN echo version-two > /data/keep/config && rm /data/big.bin && rm -rf /data/gone
RUN rm -rf /opq && mkdir -p /opq/new && echo fresh > /opq/new/file && chmod 0750 /opq/new \
    && chown 1000:1000 /opq/new/file
DOCKERFILE
build dockerscope-test/waste:1 "$work/waste"

# Containers in every state, and one whose writable layer added, changed and deleted files.
# shellcheck source=scripts/fixture-containers.sh
source "$(dirname "$0")/fixture-containers.sh"
make_fixture_containers docker dockerscope-test

docker images
docker ps -a --filter name=dockerscope-test-
