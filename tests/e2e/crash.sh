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
    "$BERTHD" --root "$dir/root" --exec-root "$dir/run" -H "unix://$sock" --bridge none >>"$dir/berthd.log" 2>&1 &
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
    test -z "$(find "$dir/root" -name '*.tmp*' -o -name 'ingest*' 2>/dev/null | grep -v -e '/containers/' -e '/.tmp-pool-' | head -1)"
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
# 3. SIGKILL during a pull: a real registry behind a proxy that stalls half-way through every
#    blob until told to go on.
if command -v docker-registry >/dev/null; then
    port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
    rport=$(port); pport=$(port)
    mkdir -p "$dir/reg"
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$dir/reg" "$rport" >"$dir/reg.yml"
    docker-registry serve "$dir/reg.yml" >"$dir/reg.log" 2>&1 &
    rpid=$!
    python3 - "$pport" "$rport" "$dir/stall" "$dir/stalled" <<'PY' >"$dir/proxy.log" 2>&1 &
import http.server, socketserver, sys, os, time, urllib.request
pport, rport, stall, stalled = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def fwd(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        req = urllib.request.Request(f"http://127.0.0.1:{rport}{self.path}", data=body, method=self.command)
        for k, v in self.headers.items():
            if k.lower() not in ("host", "connection"):
                req.add_header(k, v)
        try:
            r = urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            r = e
        data = r.read()
        self.send_response(r.status if hasattr(r, "status") else r.code)
        for k, v in r.headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "GET" and "/blobs/" in self.path and os.path.exists(stall) and len(data) > 100000:
            self.wfile.write(data[: len(data) // 2]); self.wfile.flush()
            open(stalled, "w").close()
            while os.path.exists(stall):
                time.sleep(0.05)
            self.wfile.write(data[len(data) // 2:])
        elif self.command != "HEAD":
            self.wfile.write(data)
    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = fwd
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
S(("127.0.0.1", pport), H).serve_forever()
PY
    ppid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$pport") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null && break; sleep 0.1; done
    R=127.0.0.1:$pport/crash/busybox:1
    # Push from a second, throw-away daemon so the daemon under test has none of the blobs.
    "$BERTHD" --root "$dir/root2" --exec-root "$dir/run2" -H "unix://$dir/b2.sock" --bridge none >>"$dir/berthd2.log" 2>&1 &
    b2=$!
    D2="$DOCKER -H unix://$dir/b2.sock"
    for _ in $(seq 200); do $D2 version >/dev/null 2>&1 && break; sleep 0.05; done
    $D2 load -q -i "$archive" >/dev/null && $D2 tag "$ref" "$R" && check "push through the proxy" $D2 push -q "$R"
    kill "$b2"; wait "$b2" 2>/dev/null
    # The daemon under test loaded the same image above: a pull skips layers it has unpacked,
    # so remove it first or the pull would never fetch a blob (nothing to interrupt).
    check "rmi of the loaded image before the pull" $D rmi "$ref"
    touch "$dir/stall"
    $D pull -q "$R" >/dev/null 2>&1 &
    pl=$!
    for _ in $(seq 200); do [ -e "$dir/stalled" ] && break; sleep 0.05; done
    check "pull reached the middle of a blob" test -e "$dir/stalled"
    crash
    wait $pl 2>/dev/null
    rm -f "$dir/stall"
    start || exit 1
    check "pull interrupted: the image is not visible" test -z "$($D images -q "$R")"
    check "pull interrupted: no dangling image" test -z "$($D images -q -f dangling=true)"
    check "pull retried" $D pull -q "$R"
    check "pull retried: runs" test "$($D run --rm --network none "$R" echo pulled)" = pulled
    kill "$ppid" "$rpid" 2>/dev/null
else
    echo "SKIP pull interrupted (docker-registry not installed)"
fi

echo "# crash.sh: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
