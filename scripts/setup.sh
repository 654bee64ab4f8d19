#!/bin/bash
# The main job on a fresh Debian machine, as root: install what berth needs, build it, start
# berthd, make a busybox image locally (from the host's /bin/busybox, nothing downloaded),
# load it and run a container from it through berthd.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --workspace
bin=$PWD/target/release
sock=/run/berth/berth.sock
if ! "$bin/berth" -H "unix://$sock" version >/dev/null 2>&1; then
    mkdir -p /run/berth /var/log
    echo "setup: starting berthd (log: /var/log/berthd.log)"
    nohup "$bin/berthd" --pidfile /run/berth/berthd.pid >>/var/log/berthd.log 2>&1 &
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
fi
img=$(mktemp -d /tmp/berth-image.XXXXXX)
ref=$(tests/peers/mkimage.sh "$img" berth/busybox:latest)
"$bin/berth" load -i "$img/docker-archive.tar"
rm -rf "$img"
"$bin/berth" run --rm "$ref" sh -c 'echo "hello from a berth container: $(hostname), pid $$, $(grep -c ^ /proc/self/mountinfo) mounts"'
echo "setup: done. Try: $bin/berth run -it --rm $ref sh   (or DOCKER_HOST=unix://$sock docker ...)"
