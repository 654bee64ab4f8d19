#!/bin/bash
# berthd killed with SIGKILL in the middle of an image load and of a container start, then
# restarted: nothing half-made is visible, and each operation can simply be retried.
#   tests/e2e/crash.sh [path/to/berthd]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BERTHD=${1:-$ROOT/target/debug/berthd}
DOCKER=/usr/local/bin/docker; [ -x $DOCKER ] || DOCKER=$(command -v docker || true)
[ -x "$DOCKER" ] || { echo "SKIP crash.sh: no docker CLI"; exit 0; }
dir=$(mktemp -d /tmp/berth-crash.XXXXXX)
sock=$dir/berth.sock
D="$DOCKER -H unix://$sock"
pass=0; fail=0
ok() { echo "PASS $1"; pass=$((pass+1)); }
bad() { echo "FAIL $1"; fail=$((fail+1)); }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
bpid=
start() {
    rm -f "$sock"
    "$BERTHD" --root "$dir/root" --exec-root "$dir/run" -H "unix://$sock" >>"$dir/berthd.log" 2>&1 &
    bpid=$!
    for _ in $(seq 200); do [ -S "$sock" ] && $D version >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "berthd did not start"; tail "$dir/berthd.log"; return 1
}
crash() { kill -9 "$bpid" 2>/dev/null; wait "$bpid" 2>/dev/null; }
cleanup() {
    if [ -n "$bpid" ] && kill -0 "$bpid" 2>/dev/null; then
        ids=$($D ps -aq 2>/dev/null); [ -n "$ids" ] && $D rm -f $ids >/dev/null 2>&1
        kill "$bpid"; wait "$bpid" 2>/dev/null
    fi
    grep -o " $dir[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$dir" 2>/dev/null
}
trap cleanup EXIT
ref=$("$ROOT/tests/peers/mkimage.sh" "$dir/img" berth-crash/busybox:latest)
archive=$dir/img/docker-archive.tar
start || exit 1

# 1. SIGKILL while a load is streaming in: half the archive sent, then the daemon dies.
python3 - "$sock" "$archive" "$dir/half-sent" <<'PY' &
import socket, sys, time, os
sock, path, marker = sys.argv[1:4]
data = open(path, 'rb').read()
s = socket.socket(socket.AF_UNIX); s.connect(sock)
s.sendall(b"POST /v1.47/images/load?quiet=1 HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-tar\r\n"
          + f"Content-Length: {len(data)}\r\n\r\n".encode())
s.sendall(data[: len(data) // 2])
open(marker, 'w').close()
time.sleep(3)
PY
upl=$!
for _ in $(seq 100); do [ -e "$dir/half-sent" ] && break; sleep 0.05; done
sleep 0.3
crash
wait $upl 2>/dev/null
start || exit 1
check "load interrupted: no image visible" test -z "$($D images -aq)"
check "load interrupted: no temp files left in the content store" \
    test -z "$(find "$dir/root" -name '*.tmp*' -o -name 'ingest*' 2>/dev/null | grep -v '/containers/' | head -1)"
check "load retried" $D load -q -i "$archive"
check "load retried: image listed" test -n "$($D images -q "$ref")"

# 2. SIGKILL while containers start.
for i in 1 2 3; do
    $D create --name "c$i" --network none "$ref" sleep 300 >/dev/null
    $D start "c$i" >/dev/null 2>&1 &
    st=$!
    sleep 0.0$((i * 2))
    crash
    wait $st 2>/dev/null
    start || exit 1
    status=$($D inspect -f '{{.State.Status}}' "c$i" 2>/dev/null)
    check "start interrupted (c$i): container listed ($status)" test -n "$status"
    if [ "$status" != running ]; then
        check "start interrupted (c$i): start retried" $D start "c$i"
    fi
    check "start interrupted (c$i): running" test "$($D inspect -f '{{.State.Running}}' "c$i")" = true
    check "start interrupted (c$i): exec works" test "$($D exec "c$i" echo alive)" = alive
done
check "after crashes: ps lists 3 running" test "$($D ps -q | wc -l)" -eq 3
check "rm -f of all" $D rm -f c1 c2 c3
n=$(grep -c " $dir/root/containers" /proc/self/mounts)
check "no container mount left ($n)" test "$n" -eq 0
check "no monitor left" test -z "$(pgrep -f "berth-monitor.*$dir" || true)"
echo "# crash.sh: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
