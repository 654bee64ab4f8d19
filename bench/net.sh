#!/bin/bash
# Networking: berthd vs Debian's dockerd, measured in the same run, printed as ratios
# (issue 13's Speed targets):
#   - host -> a port published on 127.0.0.1 (TCP throughput; dockerd's userland proxy carries
#     loopback, berth DNATs it in the kernel)                        target berthd >= 3x
#   - container -> container on the default bridge (TCP throughput)  target >= 0.9x
#   - `docker run --rm IMG true` on the default bridge (interleaved) target <= 0.15x
#   - `docker network create` + `network rm`                         target <= 0.2x
# Each daemon runs in a network namespace of its own (`unshare -n`, loopback up) with private
# --data-root/--exec-root/socket: neither touches the host's interfaces, docker0 or rules, and
# every byte moves inside those namespaces. Not part of CI. Run as root.
# With BERTH_BASELINE=DIR (another build's berthd and berth-monitor, e.g. the previous
# commit's), that build runs too, in a namespace of its own, measured in the same runs
# (before/after of a change; its ratios are printed as `base`).
#   [RUNS=20] [MB=1000] [BERTH_BIN=target/release] [BERTH_BASELINE=DIR] bench/net.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
mb=${MB:-1000}
bin=${BERTH_BIN:-target/release}
export DEBIAN_FRONTEND=noninteractive
for p in docker.io busybox-static iproute2 nftables; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || apt-get install -y -qq "$p" >/dev/null
done
DOCKER=/usr/local/bin/docker; [ -x $DOCKER ] || DOCKER=$(command -v docker)
[ -n "${BERTH_BIN:-}" ] || cargo build --release -q -p berthd -p berth-monitor
w=$(mktemp -d /tmp/berth-bench-net.XXXXXX)
pids=()
cleanup() {
    set +e
    for s in berth docker base; do
        ids=$($DOCKER -H "unix://$w/$s.sock" ps -aq 2>/dev/null)
        [ -n "$ids" ] && $DOCKER -H "unix://$w/$s.sock" rm -f $ids >/dev/null 2>&1
    done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
    awk -v w="$w/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$w"
}
trap cleanup EXIT
ref=$(tests/peers/mkimage.sh "$w/img" berth-bench/busybox:latest)

# Each daemon in its own network namespace: `unshare -n` then exec, so the pid is the daemon.
unshare -n sh -c "ip link set lo up && exec $bin/berthd --root $w/berth --exec-root $w/berth-run \
    -H unix://$w/berth.sock --bridge berthbench0" >"$w/berthd.log" 2>&1 &
bpid=$!; pids+=("$bpid")
unshare -n sh -c "ip link set lo up && exec dockerd --data-root $w/docker --exec-root $w/docker-run \
    -H unix://$w/docker.sock --pidfile $w/docker.pid" >"$w/dockerd.log" 2>&1 &
dpid=$!; pids+=("$dpid")
base=${BERTH_BASELINE:-}
if [ -n "$base" ]; then
    unshare -n sh -c "ip link set lo up && exec $base/berthd --root $w/base --exec-root $w/base-run \
        -H unix://$w/base.sock --bridge berthbase0" >"$w/base.log" 2>&1 &
    pids+=("$!")
fi
for _ in $(seq 300); do
    [ -S "$w/berth.sock" ] && [ -S "$w/docker.sock" ] && { [ -z "$base" ] || [ -S "$w/base.sock" ]; } && break
    sleep 0.1
done
B="$DOCKER -H unix://$w/berth.sock"; D="$DOCKER -H unix://$w/docker.sock"; X="$DOCKER -H unix://$w/base.sock"
$B load -q -i "$w/img/docker-archive.tar" >/dev/null
$D load -q -i "$w/img/docker-archive.tar" >/dev/null
[ -z "$base" ] || $X load -q -i "$w/img/docker-archive.tar" >/dev/null
$D version --format '  dockerd {{.Server.Version}} in its own network namespace (pid '"$dpid"')'
ratio() { python3 -c "print(f'{$1/$2:.3f}')"; }

# Host -> 127.0.0.1:PORT: a sink container (dd of=/dev/null per connection), a client in the
# daemon's namespace (python: 1 MiB writes; done when the sink has read all and closed).
client=$w/client.py
cat >"$client" <<'EOF'
import socket, sys, time
host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) << 20
for _ in range(50):
    try:
        s = socket.create_connection((host, port)); break
    except OSError:
        time.sleep(0.1)
