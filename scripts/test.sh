#!/usr/bin/env bash
# The whole test suite: installs what it needs, starts a private dockerd, a private Podman service,
# an sshd and a TLS dockerd on loopback, builds the fixture images, runs ruff, mypy and pytest, and
# stops them all.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for package in docker.io podman busybox-static tmux skopeo openssh-server openssl; do
    dpkg -s "$package" >/dev/null 2>&1 || need_apt+=("$package")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "scripts/test.sh: missing ${need_apt[*]}; run as root or install them" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The virtualenv is made while the daemons start (which mostly waits on the daemons; nothing there
# needs it).
venv=${DOCKERSCOPE_VENV:-.venv}
venv_log=$(mktemp)
(
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
) >"$venv_log" 2>&1 &
venv_pid=$!

# shellcheck source=scripts/dockerd-private.sh
source scripts/dockerd-private.sh
# shellcheck source=scripts/podman-private.sh
source scripts/podman-private.sh
# shellcheck source=scripts/sshd-private.sh
source scripts/sshd-private.sh
# shellcheck source=scripts/dockerd-tls.sh
source scripts/dockerd-tls.sh
lint_log=$(mktemp)
trap 'stop_tls_dockerd; stop_private_sshd; stop_private_podman; stop_private_dockerd; rm -f "$venv_log" "$lint_log" "${podman_log:-}"' EXIT
start_private_dockerd
echo "private dockerd at $DOCKER_HOST: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
bash scripts/build-fixtures.sh
start_private_podman  # exports DOCKERSCOPE_PODMAN_HOST for pytest
echo "private Podman at $DOCKERSCOPE_PODMAN_HOST: $(podman_cli version --format '{{.Server.Version}}')"
podman_log=$(mktemp)
bash scripts/build-podman-fixtures.sh >"$podman_log" 2>&1 &
podman_fixtures_pid=$!
# The remote daemons (tests/test_remote.py): sshd on loopback leading to the private dockerd, and
# a second dockerd on tcp://127.0.0.1 with --tlsverify and two of the fixture images.
start_private_sshd
echo "private sshd at $DOCKERSCOPE_TEST_SSH_HOST"
start_tls_dockerd
echo "TLS dockerd at $DOCKERSCOPE_TEST_TLS_HOST"

# joined PID LOG WHAT: wait for a background job, show its output, and end the run if it failed.
joined() {
    local status=0
    wait "$1" || status=$?
    cat "$2"
    if [ "$status" -ne 0 ]; then
        echo "$3 failed" >&2
        exit 1
    fi
}
joined "$podman_fixtures_pid" "$podman_log" "scripts/build-podman-fixtures.sh"
joined "$venv_pid" "$venv_log" "making the virtualenv"

# Lint and types run beside the tests (which mostly wait: on a daemon, a terminal, a timer).
(
    "$venv/bin/ruff" check .
    "$venv/bin/ruff" format --check .
    "$venv/bin/mypy"                                  # the package, default checks
    "$venv/bin/mypy" --strict tui/dockerscope/service # the service layer, strict
) >"$lint_log" 2>&1 &
lint_pid=$!

# Three pytest-xdist workers: the tests that change the dockerd run on one, in order
# (tests/conftest.py groups them), those that only read it, the Podman tests and the watcher's
# sleeping tests each in a group of their own, the rest spread over all. Most tests spend their
# time waiting (on a daemon, a terminal, a timer), so a third worker on two cores overlaps that.
tests_ok=0
"$venv/bin/python" -m pytest -n 3 --dist loadgroup "$@" || tests_ok=$?

joined "$lint_pid" "$lint_log" "ruff or mypy"
exit "$tests_ok"
