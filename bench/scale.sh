#!/bin/bash
# Scale: what berthd holds per running container. `docker run -d --network none IMG sleep`
# N times (busybox image made locally), then one `docker rm -f` of all of them; berthd's
# threads, fds and RSS at idle, with N running, and after the removal (also: network
# namespaces, mounts and monitors left). The same for a private dockerd (own netns via
# `unshare -n`, own roots, no bridge/iptables) at DOCKER_N, for a ratio per container.
# Not part of CI. Run as root.
#   [BERTH_BIN=DIR] [PROFILE=release|debug] bench/scale.sh [N=1000] [DOCKER_N=200]
# BERTH_BIN: a directory holding berthd and berth-monitor (another build, e.g. the previous
# commit's: before/after); default: this tree's, built with PROFILE. DOCKER_N=0 skips dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
dn=${2:-200}
profile=${PROFILE:-release}
DOCKER=/usr/local/bin/docker; [ -x $DOCKER ] || DOCKER=$(command -v docker)
if [ -z "${BERTH_BIN:-}" ]; then
    flag=(); [ "$profile" = release ] && flag=(--release)
    cargo build "${flag[@]}" -q -p berthd -p berth-monitor
    BERTH_BIN=target/$profile
fi
. bench/lib/workdir.sh
bench_workdir berth-scale 150
ref=$(tests/peers/mkimage.sh "$w/img" berth-scale/busybox:latest)

# threads fds rss_kB of the processes given (summed)
measure() {
    local t=0 f=0 r=0 p
    for p in "$@"; do
        t=$((t + $(ls "/proc/$p/task" | wc -l)))
        f=$((f + $(ls "/proc/$p/fd" | wc -l)))
        r=$((r + $(awk '/VmRSS/ {print $2}' "/proc/$p/status")))
    done
    echo "$t $f $r"
}
row() { printf '  %-28s threads %5s   fds %5s   RSS %7s kB\n' "$1" $2 $3 $4; }
# Start $2 containers through the docker CLI at $1, 4 clients at a time.
start_many() {
    seq "$2" | xargs -P4 -I{} $DOCKER -H "unix://$1" run -d --network none "$ref" sleep 100000 >/dev/null
}
# Wait for the daemon's idle threads (API blocking pool: 10 s keep-alive) to go, and for
# berthd's second heap trim (13 s after the last removal).
settle() { sleep "${SETTLE:-16}"; }
# One daemon's round: idle, N running, all removed. Prints three rows; $per gets per-container.
round() {
    local name=$1 sock=$2 count=$3; shift 3
    local idle run after
    $DOCKER -H "unix://$sock" load -q -i "$w/img/docker-archive.tar" >/dev/null
    $DOCKER -H "unix://$sock" run --rm --network none "$ref" true
    settle; idle=$(measure "$@")
    local t0=$SECONDS
    start_many "$sock" "$count"
    local up; up=$($DOCKER -H "unix://$sock" ps -q | wc -l)
    settle; run=$(measure "$@")
    echo "== $name: $count x run -d in $((SECONDS - t0)) s ($up running)"
    row "idle" $idle
    row "$count running" $run
    t0=$SECONDS
    # shellcheck disable=SC2046
    $DOCKER -H "unix://$sock" rm -f $($DOCKER -H "unix://$sock" ps -aq) >/dev/null
    echo "  (rm -f of all: $((SECONDS - t0)) s)"
    settle; after=$(measure "$@")
    row "after removing all" $after
    read -r it if_ ir <<<"$idle"; read -r rt rf rr <<<"$run"
    per="$(python3 -c "print(f'{($rt-$it)/$count:.3f} {($rf-$if_)/$count:.3f} {($rr-$ir)/$count:.1f}')")"
    echo "  per running container: threads fds kB = $per"
}

target_b=$(readlink -f "$BERTH_BIN/berthd")
"$BERTH_BIN/berthd" --root "$w/berth" --exec-root "$w/berth-run" -H "unix://$w/berth.sock" --bridge none >"$w/berthd.log" 2>&1 &
bpid=$!; pids+=("$bpid")
for _ in $(seq 300); do [ -S "$w/berth.sock" ] && break; sleep 0.1; done
echo "berthd: $target_b"
round berthd "$w/berth.sock" "$n" "$bpid"
bper=$per
ns=$(awk -v w="$w/" '$4 ~ /^net:\[/ && index($5, w) == 1' "/proc/$bpid/mountinfo" | wc -l)
mnt=$(awk -v w="$w/berth" 'index($5, w) == 1' "/proc/$bpid/mountinfo" | grep -vc '/containers/.tmp-pool-' || true)
mon=$(ps -eo args | grep -c "^[^ ]*berth-monitor.*$w" || true)
nsfd=$(for f in /proc/"$bpid"/fd/*; do readlink "$f"; done 2>/dev/null | grep -c '^net:' || true)
echo "  left: namespace mounts $ns, namespace fds $nsfd (the ready ones), mounts under the roots $mnt (the exec root's tmpfs and the ready rootfs), monitors $mon"

if [ "$dn" -gt 0 ]; then
    # dockerd with its own containerd, in a network namespace of its own, private paths.
    unshare -n dockerd --data-root "$w/docker" --exec-root "$w/docker-run" -H "unix://$w/docker.sock" \
        --pidfile "$w/docker.pid" --bridge none --iptables=false --ip6tables=false --ip-masq=false \
        >"$w/dockerd.log" 2>&1 &
    dpid=$!; pids+=("$dpid")
    for _ in $(seq 300); do [ -S "$w/docker.sock" ] && break; sleep 0.1; done
    [ -S "$w/docker.sock" ] || { echo "dockerd did not start:"; tail "$w/dockerd.log"; exit 1; }
    cpid=$(pgrep -P "$dpid" containerd || true)
    round "dockerd+containerd" "$w/docker.sock" "$dn" "$dpid" ${cpid:+"$cpid"}
    dper=$per
    python3 - "$bper" "$dper" <<'EOF'
import sys
b = [float(x) for x in sys.argv[1].split()]
d = [float(x) for x in sys.argv[2].split()]
r = lambda x, y: f"{x / y:.2f}" if y else "-"
print(f"== per running container, berthd/dockerd+containerd: threads {r(b[0], d[0])}  fds {r(b[1], d[1])}  RSS {r(b[2], d[2])}")
EOF
fi