buf = bytes(1 << 20); t = time.perf_counter()
for _ in range(total >> 20):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR); s.recv(1); dt = time.perf_counter() - t
print(f"{total * 8 / dt / 1e6:.0f}")
EOF
# loopback NAME CLI DAEMON_PID: median Mbit/s of 3 transfers of $mb MiB.
loopback() {
    local id r=()
    id=$($2 run -d -p 127.0.0.1:18080:80 "$ref" nc -ll -p 80 -e dd of=/dev/null bs=1M)
    sleep 0.5
    for _ in 1 2 3; do r+=("$(nsenter -t "$3" -n python3 "$client" 127.0.0.1 18080 "$mb")"); done
    $2 rm -f "$id" >/dev/null
    printf '%s\n' "${r[@]}" | sort -n | sed -n 2p
}
echo "== host -> published port on 127.0.0.1 ($mb MiB x3, median)"
lb=$(loopback berthd "$B" "$bpid"); ld=$(loopback dockerd "$D" "$dpid")
echo "  berthd $lb Mbit/s   dockerd $ld Mbit/s   RATIO berthd/dockerd $(ratio "$lb" "$ld")  (target >= 3)"

# Container -> container: dd writing into the socket (nc -e) to dd reading it, timed inside
# the sender (1 MiB writes and reads: the tools are not the bottleneck).
c2c() {
    local sink ip src r=()
    sink=$($1 run -d "$ref" nc -ll -p 80 -e dd of=/dev/null bs=1M)
    ip=$($1 inspect -f '{{.NetworkSettings.IPAddress}}' "$sink")
    src=$($1 run -d "$ref" sleep 600)
    sleep 0.5
    for _ in 1 2 3; do
        r+=("$($1 exec "$src" sh -c "s=\$(cut -d' ' -f1 /proc/uptime); nc $ip 80 -e dd if=/dev/zero bs=1M count=$mb 2>/dev/null; e=\$(cut -d' ' -f1 /proc/uptime); echo \$s \$e" |
            awk -v mb="$mb" '{printf "%.0f\n", mb*1048576*8/($2-$1)/1e6}')")
    done
    $1 rm -f "$sink" "$src" >/dev/null
    printf '%s\n' "${r[@]}" | sort -n | sed -n 2p
}
echo "== container -> container on the default bridge ($mb MiB x3, median)"
cb=$(c2c "$B"); cd_=$(c2c "$D")
echo "  berthd $cb Mbit/s   dockerd $cd_ Mbit/s   RATIO berthd/dockerd $(ratio "$cb" "$cd_")  (target >= 0.9)"

echo "== docker run --rm IMG true on the default bridge ($runs runs each, interleaved)"
basecmd=(); [ -z "$base" ] || basecmd=("base=$X run --rm $ref true")
INTERLEAVE_PAIRS="berthd/base" python3 bench/lib/interleave.py "$runs" 3 \
    "berthd=$B run --rm $ref true" "${basecmd[@]}" "dockerd=$D run --rm $ref true" |
    sed 's/RATIO berthd\/dockerd = \(.*\)/RATIO berthd\/dockerd = \1  (target <= 0.15)/'

echo "== network create + rm ($runs runs each, interleaved): through the docker CLI, and the API alone"
# The docker CLI (two invocations: create; rm, which inspects first) costs the same against
# both daemons and is most of berthd's time; the API timing (POST /networks/create then
# DELETE /networks/ID on the daemon's socket, one connection each, as the CLI makes them) is
# the daemons' own work.
python3 - "$runs" "$DOCKER" "berthd=$w/berth.sock" ${base:+"base=$w/base.sock"} "dockerd=$w/docker.sock" <<'EOF'
import http.client, json, os, socket, statistics, subprocess, sys, time
runs, docker, daemons = int(sys.argv[1]), sys.argv[2], [a.split("=", 1) for a in sys.argv[3:]]
class Conn(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost"); self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(self.path)
def call(path, method, url, body=None):
    c = Conn(path)
    c.request(method, url, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse(); data = r.read(); c.close()
    if r.status >= 300: sys.exit(f"{method} {url}: {r.status} {data!r}")
    return data
def api(path, i):
    nid = json.loads(call(path, "POST", "/networks/create", {"Name": f"benchapi{os.getpid()}x{i}"}))["Id"]
    call(path, "DELETE", f"/networks/{nid}")
def cli(path, i):
    h = ["-H", f"unix://{path}"]; n = f"benchcli{os.getpid()}x{i}"
    subprocess.run([docker, *h, "network", "create", n], check=True, capture_output=True)
    subprocess.run([docker, *h, "network", "rm", n], check=True, capture_output=True)
for kind, f in (("docker CLI", cli), ("API", api)):
    t = {n: [] for n, _ in daemons}
    for i in range(runs + 3):
        for n, path in daemons:
            s = time.perf_counter(); f(path, i)
            if i >= 3: t[n].append((time.perf_counter() - s) * 1000)
    print(f"  {kind}:")
    for n, v in t.items(): print(f"    {n:10s} median {statistics.median(v):7.1f} ms")
    med = {n: statistics.median(v) for n, v in t.items()}
    if "base" in med: print(f"    RATIO berthd/base = {med['berthd'] / med['base']:.3f}")
    print(f"    RATIO berthd/dockerd = {med['berthd'] / med['dockerd']:.3f}  (target <= 0.2)")
EOF
