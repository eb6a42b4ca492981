#!/usr/bin/env bash
# Build the images and containers of the demo recording (scripts/record-demo.py records them) on
# the daemon DOCKER_HOST names. Nothing is pulled: every image starts FROM scratch with the static
# busybox, every build and container runs with --network none, and every name starts with
# dockerscope-demo. Inputs are fixed (no random bytes, fixed file times), so a re-run hits the build
# cache and gives the same image ids. Prints the untagged image's id last.
# `build-demo.sh --remove NAME...` removes the named containers (the dead one too) and nothing else.
set -euo pipefail

busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "build-demo: no static busybox at $busybox (apt-get install busybox-static)" >&2; exit 1; }

# A container the daemon failed to remove is "dead": one of its files is made immutable. Removing
# containers first lifts that (a re-run, and scripts/record-demo.py when it is done).
remove_containers() { # remove_containers NAME...
    local name upper
    for name in "$@"; do
        upper=$(docker inspect -f '{{.GraphDriver.Data.UpperDir}}' "$name" 2>/dev/null) || continue
        if [ -d "$upper" ]; then chattr -R -i "$upper" 2>/dev/null || true; fi
        docker rm -f "$name" >/dev/null
    done
}
[ "${1:-}" = "--remove" ] && { remove_containers "${@:2}"; exit 0; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() { # build DIR [extra docker build args...]: prints the image id
    local dir=$1; shift
    find "$dir" -exec touch -h -d '2026-01-01 00:00:00 UTC' {} +
    DOCKER_BUILDKIT=0 docker build --network none -q "$@" "$dir" 2>"$work/build.log" \
        || { cat "$work/build.log" >&2; exit 1; }
}

# The base: busybox and its applets, an os-release, a user.
mkdir -p "$work/base/etc"
cp "$busybox" "$work/base/busybox"
printf 'NAME="Demo Linux"\nID=demo\nVERSION_ID=1\n' > "$work/base/etc/os-release"
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' > "$work/base/etc/passwd"
cat > "$work/base/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY etc/ /etc/
ENV PATH=/bin
CMD ["/bin/sh"]
DOCKERFILE
build "$work/base" -t dockerscope-demo/base:1 >/dev/null

# Two images on the base: they share its layers.
mkdir -p "$work/web/site"
printf '<!doctype html>\n<title>demo</title>\n<h1>Hello from the dockerscope demo</h1>\n' > "$work/web/site/index.html"
printf 'listen 8080\nroot /srv/www\n' > "$work/web/httpd.conf"
cat > "$work/web/Dockerfile" <<'DOCKERFILE'
FROM dockerscope-demo/base:1
ENV APP_HOME=/srv/www
WORKDIR /srv/www
COPY site/ /srv/www/
COPY httpd.conf /etc/httpd.conf
RUN mkdir -p /var/log/web /run/web && echo "www:x:1001:1001:web:/srv/www:/bin/false" >> /etc/passwd
LABEL org.opencontainers.image.title="demo web server" org.opencontainers.image.version="1.4.2"
EXPOSE 8080
HEALTHCHECK --interval=30s CMD ["/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/srv/www"]
DOCKERFILE
build "$work/web" -t dockerscope-demo/web:1 >/dev/null
docker tag dockerscope-demo/web:1 dockerscope-demo/web:latest

mkdir -p "$work/worker"
printf '#!/bin/sh\nwhile read -r job; do echo "done: $job"; done\n' > "$work/worker/work.sh"
chmod 0755 "$work/worker/work.sh"
cat > "$work/worker/Dockerfile" <<'DOCKERFILE'
FROM dockerscope-demo/base:1
COPY work.sh /usr/local/bin/work.sh
RUN mkdir -p /var/spool/jobs && echo first-job > /var/spool/jobs/1
LABEL org.opencontainers.image.title="demo worker"
CMD ["/usr/local/bin/work.sh"]
DOCKERFILE
build "$work/worker" -t dockerscope-demo/worker:1 >/dev/null

# Wasted space: a layer writes files that later layers overwrite or delete.
mkdir -p "$work/bloated"
cat > "$work/bloated/Dockerfile" <<'DOCKERFILE'
FROM dockerscope-demo/base:1
RUN mkdir -p /opt/sdk/lib /opt/sdk/docs /var/cache/pkg \
    && head -c 6291456 /dev/zero > /opt/sdk/lib/libsdk.so \
    && head -c 2097152 /dev/zero > /opt/sdk/docs/manual.pdf \
    && head -c 4194304 /dev/zero > /var/cache/pkg/index.db \
    && echo 1.0 > /opt/sdk/VERSION
RUN head -c 6291456 /dev/zero | tr '\0' 'x' > /opt/sdk/lib/libsdk.so && echo 1.1 > /opt/sdk/VERSION
RUN rm -rf /var/cache/pkg /opt/sdk/docs
RUN rm -rf /opt/sdk/lib && mkdir -p /opt/sdk/lib && echo slim > /opt/sdk/lib/README
CMD ["cat", "/opt/sdk/VERSION"]
DOCKERFILE
build "$work/bloated" -t dockerscope-demo/bloated:1 >/dev/null

# Hostile metadata: escape sequences, Rich markup, very long values, in labels, env and a file name.
mkdir -p "$work/hostile"
long=$(printf 'very-long-value-%04d;' $(seq 1 300))
cat > "$work/hostile/Dockerfile" <<'DOCKERFILE'
FROM dockerscope-demo/base:1
ARG ESCAPE
ARG LONG
ENV MARKUP="[bold red]alarm[/bold red] [link=https://example.invalid]click me[/link]" \
    ESCAPE_SEQUENCES="${ESCAPE}" \
    LONG_VALUE="${LONG}"
RUN mkdir -p "/data/[bold red]alarm[blink]" && echo hostile > "/data/[bold red]alarm[blink]/[reverse]name.txt"
CMD ["/bin/sh"]
DOCKERFILE
escape=$(printf 'before\033[2J\033]0;pwned\007\033[31mred\033[0mafter')
build "$work/hostile" -t dockerscope-demo/hostile:1 \
    --build-arg "ESCAPE=$escape" --build-arg "LONG=$long" \
    --label "demo.markup=[bold red]alarm[/bold red] [link=https://example.invalid]click[/link]" \
    --label "demo.escape=$escape" \
    --label "demo.long=$long" >/dev/null

# An untagged image (what `docker build` without -t leaves).
mkdir -p "$work/untagged"
cat > "$work/untagged/Dockerfile" <<'DOCKERFILE'
FROM dockerscope-demo/worker:1
RUN echo scratch-build > /var/spool/jobs/2
DOCKERFILE
untagged=$(build "$work/untagged")

# Containers in every state the daemon lets us reach, each with a writable layer that changes files.
containers=(dockerscope-demo-web dockerscope-demo-queue-worker dockerscope-demo-batch-job dockerscope-demo-web-staging
    dockerscope-demo-crashloop dockerscope-demo-sdk-cleanup dockerscope-demo-stuck-job-dying dockerscope-demo-stuck-job)
remove_containers "${containers[@]}"
run() { # run NAME [docker run args...]: start a container off the network, detached
    local name=$1; shift
    docker run -d --network none --name "$name" "$@" >/dev/null
}
run dockerscope-demo-web dockerscope-demo/web:1 sh -c \
    'echo started > /var/log/web/access.log; echo 1 > /run/web/pid; echo "listen 9090" >> /etc/httpd.conf; exec sleep 100000'
run dockerscope-demo-queue-worker dockerscope-demo/worker:1 sh -c \
    'mkdir -p /tmp/jobs && echo half > /tmp/jobs/partial; rm /var/spool/jobs/1; exec sleep 100000'
docker pause dockerscope-demo-queue-worker >/dev/null
run dockerscope-demo-batch-job dockerscope-demo/worker:1 sh -c \
    'echo "done: first-job" > /var/spool/jobs/1.out; mkdir /tmp && head -c 65536 /dev/zero > /tmp/core; exit 3'
docker create --network none --name dockerscope-demo-web-staging dockerscope-demo/web:1 >/dev/null
run dockerscope-demo-crashloop --restart always dockerscope-demo/worker:1 sh -c 'mkdir -p /tmp && echo crash >> /tmp/crash.log; exit 1'
run dockerscope-demo-sdk-cleanup dockerscope-demo/bloated:1 sh -c 'rm -rf /opt/sdk; mkdir -p /home/app && echo hi > /home/app/.profile'
run dockerscope-demo-stuck-job-dying dockerscope-demo/worker:1 sh -c 'echo stuck > /var/spool/jobs/stuck'
for name in dockerscope-demo-batch-job dockerscope-demo-sdk-cleanup dockerscope-demo-stuck-job-dying; do docker wait "$name" >/dev/null; done
chattr +i "$(docker inspect -f '{{.GraphDriver.Data.UpperDir}}' dockerscope-demo-stuck-job-dying)/var/spool/jobs/stuck"
if docker rm dockerscope-demo-stuck-job-dying >/dev/null 2>&1; then
    echo "build-demo: the daemon removed the container meant to be dead" >&2; exit 1
fi
# The container list shows "removing" until the container's state is saved again: a rename saves it.
docker rename dockerscope-demo-stuck-job-dying dockerscope-demo-stuck-job
# Let the restarting container back off long enough to be caught restarting.
for _ in $(seq 1 60); do
    [ "$(docker inspect -f '{{.RestartCount}}' dockerscope-demo-crashloop)" -ge 5 ] && break
    sleep 0.5
done
echo "$untagged"
