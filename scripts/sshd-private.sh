#!/usr/bin/env bash
# Start a private sshd on 127.0.0.1 (Debian's openssh-server) whose keys lead to the private dockerd,
# for the ssh:// tests. Needs root (sshd's privilege separation) and DOCKER_HOST set to the private
# dockerd's unix socket (source scripts/dockerd-private.sh first).
# Usage: source scripts/sshd-private.sh; start_private_sshd   (stop it with stop_private_sshd)
# Sets, for tests/conftest.py:
#   DOCKERSCOPE_TEST_SSH_HOST  ssh://root@127.0.0.1:PORT
#   DOCKERSCOPE_TEST_SSH_DIR   the directory holding bin/ssh (a wrapper that adds `-F` with the
#                              test's client config: its key and known_hosts, never ~/.ssh) and
#                              the keys: key (leads to the daemon), key-nodocker (PATH without
#                              docker), key-nodaemon (a DOCKER_HOST nobody listens on), key-stranger
#                              (not authorized).
# Fails, never skips, when sshd does not answer within SSHD_WAIT seconds.

# shellcheck source=scripts/wait-for.sh
source "$(dirname "${BASH_SOURCE[0]}")/wait-for.sh"

start_private_sshd() {
    case "${DOCKER_HOST:-}" in
    unix://*) ;;
    *)
        echo "sshd-private.sh: DOCKER_HOST must name the private dockerd's unix socket" >&2
        return 1
        ;;
    esac
    SSHD_DIR=$(mktemp -d /tmp/dockerscope-sshd.XXXXXX)
    local dir=$SSHD_DIR port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    ssh-keygen -q -t ed25519 -N '' -C dockerscope-test-host -f "$dir/host_key"
    for name in key key-nodocker key-nodaemon key-stranger; do
        ssh-keygen -q -t ed25519 -N '' -C "dockerscope-test-$name" -f "$dir/$name"
    done
    mkdir -p "$dir/empty"
    {
        echo "environment=\"DOCKER_HOST=$DOCKER_HOST\" $(cat "$dir/key.pub")"
        echo "environment=\"PATH=$dir/empty\" $(cat "$dir/key-nodocker.pub")"
        echo "environment=\"DOCKER_HOST=unix://$dir/nobody.sock\" $(cat "$dir/key-nodaemon.pub")"
    } >"$dir/authorized_keys"
    chmod 600 "$dir/authorized_keys"
    cat >"$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1:$port
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitUserEnvironment yes
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
EOF
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
    cat >"$dir/ssh_config" <<EOF
Host *
    IdentityFile \${DOCKERSCOPE_TEST_SSH_KEY}
    IdentitiesOnly yes
    IdentityAgent none
    UserKnownHostsFile \${DOCKERSCOPE_TEST_SSH_KNOWN_HOSTS}
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    UpdateHostKeys no
EOF
    mkdir -p "$dir/bin"
    cat >"$dir/bin/ssh" <<EOF
#!/bin/sh
# The test's ssh: its own client config, key and known_hosts (a test may pick another key or
# known_hosts through these variables), never the user's ~/.ssh.
export DOCKERSCOPE_TEST_SSH_KEY="\${DOCKERSCOPE_TEST_SSH_KEY:-$dir/key}"
export DOCKERSCOPE_TEST_SSH_KNOWN_HOSTS="\${DOCKERSCOPE_TEST_SSH_KNOWN_HOSTS:-$dir/known_hosts}"
exec /usr/bin/ssh -F "$dir/ssh_config" "\$@"
EOF
    chmod 755 "$dir/bin/ssh"
    mkdir -p /run/sshd
    /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
    export DOCKERSCOPE_TEST_SSH_HOST="ssh://root@127.0.0.1:$port"
    export DOCKERSCOPE_TEST_SSH_DIR="$dir"
    wait_for "${SSHD_WAIT:-30}" "sshd (to the daemon) at 127.0.0.1:$port" "$dir/sshd.log" "" \
        "$dir/bin/ssh" -o BatchMode=yes -p "$port" root@127.0.0.1 docker version
}

stop_private_sshd() {
    [ -n "${SSHD_DIR:-}" ] || return 0
    if [ -f "$SSHD_DIR/sshd.pid" ]; then
        kill "$(cat "$SSHD_DIR/sshd.pid")" 2>/dev/null || true
    fi
    rm -rf "$SSHD_DIR" 2>/dev/null || true
}
