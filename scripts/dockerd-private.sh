#!/usr/bin/env bash
# Start a private dockerd that can only use loopback (no bridge, no iptables, no forwarding).
# Usage: source scripts/dockerd-private.sh   (sets D and DOCKER_HOST; stop it with stop_private_dockerd)
# Fails, never skips, when the daemon does not answer within DOCKERD_WAIT seconds.

# shellcheck source=scripts/wait-for.sh
source "$(dirname "${BASH_SOURCE[0]}")/wait-for.sh"

start_private_dockerd() {
    D=$(mktemp -d /tmp/dockerscope-dockerd.XXXXXX)
    dockerd --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/pid" \
        --host "unix://$D/docker.sock" --bridge=none --iptables=false --ip-masq=false \
        --ip-forward=false >"$D/dockerd.log" 2>&1 &
    export DOCKER_HOST="unix://$D/docker.sock"
    wait_for "${DOCKERD_WAIT:-60}" "dockerd at $DOCKER_HOST" "$D/dockerd.log" "" docker version
}

stop_private_dockerd() {
    [ -n "${D:-}" ] || return 0
    if [ -f "$D/pid" ]; then
        local pid containers
        # Killed first: a daemon stops its running containers with their 10 s stop timeout (the
        # fixtures' `sleep` ignores SIGTERM), which took 11 s of every run.
        containers=$(docker -H "unix://$D/docker.sock" ps -aq 2>/dev/null || true)
        # shellcheck disable=SC2086  # one argument per container id
        [ -z "$containers" ] || docker -H "unix://$D/docker.sock" rm -f $containers >/dev/null 2>&1 || true
        pid=$(cat "$D/pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    umount -R "$D/data" "$D/exec" 2>/dev/null || true
    rm -rf "$D" 2>/dev/null || true
}
