#!/bin/bash
# IPv6 on user-defined bridge networks through the real docker CLI: a private berthd (own root,
# exec root, socket, default bridge b6<pid>); `network create --ipv6` with a given ULA subnet
# and gateway and without one (a /64 of the host's fd00::/8 ULA prefix); an overlapping
# subnet refused; inspect's EnableIPv6, IPAM.Config, GlobalIPv6Address/PrefixLen/IPv6Gateway;
# the bridge's and eth0's addresses (not tentative), the IPv6 default route; two containers
# that ping6 and wget each other by address and by name/alias (AAAA from the embedded DNS);
# --ip6 on run and on connect; the ip6 nft table (masquerade; --internal: drops, no route);
# a berthd restart (live-restore); rm leaves no bridge, table, address, veth.
# Only fd00::/8 subnets this test makes; traffic only between this test's containers.
#   tests/e2e/network-v6.sh [path/to/berthd]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BERTHD=${1:-$ROOT/target/debug/berthd}
BERTH=$(dirname "$BERTHD")/berth
if [ "$(sysctl -n net.ipv6.conf.all.disable_ipv6 2>/dev/null)" != 0 ]; then
    echo "SKIP network-v6.sh: IPv6 is disabled on this host (net.ipv6.conf.all.disable_ipv6)"; exit 0
fi
NET_TAG=6
. "$ROOT/tests/e2e/net-lib.sh"
bridges=$BR
start_berthd
ref=$("$ROOT/tests/peers/mkimage.sh" "$dir/img" berth-net6/busybox:latest)
D load -q -i "$dir/img/docker-archive.tar" >/dev/null || { fail "load the busybox image"; exit 1; }
HTTPD='mkdir -p /www && echo hello-v6 > /www/index.html && exec httpd -f -p 80 -h /www'

# A ULA subnet of this test's own (a 16-bit word from the pid).
W=$(printf '%x' $(( ($$ * 7919) % 65536 )))
SUB6=fd6b:$W:77::/64
GW6=fd6b:$W:77::fe
out=$(D network create --ipv6 --subnet "$SUB6" --gateway "$GW6" "$N" 2>&1); rc=$?
check "create --ipv6 --subnet: exit 0" 0 "$rc"
nid=$(D network inspect -f '{{.Id}}' "$N")
nbr=br-${nid:0:12}; bridges="$bridges $nbr"
check "inspect: EnableIPv6" "true" "$(D network inspect -f '{{.EnableIPv6}}' "$N")"
cfg=$(D network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}};{{end}}' "$N")
contains "inspect: IPv6 IPAM.Config entry" "$SUB6 $GW6;" "$cfg"
contains "inspect: IPv4 IPAM.Config entry too" "." "${cfg%%;*}"
contains "the bridge has the IPv6 gateway" "$GW6/64" "$(ip -o -6 addr show dev "$nbr" 2>&1)"
lacks "the bridge's gateway is not tentative" "tentative" "$(ip -o -6 addr show dev "$nbr" scope global 2>&1)"
t6=$(nft list table ip6 "berth-$nbr" 2>&1)
contains "ip6 table masquerades the subnet" "ip6 saddr fd6b:$W:77::/64 oifname != \"$nbr\" masquerade" "$t6"
contains "ip6 table: only replies and DNATed traffic come in" "drop" "$t6"

out=$(D network create --ipv6 --subnet "fd6b:$W:77:0:8000::/80" other$$ 2>&1); rc=$?
check "overlapping IPv6 subnet refused" 1 "$rc"; contains "overlap: message" "overlaps" "$out"
out=$(D network create --subnet "fd6b:$W:78::/64" nov6$$ 2>&1); rc=$?
check "an IPv6 subnet without --ipv6 refused" 1 "$rc"

