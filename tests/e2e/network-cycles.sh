#!/bin/bash
# 200 `docker run --rm` cycles on a user network leave nothing behind (issue 13's acceptance):
# each container publishes a port on 127.0.0.1 (a DNAT rule) and has a network alias (a DNS
# entry); two clients cycle at once (connects and disconnects interleave). Afterwards: no veth
# on the network's bridge or anywhere under this test's names, no rule in the network's
# nftables table, no address allocated (inspect, and the IPAM file once written), no endpoint
# or attachment file, an empty DNS entries file (<exec-root>/network/dns/<id>.json); and once
# the network is removed, no bridge, table or DNS file. A private berthd (own root, exec root,
# socket, default bridge bc<pid>); traffic only on loopback.
#   [CYCLES=200] tests/e2e/network-cycles.sh [path/to/berthd]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BERTHD=${1:-$ROOT/target/debug/berthd}
CYCLES=${CYCLES:-200}
NET_TAG=c
. "$ROOT/tests/e2e/net-lib.sh"
bridges=$BR
start_berthd
ref=$("$ROOT/tests/peers/mkimage.sh" "$dir/img" berth-netc/busybox:latest)
D load -q -i "$dir/img/docker-archive.tar" >/dev/null || { fail "load the busybox image"; exit 1; }
nid=$(D network create "$N") || { fail "network create"; exit 1; }
nbr=br-${nid:0:12}; bridges="$bridges $nbr"
ipam=$dir/root/network/ipam/$nid.json
dnsf=$dir/run/network/dns/$nid.json
check "the network's bridge exists" "$nbr" "$(ip -br link show "$nbr" 2>/dev/null | awk '{print $1}')"

# Two clients, CYCLES runs in all; each run publishes a port and has an alias.
t0=$(date +%s)
worker() {
    local w=$1 i
    for i in $(seq "$w" 2 "$CYCLES"); do
        D run --rm --network "$N" --network-alias "cyc$i" -p 127.0.0.1::80 "$ref" true >/dev/null 2>"$dir/err$w" ||
            { echo "cycle $i: $(cat "$dir/err$w")" >>"$dir/failures"; }
    done
}
worker 1 & w1=$!
worker 2 & w2=$!
# Meanwhile the network is in use: its DNS file names containers now and then.
seen=0
while kill -0 $w1 2>/dev/null || kill -0 $w2 2>/dev/null; do
    grep -q '"cyc' "$dnsf" 2>/dev/null && seen=1
    sleep 0.2
done
wait $w1 $w2
check "$CYCLES cycles succeeded ($(( $(date +%s) - t0 ))s)" "" "$(head -n 3 "$dir/failures" 2>/dev/null)"
check "the DNS file named the running containers" 1 "$seen"
# (The last exit's disconnect may still be under way when the client returns.)
for _ in $(seq 50); do
    [ -z "$(ls "$dir/root/network/user/$nid/endpoints")" ] && break
    sleep 0.1
done
check "no container left" "" "$(D ps -aq)"
check "no veth on the network's bridge" "" "$(ip -o link show master "$nbr" 2>/dev/null)"
check "no veth under berth's names for this network" "" \
    "$(ip -o link show 2>/dev/null | grep -o "vb[0-9a-f]\{7\}${nid:0:6}")"
check "no DNAT rule left in berth-$nbr" "" \
    "$(nft -a list chain ip "berth-$nbr" ports 2>&1 | grep -E 'dnat|comment')"
check "no endpoint in inspect" "" "$(D network inspect -f '{{range .Containers}}{{.Name}}{{end}}' "$N")"
check "no endpoint file" "" "$(ls "$dir/root/network/user/$nid/endpoints")"
check "no attachment file" "" "$(ls "$dir/root/network/containers" 2>/dev/null)"
check "DNS entries file empty" "[]" "$(cat "$dnsf" 2>&1)"
# The IPAM file is written 20 ms after a change, off the requests' path.
sleep 0.5
check "no address allocated in the IPAM file" "0" \
    "$(python3 -c 'import json,sys; print(sum(len(p["allocated"]) for p in json.load(open(sys.argv[1]))["pools"]))' "$ipam" 2>&1)"
D network rm "$N" >/dev/null; rc=$?
check "network rm" 0 "$rc"
check "bridge gone" "" "$(ip -br link show "$nbr" 2>/dev/null)"
check "table gone" "" "$(nft list tables 2>/dev/null | grep -w "berth-$nbr")"
check "DNS file gone" "" "$(ls "$dnsf" 2>/dev/null)"
check "IPAM file gone" "" "$(ls "$ipam" 2>/dev/null)"
echo "network-cycles.sh: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
