#!/usr/bin/env bash
# The whole test suite: installs what it needs, starts a private dockerd and a private Podman
# service, builds the fixture images in both, runs ruff, mypy and pytest, and stops both daemons.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for package in docker.io podman busybox-static tmux skopeo; do
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

venv=${DOCKERSCOPE_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"

# shellcheck source=scripts/dockerd-private.sh
source scripts/dockerd-private.sh
# shellcheck source=scripts/podman-private.sh
source scripts/podman-private.sh
trap 'stop_private_podman; stop_private_dockerd' EXIT
start_private_dockerd
echo "private dockerd at $DOCKER_HOST: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
bash scripts/build-fixtures.sh
start_private_podman  # exports DOCKERSCOPE_PODMAN_HOST for pytest
echo "private Podman at $DOCKERSCOPE_PODMAN_HOST: $(podman_cli version --format '{{.Server.Version}}')"
bash scripts/build-podman-fixtures.sh

"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
"$venv/bin/mypy"                                   # the package, default checks
"$venv/bin/mypy" --strict tui/dockerscope/service  # the service layer, strict
# Two pytest-xdist workers: the daemon tests all run on one (tests/conftest.py groups them), the
# rest are spread over both. Most tests spend their time waiting (on the daemon, a terminal, a
# timer), and two workers overlap that waiting.
"$venv/bin/python" -m pytest -n 2 --dist loadgroup "$@"