web=$(D run -d --name web$$ --network "$N" --network-alias webalias "$ref" sh -c "$HTTPD")
f() { D inspect -f "{{(index .NetworkSettings.Networks \"$N\").$1}}" "$web"; }
wip6=$(f GlobalIPv6Address)
contains "inspect: GlobalIPv6Address in the subnet" "fd6b:$W:77::" "$wip6"
check "inspect: GlobalIPv6PrefixLen" "64" "$(f GlobalIPv6PrefixLen)"
check "inspect: IPv6Gateway" "$GW6" "$(f IPv6Gateway)"
check "inspect: top-level GlobalIPv6Address" "$wip6" "$(D inspect -f '{{.NetworkSettings.GlobalIPv6Address}}' "$web")"
check "network inspect: the container's IPv6Address" "$wip6/64" "$(D network inspect -f '{{range .Containers}}{{.IPv6Address}}{{end}}' "$N")"
lacks "the gateway is never handed out" "$GW6" "$wip6"
addr=$(D exec "$web" ip -o -6 addr show dev eth0 scope global 2>&1)
contains "eth0 has the IPv6 address" "$wip6/64" "$addr"
lacks "eth0's address is usable at once (not tentative)" "tentative" "$addr"
contains "IPv6 default route via the gateway" "default via $GW6 dev eth0" "$(D exec "$web" ip -6 route 2>&1)"
contains "DNS entries file: ipv6" "\"ipv6\":\"$wip6\"" "$(cat "$dir/run/network/dns/$nid.json" 2>&1)"

out=$(D run --rm --network "$N" "$ref" sh -c "ping6 -c 1 -W 3 $wip6 >/dev/null && echo ping-ok; timeout 5 wget -q -O - http://[$wip6]/" 2>&1)
contains "ping6 by address" "ping-ok" "$out"
contains "wget by IPv6 address" "hello-v6" "$out"
out=$(D run --rm --network "$N" "$ref" sh -c "nslookup -type=AAAA web$$ 127.0.0.11; nslookup -type=AAAA webalias 127.0.0.11" 2>&1)
contains "AAAA for the container's name" "$wip6" "$out"
check "AAAA for the alias too" 2 "$(printf '%s\n' "$out" | grep -c "$wip6")"
out=$(D run --rm --network "$N" "$ref" sh -c "ping6 -c 1 -W 3 web$$ >/dev/null && echo ping-ok; timeout 5 wget -q -O - http://webalias/" 2>&1)
contains "ping6 by name" "ping-ok" "$out"
contains "wget by alias" "hello-v6" "$out"

IP6=fd6b:$W:77::1:77
out=$(D run --rm --network "$N" --ip6 "$IP6" "$ref" sh -c "ip -o -6 addr show dev eth0 scope global; timeout 5 wget -q -O - http://[$wip6]/" 2>&1)
contains "--ip6 honoured" "$IP6/64" "$out"
contains "--ip6 container reaches the web" "hello-v6" "$out"
out=$(D run --rm --network "$N" --ip6 "$wip6" "$ref" true 2>&1); rc=$?
check "--ip6 taken: refused" 125 "$rc"; contains "--ip6 taken: message" "in use" "$out"
out=$(D run --rm --network "$N" --ip6 "$GW6" "$ref" true 2>&1); rc=$?
check "--ip6 of the gateway: refused" 125 "$rc"
out=$(D run --rm --network "$N" --ip6 fd6b:$W:99::5 "$ref" true 2>&1); rc=$?
check "--ip6 outside the subnet: refused" 125 "$rc"; contains "--ip6 outside: message" "not in the subnet" "$out"

c=$(D run -d --name c$$ "$ref" sleep 300)
D network connect --ip6 "fd6b:$W:77::c0" --alias calias "$N" "$c"; rc=$?
check "connect --ip6: exit 0" 0 "$rc"
contains "after connect: eth1 with the IPv6 address" "fd6b:$W:77::c0/64" "$(D exec "$c" ip -o -6 addr show dev eth1 2>&1)"
check "connect: reaches the web over IPv6" "hello-v6" "$(D exec "$c" timeout 5 wget -q -O - "http://[$wip6]/" 2>&1)"
D network disconnect "$N" "$c"; rc=$?
check "disconnect: exit 0" 0 "$rc"
D rm -f "$c" >/dev/null

