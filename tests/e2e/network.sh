#!/bin/bash
# The default bridge network through the real docker CLI (28.x): a private berthd with its own
# root, exec root, socket and bridge (bn<pid>); a busybox httpd published on 127.0.0.1 and
# fetched with curl from the host, `docker port`, `-P`, inspect's addresses, a second
# container reaching the first by address, a taken port refused cleanly, and nothing left
# (veth, rule, bridge, table) once the containers and the daemon are gone. Traffic goes only
# to loopback and to this test's containers.
#   tests/e2e/network.sh [path/to/berthd]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BERTHD=${1:-$ROOT/target/debug/berthd}
DOCKER=/usr/local/bin/docker; [ -x $DOCKER ] || DOCKER=$(command -v docker || true)
[ -x "$DOCKER" ] || { echo "SKIP network.sh: no docker CLI"; exit 0; }
command -v nft >/dev/null || { echo "FAIL network.sh: nft missing (scripts/deps.sh installs nftables)"; exit 1; }
dir=$(mktemp -d /tmp/berth-net-e2e.XXXXXX)
sock=$dir/berth.sock
BR=bn$$
export DOCKER_CONFIG=$dir/docker-config
mkdir -p "$DOCKER_CONFIG"
D() { timeout -k 5 60 "$DOCKER" -H "unix://$sock" "$@"; }
PASS=0; FAIL=0
pass() { PASS=$((PASS+1)); echo "PASS $*"; }
fail() { FAIL=$((FAIL+1)); echo "FAIL $*"; }
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2] got [$3]"; fi; }
contains() { case "$3" in *"$2"*) pass "$1";; *) fail "$1: [$2] not in [$3]";; esac; }
bpid=
cleanup() {
    if [ -n "$bpid" ] && kill -0 "$bpid" 2>/dev/null; then
        ids=$(D ps -aq 2>/dev/null); [ -n "$ids" ] && D rm -f $ids >/dev/null 2>&1
        kill -TERM "$bpid"; wait "$bpid" 2>/dev/null
    fi
    [ "$FAIL" -gt 0 ] && { echo "--- berthd log (tail)"; tail -n 30 "$dir/berthd.log"; }
    grep -o " $dir[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$dir" 2>/dev/null
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# GET http://$1/ from the host, retried while the server comes up.
get() { for _ in $(seq 50); do curl -fsS --max-time 2 "http://$1/" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
HTTPD='mkdir -p /www && echo hello-e2e > /www/index.html && exec httpd -f -p 80 -h /www'

"$BERTHD" --root "$dir/root" --exec-root "$dir/run" -H "unix://$sock" --bridge "$BR" \
    --pidfile "$dir/berthd.pid" >"$dir/berthd.log" 2>&1 &
bpid=$!
for _ in $(seq 200); do [ -S "$sock" ] && D version >/dev/null 2>&1 && break; kill -0 "$bpid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$bpid" 2>/dev/null || { fail "berthd start"; cat "$dir/berthd.log"; exit 1; }
ref=$("$ROOT/tests/peers/mkimage.sh" "$dir/img" berth-net/busybox:latest)
D load -q -i "$dir/img/docker-archive.tar" >/dev/null || { fail "load the busybox image"; exit 1; }
contains "bridge $BR is up" ",UP" "$(ip -o link show "$BR" 2>/dev/null)"
contains "berth's table masquerades the bridge's subnet" "masquerade" "$(nft list table ip "berth-$BR" 2>&1)"

# -p 127.0.0.1:P:80, fetched with curl from the host.
P=$(free_port)
web=$(D run -d -p "127.0.0.1:$P:80" "$ref" sh -c "$HTTPD")
check "published port serves on 127.0.0.1" "hello-e2e" "$(get "127.0.0.1:$P")"
check "docker port" "80/tcp -> 127.0.0.1:$P" "$(D port "$web")"
check "docker port 80" "127.0.0.1:$P" "$(D port "$web" 80)"
contains "docker ps shows the port" "127.0.0.1:$P->80/tcp" "$(D ps --format '{{.Ports}}')"
ip=$(D inspect -f '{{.NetworkSettings.Networks.bridge.IPAddress}}' "$web")
gw=$(D inspect -f '{{.NetworkSettings.Networks.bridge.Gateway}}' "$web")
mac=$(D inspect -f '{{.NetworkSettings.Networks.bridge.MacAddress}}' "$web")
contains "inspect: an address" "." "$ip"
contains "inspect: MAC derived from the address" "02:42:" "$mac"
check "inspect: gateway on the bridge" "$gw/" "$(ip -o -4 addr show "$BR" | awk '{print $4}' | sed 's|/.*|/|')"
check "inspect: NetworkMode" "bridge" "$(D inspect -f '{{.HostConfig.NetworkMode}}' "$web")"

# Another container reaches it by address over the bridge, and through the gateway.
out=$(D run --rm "$ref" sh -c "ping -c 1 -W 5 $ip >/dev/null && wget -q -O - http://$ip/" 2>&1)
check "container to container by address" "hello-e2e" "$out"

# -P: the image's (here --expose'd) ports on free host ports.
all=$(D run -d -P --expose 80 "$ref" sh -c "$HTTPD")
ap=$(D port "$all" 80/tcp | head -n 1 | sed 's/.*://')
contains "-P picked a port" "0.0.0.0:" "$(D port "$all" 80/tcp)"
check "-P port serves on 127.0.0.1" "hello-e2e" "$(get "127.0.0.1:$ap")"
out=$(D run --rm "$ref" wget -q -O - "http://$gw:$ap/" 2>&1)
check "hairpin: a container through the host's address" "hello-e2e" "$out"

# A taken host port: a clear error, nothing half-set.
out=$(D run -d --name taken -p "127.0.0.1:$P:80" "$ref" sleep 60 2>&1); rc=$?
check "taken port: run fails" 125 "$rc"
contains "taken port: message" "port is already allocated" "$out"
check "taken port: not running" "false" "$(D inspect -f '{{.State.Running}}' taken)"

# Cleanup: no veth, no published-port rule left; the bridge and table go with the daemon.
D rm -f "$web" "$all" taken >/dev/null
for _ in $(seq 100); do [ -z "$(ip -o link show master "$BR" 2>/dev/null)" ] && break; sleep 0.05; done
check "no veth left on the bridge" "" "$(ip -o link show master "$BR" 2>/dev/null)"
check "no published-port rule left" "0" "$(nft list chain ip "berth-$BR" ports 2>/dev/null | grep -c dnat)"
kill -TERM "$bpid"; wait "$bpid" 2>/dev/null; bpid=
check "bridge removed at shutdown" "" "$(ip -br link show "$BR" 2>/dev/null)"
check "table removed at shutdown" "" "$(nft list tables 2>/dev/null | grep "berth-$BR")"

echo "# network.sh: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
