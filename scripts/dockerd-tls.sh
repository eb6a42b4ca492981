#!/usr/bin/env bash
# Start a second private dockerd that listens on tcp://127.0.0.1:PORT with --tlsverify (and on a unix
# socket of its own), with a CA, a server and a client certificate made here by openssl, for the
# tcp+TLS tests. Loopback only, as scripts/dockerd-private.sh. Two small fixture images are copied
# over from the main private dockerd (DOCKER_HOST) with docker save | docker load.
# Usage: source scripts/dockerd-tls.sh; start_tls_dockerd   (stop it with stop_tls_dockerd)
# Sets, for tests/conftest.py:
#   DOCKERSCOPE_TEST_TLS_HOST   tcp://127.0.0.1:PORT
#   DOCKERSCOPE_TEST_TLS_CERTS  the client's ca.pem, cert.pem, key.pem (a DOCKER_CERT_PATH); beside
#                               it, other-ca/ holds a CA that did not sign the daemon's certificate
# Fails, never skips, when the daemon does not answer within DOCKERD_WAIT seconds.

# shellcheck source=scripts/wait-for.sh
source "$(dirname "${BASH_SOURCE[0]}")/wait-for.sh"

TLS_IMAGES=(dockerscope-test/base:1 dockerscope-test/app:1)

_tls_certificates() {
    local dir=$1
    mkdir -p "$dir/client" "$dir/other-ca"
    (
        cd "$dir" || exit 1
        openssl req -x509 -new -newkey rsa:2048 -nodes -days 2 -subj "/CN=dockerscope test CA" \
            -keyout ca-key.pem -out ca.pem 2>/dev/null
        openssl req -new -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
            -keyout server-key.pem -out server.csr 2>/dev/null
        printf 'subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
            -extfile server.ext -out server-cert.pem 2>/dev/null
        openssl req -new -newkey rsa:2048 -nodes -subj "/CN=dockerscope test client" \
            -keyout client/key.pem -out client.csr 2>/dev/null
        printf 'extendedKeyUsage = clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
            -extfile client.ext -out client/cert.pem 2>/dev/null
        cp ca.pem client/ca.pem
        # A CA of its own, with a client certificate it signed: right files, wrong CA.
        openssl req -x509 -new -newkey rsa:2048 -nodes -days 2 -subj "/CN=dockerscope other CA" \
            -keyout other-ca/ca-key.pem -out other-ca/ca.pem 2>/dev/null
        openssl req -new -newkey rsa:2048 -nodes -subj "/CN=dockerscope other client" \
            -keyout other-ca/key.pem -out other-ca/client.csr 2>/dev/null
        openssl x509 -req -in other-ca/client.csr -CA other-ca/ca.pem -CAkey other-ca/ca-key.pem \
            -CAcreateserial -days 2 -extfile client.ext -out other-ca/cert.pem 2>/dev/null
    )
    [ -s "$dir/client/cert.pem" ] && [ -s "$dir/other-ca/cert.pem" ]
}

start_tls_dockerd() {
    local source_host=${DOCKER_HOST:-}
    TLS_D=$(mktemp -d /tmp/dockerscope-tls.XXXXXX)
    if ! _tls_certificates "$TLS_D/certs"; then
        echo "dockerd-tls.sh: openssl could not make the certificates" >&2
        return 1
    fi
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    dockerd --data-root "$TLS_D/data" --exec-root "$TLS_D/exec" --pidfile "$TLS_D/pid" \
        --host "unix://$TLS_D/docker.sock" --host "tcp://127.0.0.1:$port" \
        --tlsverify --tlscacert "$TLS_D/certs/ca.pem" --tlscert "$TLS_D/certs/server-cert.pem" \
        --tlskey "$TLS_D/certs/server-key.pem" \
        --bridge=none --iptables=false --ip-masq=false --ip-forward=false >"$TLS_D/dockerd.log" 2>&1 &
    export DOCKERSCOPE_TEST_TLS_HOST="tcp://127.0.0.1:$port"
    export DOCKERSCOPE_TEST_TLS_CERTS="$TLS_D/certs/client"
    wait_for "${DOCKERD_WAIT:-60}" "the TLS dockerd at $DOCKERSCOPE_TEST_TLS_HOST" "$TLS_D/dockerd.log" "" \
        env DOCKER_HOST="$DOCKERSCOPE_TEST_TLS_HOST" DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH="$DOCKERSCOPE_TEST_TLS_CERTS" \
        docker version || return 1
    if [ -n "$source_host" ]; then
        DOCKER_HOST=$source_host docker save "${TLS_IMAGES[@]}" | DOCKER_HOST="unix://$TLS_D/docker.sock" docker load -q
    fi
}

stop_tls_dockerd() {
    [ -n "${TLS_D:-}" ] || return 0
    if [ -f "$TLS_D/pid" ]; then
        local pid
        pid=$(cat "$TLS_D/pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    umount -R "$TLS_D/data" "$TLS_D/exec" 2>/dev/null || true
    rm -rf "$TLS_D" 2>/dev/null || true
}
