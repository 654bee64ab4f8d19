#!/bin/bash
# `docker run --rm -v vol:/data IMG true`: berthd vs Debian's dockerd, interleaved in the same
# run (bench/lib/interleave.py prints medians and the ratio). Each daemon has its own root,
# exec root and socket, no bridge; dockerd runs in its own network namespace (`unshare -n`)
# so it touches none of the host's interfaces or rules. The named volume exists beforehand
# (filled from the image at its first use), as in a compose service restarted over its data.
# Not part of CI. Run as root.   bench/volume.sh [RUNS] (BERTH_BIN=DIR: binaries, default
# target/release, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
DOCKER=/usr/local/bin/docker; [ -x $DOCKER ] || DOCKER=$(command -v docker)
bin=${BERTH_BIN:-target/release}
[ -x "$bin/berthd" ] || cargo build --release -q -p berthd -p berth-monitor -p berth-runtime-bin
. bench/lib/workdir.sh
bench_workdir berth-bench-vol
ref=$(tests/peers/mkimage.sh "$w/img" berth-bench/busybox:latest)
"$bin/berthd" --root "$w/berth" --exec-root "$w/berth-run" -H "unix://$w/berth.sock" --bridge none >"$w/berthd.log" 2>&1 &
pids+=($!)
unshare -n dockerd --data-root "$w/docker" --exec-root "$w/docker-run" -H "unix://$w/docker.sock" \
    --pidfile "$w/docker.pid" --bridge none --iptables=false --ip-masq=false >"$w/dockerd.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -S "$w/berth.sock" ] && [ -S "$w/docker.sock" ] && break; sleep 0.1; done
B="$DOCKER -H unix://$w/berth.sock"; D="$DOCKER -H unix://$w/docker.sock"
for c in "$B" "$D"; do
    $c load -q -i "$w/img/docker-archive.tar" >/dev/null
    $c run --rm --network none -v benchvol:/data "$ref" sh -c 'echo x > /data/f' >/dev/null
done
$D version --format 'dockerd {{.Server.Version}}'
echo "== docker run --rm -v benchvol:/data IMG true ($runs runs each, interleaved)"
python3 bench/lib/interleave.py "$runs" 3 \
    "berthd=$B run --rm --network none -v benchvol:/data $ref true" \
    "dockerd=$D run --rm --network none -v benchvol:/data $ref true" \
    | sed 's/RATIO berthd\/dockerd = \(.*\)/RATIO berthd\/dockerd = \1  (target <= 0.15)/'
for c in "$B" "$D"; do
    [ "$($c run --rm --network none -v benchvol:/data "$ref" cat /data/f)" = x ] || { echo "volume data lost"; exit 1; }
done
