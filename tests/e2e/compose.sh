#!/bin/bash
# docker-compose 1.29 (Debian's, docker-py inside) against a private berthd: two services on the
# project's network, one publishing a port and keeping data in a named volume, the other
# reaching it by service name; `down -v` leaves no container, network, volume, veth or rule.
# Traffic goes only to loopback and to this test's containers.
#   tests/e2e/compose.sh [path/to/berthd]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BERTHD=${1:-$ROOT/target/debug/berthd}
DOCKER=/usr/local/bin/docker; [ -x $DOCKER ] || DOCKER=$(command -v docker || true)
command -v docker-compose >/dev/null || { echo "FAIL compose.sh: docker-compose missing (scripts/deps.sh --test installs it)"; exit 1; }
dir=$(mktemp -d /tmp/berth-compose-e2e.XXXXXX)
sock=$dir/berth.sock
BR=bk$$
export DOCKER_CONFIG=$dir/docker-config DOCKER_HOST=unix://$sock COMPOSE_HTTP_TIMEOUT=60
mkdir -p "$DOCKER_CONFIG"
D() { timeout -k 5 60 "$DOCKER" "$@"; }
C() { (cd "$dir/proj" && timeout -k 5 120 docker-compose -p bt "$@"); }
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
get() { for _ in $(seq 50); do curl -fsS --max-time 2 "http://$1/" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

"$BERTHD" --root "$dir/root" --exec-root "$dir/run" -H "unix://$sock" --bridge "$BR" \
    --pidfile "$dir/berthd.pid" >"$dir/berthd.log" 2>&1 &
bpid=$!
for _ in $(seq 200); do [ -S "$sock" ] && D version >/dev/null 2>&1 && break; kill -0 "$bpid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$bpid" 2>/dev/null || { fail "berthd start"; cat "$dir/berthd.log"; exit 1; }
ref=$("$ROOT/tests/peers/mkimage.sh" "$dir/img" berth-compose/busybox:latest)
D load -q -i "$dir/img/docker-archive.tar" >/dev/null || { fail "load the busybox image"; exit 1; }

P=$(free_port)
mkdir -p "$dir/proj"
cat >"$dir/proj/docker-compose.yml" <<YML
version: "3.7"
services:
  web:
    image: $ref
    command: sh -c 'mkdir -p /data/www && echo hello-compose > /data/www/index.html && exec httpd -f -p 80 -h /data/www'
    ports: ["127.0.0.1:$P:80"]
    volumes: ["webdata:/data"]
  client:
    image: $ref
    command: sh -c 'for i in \$\$(seq 50); do wget -q -O /tmp/got http://web/ && break; sleep 0.2; done; cat /tmp/got; sleep 600'
volumes:
  webdata:
YML
out=$(C up -d 2>&1); rc=$?
check "compose up" 0 "$rc"; [ $rc -eq 0 ] || echo "$out"
check "the published port serves on 127.0.0.1" "hello-compose" "$(get "127.0.0.1:$P")"
got=""
for _ in $(seq 50); do got=$(C logs --no-color client 2>/dev/null | grep -o hello-compose | head -n 1); [ -n "$got" ] && break; sleep 0.2; done
check "client reaches web by service name" "hello-compose" "$got"
contains "compose ps lists both" "bt_client_1" "$(C ps 2>&1)"
contains "the project network exists" "bt_default" "$(D network ls --format '{{.Name}}')"
netid=$(D network inspect -f '{{.Id}}' bt_default 2>/dev/null | cut -c1-12)
# (compose passes the short ID as an alias too: inspect names it once, as dockerd.)
names=$(D inspect -f '{{json (index .NetworkSettings.Networks "bt_default").DNSNames}}' bt_web_1)
check "DNSNames without duplicates" "" "$(echo "$names" | python3 -c 'import json,sys; n=json.load(sys.stdin); print("" if n and len(n)==len(set(n)) else n)')"
contains "the named volume exists" "bt_webdata" "$(D volume ls --format '{{.Name}}')"
# The volume outlives the containers: down (without -v) then up again keeps the data.
C exec -T web sh -c 'echo kept > /data/www/kept.txt' >/dev/null 2>&1
C down >/dev/null 2>&1
contains "down keeps the named volume" "bt_webdata" "$(D volume ls --format '{{.Name}}')"
C up -d web >/dev/null 2>&1
check "data in the volume survives down/up" "kept" "$(C exec -T web cat /data/www/kept.txt 2>&1 | tr -d '\r')"
out=$(C down -v 2>&1); rc=$?
check "compose down -v" 0 "$rc"; [ $rc -eq 0 ] || echo "$out"
check "no container left" "" "$(D ps -aq)"
check "no project network left" "" "$(D network ls --format '{{.Name}}' | grep '^bt_')"
check "no project volume left" "" "$(D volume ls -q | grep '^bt_')"
check "the project's bridge is gone" "" "$(ip -br link show "br-$netid" 2>/dev/null)"
check "no veth left on the default bridge" "" "$(ip -o link show master "$BR" 2>/dev/null)"
echo "# compose.sh: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
