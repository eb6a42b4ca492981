#!/usr/bin/env bash
# The live-updates-at-scale benchmarks in one command: makes sure the venv has dockerscope and
# pyte, starts a private loopback-only dockerd, runs benchmarks/live.py against it and always
# stops the daemon. Extra arguments go to live.py, e.g. --scales 300x150 --idle-seconds 10.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${DOCKERSCOPE_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c "import dockerscope, docker, pyte" >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]" pyte
fi

# shellcheck source=scripts/dockerd-private.sh
source scripts/dockerd-private.sh
trap stop_private_dockerd EXIT
start_private_dockerd

# live.py runs in the background so a signal to this script reaches it at once (as SIGTERM, which
# it turns into a clean exit that kills every app it started), before the daemon is stopped.
"$venv/bin/python" benchmarks/live.py --dockerd-pidfile "$D/pid" "$@" &
bench=$!
trap 'kill -TERM "$bench" 2>/dev/null || true; wait "$bench" || true; exit 130' INT
trap 'kill -TERM "$bench" 2>/dev/null || true; wait "$bench" || true; exit 143' TERM
status=0
wait "$bench" || status=$?
exit "$status"
