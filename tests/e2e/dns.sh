#!/bin/bash
# A container's /etc/resolv.conf and /etc/hosts through the real docker CLI (28.x) on the
# default bridge (a private berthd with its own root, exec root, socket and bridge dn<pid>):
# the host's nameservers without localhost ones, --dns/--dns-search/--dns-option replacing
# what they name, --add-host name:ip and name:host-gateway (the bridge's gateway), the
# container's own address and hostname; host and none modes. Nothing is resolved: the files
# are read with cat in a busybox container. Once berthd has user-defined networks: names and
# aliases resolve through the embedded resolver, also while berthd is killed (-9) and after.
#   tests/e2e/dns.sh [path/to/berthd]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BERTHD=${1:-$ROOT/target/debug/berthd}
DOCKER=/usr/local/bin/docker; [ -x $DOCKER ] || DOCKER=$(command -v docker || true)
[ -x "$DOCKER" ] || { echo "SKIP dns.sh: no docker CLI"; exit 0; }
command -v nft >/dev/null || { echo "FAIL dns.sh: nft missing (scripts/deps.sh installs nftables)"; exit 1; }
dir=$(mktemp -d /tmp/berth-dns-e2e.XXXXXX)
sock=$dir/berth.sock
BR=dn$$
export DOCKER_CONFIG=$dir/docker-config
mkdir -p "$DOCKER_CONFIG"
D() { timeout -k 5 60 "$DOCKER" -H "unix://$sock" "$@"; }
PASS=0; FAIL=0
pass() { PASS=$((PASS+1)); echo "PASS $*"; }
fail() { FAIL=$((FAIL+1)); echo "FAIL $*"; }
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2] got [$3]"; fi; }
contains() { case "$3" in *"$2"*) pass "$1";; *) fail "$1: [$2] not in [$3]";; esac; }
lacks() { case "$3" in *"$2"*) fail "$1: [$2] in [$3]";; *) pass "$1";; esac; }
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

"$BERTHD" --root "$dir/root" --exec-root "$dir/run" -H "unix://$sock" --bridge "$BR" \
    --pidfile "$dir/berthd.pid" >"$dir/berthd.log" 2>&1 &
bpid=$!
for _ in $(seq 200); do [ -S "$sock" ] && D version >/dev/null 2>&1 && break; kill -0 "$bpid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$bpid" 2>/dev/null || { fail "berthd start"; cat "$dir/berthd.log"; exit 1; }
ref=$("$ROOT/tests/peers/mkimage.sh" "$dir/img" berth-dns/busybox:latest)
D load -q -i "$dir/img/docker-archive.tar" >/dev/null || { fail "load the busybox image"; exit 1; }
gw=$(ip -o -4 addr show "$BR" | awk '{print $4}' | sed 's|/.*||')

# The host's nameservers a container can reach (what dockerd keeps): not 127.x, not ::1, not
# IPv6 (the bridge is IPv4); systemd-resolved's stub replaced by its real file.
src=/etc/resolv.conf
grep -q '^nameserver 127.0.0.53' $src && [ -r /run/systemd/resolve/resolv.conf ] && src=/run/systemd/resolve/resolv.conf
want=$(awk '$1=="nameserver" && $2 !~ /^127\./ && $2 !~ /:/ {print "nameserver " $2}' $src)
[ -n "$want" ] || want=$'nameserver 8.8.8.8\nnameserver 8.8.4.4'
got=$(D run --rm --network bridge "$ref" cat /etc/resolv.conf)
check "bridge: the host's reachable nameservers" "$want" "$(echo "$got" | grep '^nameserver')"
lacks "bridge: no localhost nameserver" "nameserver 127." "$got"

# --dns, --dns-search, --dns-option replace what they name.
got=$(D run --rm --dns 192.0.2.1 --dns 192.0.2.2 --dns-search a.test --dns-search b.test \
    --dns-option ndots:2 --dns-option timeout:1 "$ref" cat /etc/resolv.conf)
check "--dns: nameservers" $'nameserver 192.0.2.1\nnameserver 192.0.2.2' "$(echo "$got" | grep '^nameserver')"
check "--dns-search: search" "search a.test b.test" "$(echo "$got" | grep '^search')"
check "--dns-option: options" "options ndots:2 timeout:1" "$(echo "$got" | grep '^options')"
c=$(D create --dns 192.0.2.9 --dns-search x.test --dns-option ndots:4 "$ref" true)
check "inspect: HostConfig.Dns" "[192.0.2.9]" "$(D inspect -f '{{.HostConfig.Dns}}' "$c")"
check "inspect: HostConfig.DnsSearch/DnsOptions" "[x.test] [ndots:4]" \
    "$(D inspect -f '{{.HostConfig.DnsSearch}} {{.HostConfig.DnsOptions}}' "$c")"
D rm "$c" >/dev/null

