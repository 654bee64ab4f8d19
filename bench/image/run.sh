#!/usr/bin/env bash
# berth-image speed bench (not in CI): load and pull of a Debian bookworm minbase image,
# berth vs Debian's dockerd in the same run, printed as ratios.
#   usage: bench/image/run.sh [CACHE_DIR]     (root; needs debootstrap docker.io docker-registry)
# Targets: load <= 0.33x docker load, pull <= 0.5x docker pull (layers unpacked, ready to mount).
set -euo pipefail
CACHE=${1:-/var/tmp/berth-bench}
RUNS=${RUNS:-2}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
DOCKER=/usr/bin/docker
for t in debootstrap dockerd docker-registry; do
    command -v $t >/dev/null || { echo "missing $t: apt-get install -y debootstrap docker.io docker-registry"; exit 1; }
done

echo "== building the bench driver"
(cd "$REPO" && cargo build --release -q -p berth-image --example berth-image)
B="$REPO/target/release/examples/berth-image"

if [ ! -f "$CACHE/rootfs.tar" ]; then
    MIRROR=$(grep -rhoE 'https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | grep -v security | head -1)
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    echo "== debootstrap --variant=minbase bookworm from $MIRROR"
    rm -rf "$CACHE/rootfs"
    debootstrap --variant=minbase bookworm "$CACHE/rootfs" "$MIRROR" >"$CACHE/debootstrap.log"
    tar -C "$CACHE/rootfs" --numeric-owner -cf "$CACHE/rootfs.tar.tmp" . && mv "$CACHE/rootfs.tar.tmp" "$CACHE/rootfs.tar"
fi
ARCHIVE="$CACHE/bookworm.docker-archive.tar"
if [ ! -f "$ARCHIVE" ]; then
    rm -rf "$CACHE/mk"
    "$B" --root "$CACHE/mk" --quiet import "$CACHE/rootfs.tar" bench/bookworm:1 >/dev/null
    "$B" --root "$CACHE/mk" --quiet save "$ARCHIVE" bench/bookworm:1
    rm -rf "$CACHE/mk"
fi
echo "archive: $(du -h "$ARCHIVE" | cut -f1), $(tar -tf "$CACHE/rootfs.tar" | wc -l) files"

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.2; done; done
    umount -R "$CACHE/docker" 2>/dev/null || true
}
trap cleanup EXIT

echo "== starting a private dockerd"
rm -rf "$CACHE/docker" "$CACHE/docker-exec" "$CACHE"/berth-load.* "$CACHE"/berth-pull.*
dockerd --data-root "$CACHE/docker" --exec-root "$CACHE/docker-exec" -H "unix://$CACHE/docker.sock" \
    --pidfile "$CACHE/docker.pid" --bridge=none --iptables=false --ip-masq=false --storage-driver=overlay2 \
    >"$CACHE/dockerd.log" 2>&1 &
PIDS+=($!)
D="$DOCKER -H unix://$CACHE/docker.sock"
for _ in $(seq 100); do $D version >/dev/null 2>&1 && break; sleep 0.2; done
$D version --format 'dockerd {{.Server.Version}}'

now() { date +%s.%N; }
# ext4 scans "recently deleted" inodes when allocating new ones, so mass deletes make later
# creates slow: berth gets a fresh root per run (all deleted at the end), docker's rmi is
# followed by a sync and a pause before timing.
SETTLE=${SETTLE:-35}
settle() { sync; sleep "$SETTLE"; }
best() { sort -n | head -1; }

echo "== load (best of $RUNS)"
dl=(); bl=()
for i in $(seq "$RUNS"); do
    $D rmi -f bench/bookworm:1 >/dev/null 2>&1 || true
    settle
    t0=$(now); $D load -q -i "$ARCHIVE" >/dev/null; t1=$(now)
    dl+=("$(echo "$t1 - $t0" | bc)")
    settle   # docker load deletes its temp extraction dir: let that settle too
    # --no-sync: like dockerd, berthd flushes unpacked layers in the background (blobs are
    # always fsynced); the flush time is shown separately below
    t0=$(now); "$B" --root "$CACHE/berth-load.$i" --quiet --no-sync load "$ARCHIVE" 2>/dev/null; t1=$(now)
    bl+=("$(echo "$t1 - $t0" | bc)")
done
DL=$(printf '%s\n' "${dl[@]}" | best); BL=$(printf '%s\n' "${bl[@]}" | best)
printf 'docker load %.3fs  berth load %.3fs  ratio %.2f (target <= 0.33)\n' "$DL" "$BL" "$(echo "$BL / $DL" | bc -l)"

echo "== pull from a loopback registry (best of $RUNS)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -rf "$CACHE/registry"; mkdir -p "$CACHE/registry"
cat >"$CACHE/registry/config.yml" <<CFG
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $CACHE/registry/data}}
http: {addr: 127.0.0.1:$PORT}
CFG
docker-registry serve "$CACHE/registry/config.yml" >"$CACHE/registry/log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done
REF="127.0.0.1:$PORT/bench/bookworm:1"
$D tag bench/bookworm:1 "$REF"
$D push -q "$REF" >/dev/null   # docker compresses the layer (gzip), as real registries serve it
dp=(); bp=()
for i in $(seq "$RUNS"); do
    $D rmi -f "$REF" bench/bookworm:1 >/dev/null 2>&1 || true
    settle
    t0=$(now); $D pull -q "$REF" >/dev/null; t1=$(now)
    dp+=("$(echo "$t1 - $t0" | bc)")
    settle
    t0=$(now); "$B" --root "$CACHE/berth-pull.$i" --quiet --no-sync pull "$REF" >/dev/null 2>&1; t1=$(now)
    bp+=("$(echo "$t1 - $t0" | bc)")
done
DP=$(printf '%s\n' "${dp[@]}" | best); BP=$(printf '%s\n' "${bp[@]}" | best)
printf 'docker pull %.3fs  berth pull %.3fs  ratio %.2f (target <= 0.5)\n' "$DP" "$BP" "$(echo "$BP / $DP" | bc -l)"
t0=$(now); sync; t1=$(now)
printf 'flush of the last berth pull (sync): %.3fs\n' "$(echo "$t1 - $t0" | bc)"
echo "runs: docker load ${dl[*]} | berth load ${bl[*]} | docker pull ${dp[*]} | berth pull ${bp[*]}"
$D rmi -f "$REF" bench/bookworm:1 >/dev/null 2>&1 || true
rm -rf "$CACHE"/berth-load.* "$CACHE"/berth-pull.*