# No subnet given: a /64 of the host's ULA prefix, clear of the host's routes.
A=a6$$
D network create --ipv6 "$A" >/dev/null; rc=$?
check "create --ipv6 without a subnet: exit 0" 0 "$rc"
aid=$(D network inspect -f '{{.Id}}' "$A"); abr=br-${aid:0:12}; bridges="$bridges $abr"
asub=$(D network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' "$A")
contains "picked: a ULA /64" "::/64" "$asub"
case "$asub" in *" fd"*|fd*) pass "picked: in fd00::/8";; *) fail "picked: in fd00::/8: [$asub]";; esac
lacks "picked: not the host's own fd00::/64" " fd00::/64" " $asub"
aout=$(D run --rm --network "$A" "$ref" ip -o -6 addr show dev eth0 scope global 2>&1)
contains "picked: the container has an address in it" "/64" "$aout"
D network rm "$A" >/dev/null

# --internal with IPv6: no IPv6 route out, and the ip6 table drops what would leave.
I=i6$$
D network create --ipv6 --internal --subnet "fd6b:$W:79::/64" "$I" >/dev/null
iid=$(D network inspect -f '{{.Id}}' "$I"); ibr=br-${iid:0:12}; bridges="$bridges $ibr"
it6=$(nft list table ip6 "berth-$ibr" 2>&1)
lacks "internal: no IPv6 masquerade" "masquerade" "$it6"
contains "internal: IPv6 leaving the bridge is dropped" "iifname \"$ibr\" oifname != \"$ibr\" drop" "$it6"
out=$(D run --rm --network "$I" "$ref" sh -c "ip -6 route; ping6 -c 1 -W 2 $wip6 >/dev/null 2>&1 && echo reached" 2>&1)
lacks "internal: no IPv6 default route" "default" "$out"
lacks "internal: other networks unreachable over IPv6" "reached" "$out"
D network rm "$I" >/dev/null
check "internal rm: ip6 table gone" "" "$(nft list tables ip6 2>/dev/null | grep "berth-$ibr")"

kill -KILL "$bpid"; wait "$bpid" 2>/dev/null; bpid=
start_berthd
check "after restart: same IPv6 address" "$wip6" "$(f GlobalIPv6Address)"
out=$(D run --rm --network "$N" "$ref" sh -c "timeout 5 wget -q -O - http://[$wip6]/; nslookup -type=AAAA web$$ 127.0.0.11" 2>&1)
contains "after restart: reachable over IPv6" "hello-v6" "$out"
contains "after restart: AAAA answered" "$wip6" "$out"
D rm -f "$web" >/dev/null

for i in $(seq 20); do D run --rm --network "$N" "$ref" true >/dev/null 2>&1 || { fail "cycle $i"; break; }; done
sleep 0.2
check "cycles: no veth on the bridge" "" "$(ip -o link show master "$nbr" 2>/dev/null)"
check "cycles: DNS entries empty" "[]" "$(cat "$dir/run/network/dns/$nid.json")"
out=$(D run --rm --network "$N" --ip6 "$IP6" "$ref" true 2>&1); rc=$?
check "addresses freed: --ip6 given again" 0 "$rc"
D network rm "$N" >/dev/null; rc=$?
check "rm: exit 0" 0 "$rc"
check "rm: bridge gone" "" "$(ip -br link show "$nbr" 2>/dev/null)"
check "rm: ip table gone" "" "$(nft list tables ip 2>/dev/null | grep "berth-$nbr")"
check "rm: ip6 table gone" "" "$(nft list tables ip6 2>/dev/null | grep "berth-$nbr")"
check "rm: no IPv6 address left on the host" "" "$(ip -o -6 addr show | grep "fd6b:$W:")"
check "rm: no IPv6 route left on the host" "" "$(ip -6 route show | grep "fd6b:$W:")"

echo "# network-v6.sh: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
