#!/usr/bin/env bash
# Regenerate screenshots/: a private dockerd and a private Podman service, the fixture images in
# both, then scripts/screenshots.py.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DOCKERSCOPE_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
# shellcheck source=scripts/dockerd-private.sh
source scripts/dockerd-private.sh
# shellcheck source=scripts/podman-private.sh
source scripts/podman-private.sh
trap 'stop_private_podman; stop_private_dockerd' EXIT
start_private_dockerd
bash scripts/build-fixtures.sh >/dev/null
start_private_podman
bash scripts/build-podman-fixtures.sh >/dev/null
"$venv/bin/python" scripts/screenshots.py screenshots
