#!/bin/bash
# berthd vs Debian's dockerd 20.10 (+containerd+runc), measured in the same run:
#   - `docker run --rm IMG true` (the docker CLI 28 against each daemon), interleaved runs,
#     and against bench/lib/null_daemon.py (answers at once, runs nothing): the CLI's own share
#   - idle RSS of the daemon (berthd alone vs dockerd+containerd)
#   - per running container overhead (berth-monitor vs containerd-shim)
#   - 100 concurrent `run --rm` requests against berthd all succeed
# With BERTH_BASELINE=DIR (a directory holding another build's berthd and berth-monitor, e.g.
# the previous commit's), that build runs beside this one and is measured in the same runs:
# before/after of a change, interleaved, RSS included.
# Not part of CI. Run as root.   [BERTH_BASELINE=DIR] bench/daemon.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
export DEBIAN_FRONTEND=noninteractive
for p in docker.io busybox-static; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || apt-get install -y -qq "$p" >/dev/null
done
DOCKER=/usr/local/bin/docker; [ -x $DOCKER ] || DOCKER=$(command -v docker)
cargo build --release -q -p berthd -p berth-monitor -p berth
. bench/lib/workdir.sh
bench_workdir berth-bench-d
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
ref=$(tests/peers/mkimage.sh "$w/img" berth-bench/busybox:latest)

# berthd
target/release/berthd --root "$w/berth" --exec-root "$w/berth-run" -H "unix://$w/berth.sock" --bridge none >"$w/berthd.log" 2>&1 &
bpid=$!; pids+=("$bpid")
base=${BERTH_BASELINE:-}
if [ -n "$base" ]; then
    "$base/berthd" --root "$w/base" --exec-root "$w/base-run" -H "unix://$w/base.sock" >"$w/base.log" 2>&1 &
    basepid=$!; pids+=("$basepid")
fi
# dockerd with its own containerd, no networking setup, on private paths
dockerd --data-root "$w/docker" --exec-root "$w/docker-run" -H "unix://$w/docker.sock" --pidfile "$w/docker.pid" \
    --bridge none --iptables=false --ip-masq=false >"$w/dockerd.log" 2>&1 &
dpid=$!; pids+=("$dpid")
python3 bench/lib/null_daemon.py "$w/null.sock" >"$w/null.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -S "$w/berth.sock" ] && [ -S "$w/docker.sock" ] && [ -S "$w/null.sock" ] && { [ -z "$base" ] || [ -S "$w/base.sock" ]; } && break; sleep 0.1; done
B="$DOCKER -H unix://$w/berth.sock"; D="$DOCKER -H unix://$w/docker.sock"; BB="$DOCKER -H unix://$w/base.sock"
$B load -q -i "$w/img/docker-archive.tar" >/dev/null
[ -z "$base" ] || $BB load -q -i "$w/img/docker-archive.tar" >/dev/null
$D load -q -i "$w/img/docker-archive.tar" >/dev/null
sleep 2
echo "== idle RSS"
brss=$(rss_kb "$bpid")
cpid=$(pgrep -P "$dpid" containerd | head -1 || true)
drss=$(( $(rss_kb "$dpid") + ${cpid:+$(rss_kb "$cpid")}+0 ))
echo "  berthd ${brss} kB   dockerd+containerd ${drss} kB   RATIO $(python3 -c "print(f'{$brss/$drss:.3f}')")  (target berthd <= 15360 kB)"
if [ -n "$base" ]; then
    baserss=$(rss_kb "$basepid")
    echo "  baseline berthd ${baserss} kB   RATIO berthd/baseline $(python3 -c "print(f'{$brss/$baserss:.3f}')")"
fi

echo "== docker run --rm IMG true ($runs runs each, interleaved: all see the same noise)"
echo "   (null: a server that answers at once and runs nothing: what the docker CLI alone takes)"
INTERLEAVE_PAIRS="berthd/baseline" python3 bench/lib/interleave.py "$runs" 3 \
    "null=$DOCKER -H unix://$w/null.sock run --rm --network none $ref true" \
    "berthd=$B run --rm --network none $ref true" ${base:+"baseline=$BB run --rm --network none $ref true"} \
    "dockerd=$D run --rm --network none $ref true" \
    | sed 's/RATIO berthd\/dockerd = \(.*\)/RATIO berthd\/dockerd = \1  (target <= 0.10)/'

echo "== per running container overhead (10 sleeping containers each)"
before_b=$(ps -eo rss,comm | awk '$2=="berth-monitor"{s+=$1} END{print s+0}')
for i in $(seq 10); do $B run -d --network none "$ref" sleep 600 >/dev/null; done
after_b=$(ps -eo rss,comm | awk '$2=="berth-monitor"{s+=$1} END{print s+0}')
before_d=$(ps -eo rss,comm | awk '$2 ~ /containerd-shim/{s+=$1} END{print s+0}')
for i in $(seq 10); do $D run -d --network none "$ref" sleep 600 >/dev/null; done
after_d=$(ps -eo rss,comm | awk '$2 ~ /containerd-shim/{s+=$1} END{print s+0}')
echo "  berth-monitor $(( (after_b-before_b)/10 )) kB/container   containerd-shim $(( (after_d-before_d)/10 )) kB/container  (target <= 2048 kB)"
$B rm -f $($B ps -q) >/dev/null; $D rm -f $($D ps -q) >/dev/null
if [ -n "$base" ]; then
    # (The baseline's monitors have the same name: counted after this build's are gone.)
    before_bb=$(ps -eo rss,comm | awk '$2=="berth-monitor"{s+=$1} END{print s+0}')
    for i in $(seq 10); do $BB run -d --network none "$ref" sleep 600 >/dev/null; done
    after_bb=$(ps -eo rss,comm | awk '$2=="berth-monitor"{s+=$1} END{print s+0}')
    echo "  baseline berth-monitor $(( (after_bb-before_bb)/10 )) kB/container"
    $BB rm -f $($BB ps -q) >/dev/null
fi

echo "== 100 concurrent run --rm against berthd"
runs_pids=()
for i in $(seq 100); do ($B run --rm --network none "$ref" true >/dev/null 2>&1 && echo ok >>"$w/conc") & runs_pids+=($!); done
wait "${runs_pids[@]}" || true
ok=$(cat "$w/conc" 2>/dev/null | wc -l)
echo "  $ok/100 succeeded"
