#!/usr/bin/env bash
# Copy the fixture images from the private dockerd (DOCKER_HOST) into the private Podman service
# (scripts/podman-private.sh, which must be sourced and started first: P and the CONTAINERS_*
# variables name its storage), and make containers in several states there. Nothing is pulled;
# every container runs with --network none. Re-running replaces the fixture containers.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/podman-private.sh
source scripts/podman-private.sh
[ -n "${P:-}" ] && [ -d "$P/root" ] || { echo "build-podman-fixtures: start_private_podman first (P is unset)" >&2; exit 1; }

# The images tests/conftest.py calls FIXTURE_IMAGES, and the app's second tag.
mapfile -t images < <(python3 - <<'PYTHON'
import ast
tree = ast.parse(open("tests/conftest.py").read())
names = {
    node.targets[0].id: node.value.value
    for node in tree.body
    if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.targets[0], ast.Name)
}
fixtures = next(node for node in tree.body if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "FIXTURE_IMAGES")
for element in fixtures.value.elts:
    print(names[element.id])
PYTHON
)
[ ${#images[@]} -gt 0 ] || { echo "build-podman-fixtures: no FIXTURE_IMAGES found in tests/conftest.py" >&2; exit 1; }
docker save "${images[@]}" dockerscope-test/app:latest | podman_cli load -q >/dev/null

# An image Podman built itself (buildah's history: `/bin/sh -c` before exec-form RUN arrays, a
# `FROM` comment, WORKDIR without a layer).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'hello from podman\n' > "$work/hello.txt"
cat > "$work/Containerfile" <<'CONTAINERFILE'
FROM localhost/dockerscope-test/base:1
ENV APP=podman
WORKDIR /app
COPY hello.txt /app/hello.txt
RUN ["/bin/busybox", "touch", "/app/touched"]
RUN echo shell > /app/shell.txt && echo scratch > /app/scratch.txt
RUN rm /app/scratch.txt
CMD ["cat", "/app/hello.txt"]
CONTAINERFILE
podman_cli build --network none -t dockerscope-test/podman-built:1 "$work" >"$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; exit 1; }

# The same containers as on the dockerd (scripts/fixture-containers.sh).
# shellcheck source=scripts/fixture-containers.sh
source "$(dirname "$0")/fixture-containers.sh"
make_fixture_containers podman_cli dockerscope-podman

podman_cli images
podman_cli ps -a
