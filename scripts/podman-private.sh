#!/usr/bin/env bash
# Start a private Podman API service with storage of its own and no network.
# Usage: source scripts/podman-private.sh   (sets P, DOCKERSCOPE_PODMAN_HOST and the CONTAINERS_*
# variables the podman CLI needs to see the same storage; stop it with stop_private_podman)
# Fails, never skips, when the service does not answer within PODMAN_WAIT seconds.
# Containers started in it must use `--network none`: it has no network set up.

# shellcheck source=scripts/wait-for.sh
source "$(dirname "${BASH_SOURCE[0]}")/wait-for.sh"

# podman_cli ARGS...: the podman CLI on the private service's storage.
podman_cli() {
    podman --root "$P/root" --runroot "$P/run" "$@"
}

start_private_podman() {
    P=$(mktemp -d /tmp/dockerscope-podman.XXXXXX)
    export P
    mkdir -p "$P/root" "$P/run" "$P/tmp"
    cat >"$P/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$P/root"
runroot = "$P/run"
CONF
    # Starting a container fails here with "error setting rlimits" unless the default ulimits are
    # emptied; no network: nothing to set up, nothing reachable.
    cat >"$P/containers.conf" <<CONF
[containers]
default_ulimits = []

[network]
default_network = "none"

[engine]
tmp_dir = "$P/tmp"
CONF
    export CONTAINERS_STORAGE_CONF="$P/storage.conf" CONTAINERS_CONF="$P/containers.conf"
    export DOCKERSCOPE_PODMAN_HOST="unix://$P/podman.sock"
    # Not through podman_cli: $! must be podman's own pid, not a subshell's.
    podman --root "$P/root" --runroot "$P/run" system service --time=0 "$DOCKERSCOPE_PODMAN_HOST" \
        >"$P/podman.log" 2>&1 &
    echo $! >"$P/pid"
    wait_for "${PODMAN_WAIT:-60}" "podman at $DOCKERSCOPE_PODMAN_HOST" "$P/podman.log" "$(cat "$P/pid")" \
        curl -fsS --unix-socket "$P/podman.sock" http://localhost/_ping
}

stop_private_podman() {
    [ -n "${P:-}" ] || return 0
    if [ -d "$P/root" ]; then
        # Containers first (their conmon processes outlive the service), then the service.
        podman_cli rm -f -a -t 0 >/dev/null 2>&1 || true
    fi
    if [ -f "$P/pid" ]; then
        local pid
        pid=$(cat "$P/pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    # Every mount left under $P (the storage's own bind mount, layer and shm mounts), deepest
    # first. Not `podman system reset`: it also removes networks outside $P.
    local mount
    awk -v prefix="$P/" 'index($2, prefix) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mount; do
        umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true
    done
    rm -rf "$P" 2>/dev/null || true
    unset DOCKERSCOPE_PODMAN_HOST
}