# --add-host name:ip and name:host-gateway, and the container's own line.
hosts=$(D run --rm --hostname box1 --add-host db.test:192.0.2.5 --add-host "v6.test:[2001:db8::7]" \
    --add-host host.docker.internal:host-gateway "$ref" sh -c 'cat /etc/hosts; echo "own $(ip -4 -o addr show eth0)"')
contains "--add-host name:ip" $'192.0.2.5\tdb.test' "$hosts"
contains "--add-host name:[ipv6]" $'2001:db8::7\tv6.test' "$hosts"
contains "--add-host host-gateway is the bridge's gateway $gw" $'\n'"$gw"$'\thost.docker.internal' "$hosts"
contains "hosts: localhost" $'127.0.0.1\tlocalhost' "$hosts"
ownip=$(echo "$hosts" | sed -n 's/^own .* inet \([0-9.]*\)\/.*/\1/p')
contains "hosts: the container's address and hostname" $'\n'"$ownip"$'\tbox1' "$hosts"
out=$(D run --rm --add-host gw:host-gateway "$ref" sh -c "ping -c 1 -W 5 gw >/dev/null && echo reached" 2>&1)
check "host-gateway reaches the host" "reached" "$out"

# container:<c>: c's files (its namespace, and resolver if any, are shared).
first=$(D run -d --dns 192.0.2.33 --add-host shared.test:192.0.2.34 "$ref" sleep 60)
got=$(D run --rm --network "container:$first" "$ref" cat /etc/resolv.conf /etc/hosts)
check "container: mode shares resolv.conf and hosts" "$(D exec "$first" cat /etc/resolv.conf /etc/hosts)" "$got"
contains "container: mode sees the other's --dns" "nameserver 192.0.2.33" "$got"
D rm -f "$first" >/dev/null

# Host mode: the host's files (plus --add-host); none: localhost only, the host's nameservers.
check "host: the host's resolv.conf" "$(cat /etc/resolv.conf)" "$(D run --rm --network host "$ref" cat /etc/resolv.conf)"
hh=$(D run --rm --network host --add-host gw:host-gateway "$ref" cat /etc/hosts)
contains "host: the host's /etc/hosts" "$(head -n 1 /etc/hosts)" "$hh"
contains "host: host-gateway" "$gw"$'\tgw' "$hh"
nh=$(D run --rm --network none "$ref" cat /etc/hosts /etc/resolv.conf)
contains "none: localhost" $'127.0.0.1\tlocalhost' "$nh"
check "none: the host's reachable nameservers" "$want" "$(echo "$nh" | grep '^nameserver')"

# User-defined networks (once berthd has them; SKIP before): the embedded resolver answers
# names and aliases of the network, also while berthd is killed and after its restart.
NET=dnsnet$$
if D network create "$NET" >/dev/null 2>&1; then
    web=$(D run -d --name "web$$" --network "$NET" --network-alias front "$ref" sleep 300)
    wip=$(D inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" "$web")
    cli=$(D run -d --network "$NET" "$ref" sleep 300)
    rc=$(D exec "$cli" cat /etc/resolv.conf)
    check "user network: resolv.conf names the embedded resolver" "nameserver 127.0.0.11" "$(echo "$rc" | grep '^nameserver')"
    contains "user network: ndots:0" "ndots:0" "$(echo "$rc" | grep '^options')"
    contains "user network: a container by name" "Address: $wip" "$(D exec "$cli" nslookup "web$$" 2>&1)"
    contains "user network: by alias, any case" "Address: $wip" "$(D exec "$cli" nslookup FRONT 2>&1)"
    out=$(D run --rm "$ref" timeout 3 nslookup "web$$" 127.0.0.11 2>&1)
    lacks "default bridge: no resolver, no name" "Address: $wip" "$out"
    # berthd killed: the monitor still answers (asked from the client's namespace).
    cpid=$(D inspect -f '{{.State.Pid}}' "$cli")
    kill -KILL "$bpid"; wait "$bpid" 2>/dev/null; bpid=
    contains "berthd down: the name still resolves" "Address: $wip" \
        "$(nsenter -t "$cpid" -n busybox nslookup "web$$" 127.0.0.11 2>&1)"
    "$BERTHD" --root "$dir/root" --exec-root "$dir/run" -H "unix://$sock" --bridge "$BR" \
        --pidfile "$dir/berthd.pid" >>"$dir/berthd.log" 2>&1 &
    bpid=$!
    for _ in $(seq 200); do D version >/dev/null 2>&1 && break; sleep 0.05; done
    contains "berthd back: the name resolves" "Address: $wip" "$(D exec "$cli" nslookup "web$$" 2>&1)"
    D rm -f "$web" "$cli" >/dev/null
    D network rm "$NET" >/dev/null
else
    echo "SKIP user-network name resolution (berthd has no user-defined networks yet)"
fi

kill -TERM "$bpid"; wait "$bpid" 2>/dev/null; bpid=
echo "# dns.sh: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
