#!/usr/bin/env bash
# The fixture containers, the same on every engine: one running, one paused, one exited with 3,
# one created, and one whose writable layer added, changed and deleted files. All off the network.
# Usage: source scripts/fixture-containers.sh; make_fixture_containers CLI PREFIX
#   CLI: the engine's command (docker, or podman_cli from scripts/podman-private.sh)
#   PREFIX: the containers' names start with it (dockerscope-test, dockerscope-podman)

make_fixture_containers() {
    local cli=$1 prefix=$2
    "$cli" rm -f "$prefix-running" "$prefix-paused" "$prefix-exited" "$prefix-created" "$prefix-changes" \
        >/dev/null 2>&1 || true
    _fixture_run "$cli" "$prefix-running" dockerscope-test/tool:1 sleep 100000
    _fixture_run "$cli" "$prefix-paused" dockerscope-test/tool:1 sleep 100000
    "$cli" pause "$prefix-paused" >/dev/null
    _fixture_run "$cli" "$prefix-exited" dockerscope-test/tool:1 sh -c 'exit 3'
    _fixture_exited "$cli" "$prefix-exited" 3
    "$cli" create --network none --name "$prefix-created" dockerscope-test/tool:1 >/dev/null
    # The app image runs as user 1000 with an `sh -c` entrypoint: run as root with a plain shell.
    _fixture_run "$cli" "$prefix-changes" --user 0 --entrypoint /bin/sh dockerscope-test/app:1 \
        -c 'echo new > /app/new.txt; echo more >> /app/hello.txt; rm /app/data.bin; mkdir /app/newdir'
    _fixture_exited "$cli" "$prefix-changes" 0
}

_fixture_run() { # CLI NAME [run args...]: start a container off the network, detached
    local cli=$1 name=$2
    shift 2
    "$cli" run -d --network none --name "$name" "$@" >/dev/null
}

_fixture_exited() { # CLI NAME CODE: wait for the container to end and check its exit code
    local code
    code=$("$1" wait "$2")
    [ "$code" = "$3" ] || { echo "fixtures: $2 exited with $code, not $3" >&2; "$1" logs "$2" >&2; return 1; }
}
