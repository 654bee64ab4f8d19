#!/bin/bash
# User-defined bridge networks through the real docker CLI: a private berthd (own root, exec
# root, socket, default bridge bu<pid>); network create with --subnet/--gateway/--ip-range,
# ls/inspect, two containers reaching each other by address, --ip, --network-alias (inspect,
# the DNS entries file), a container on two networks, connect/disconnect of a running
# container (the interface appears and goes), --internal with no route out, rm refused while
# in use, prune, a berthd restart with a container running (live-restore), 50 run/rm cycles,
# and nothing left (veth, bridge, nft table, address). Traffic only between this test's
# containers.
#   tests/e2e/network-user.sh [path/to/berthd]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BERTHD=${1:-$ROOT/target/debug/berthd}
BERTH=$(dirname "$BERTHD")/berth
NET_TAG=u
. "$ROOT/tests/e2e/net-lib.sh"
start_berthd
ref=$("$ROOT/tests/peers/mkimage.sh" "$dir/img" berth-netu/busybox:latest)
D load -q -i "$dir/img/docker-archive.tar" >/dev/null || { fail "load the busybox image"; exit 1; }
HTTPD='mkdir -p /www && echo hello-user > /www/index.html && exec httpd -f -p 80 -h /www'

# Built-in networks listed as dockerd lists them.
ls=$(D network ls --format '{{.Name}} {{.Driver}} {{.Scope}}')
contains "ls: bridge" "bridge bridge local" "$ls"
contains "ls: host" "host host local" "$ls"
contains "ls: none" "none null local" "$ls"

# A user network with the subnet, gateway and range asked for (a test-net range no host uses).
out=$(D network create --subnet 10.213.$(( $$ % 200 )).0/24 --gateway 10.213.$(( $$ % 200 )).254 \
    --ip-range 10.213.$(( $$ % 200 )).128/25 --label team=e2e "$N" 2>&1); rc=$?
check "create: exit 0" 0 "$rc"
SUB=10.213.$(( $$ % 200 ))
nid=$(D network inspect -f '{{.Id}}' "$N")
nbr=br-${nid:0:12}; bridges="$bridges $nbr"
check "inspect: subnet" "$SUB.0/24" "$(D network inspect -f '{{(index .IPAM.Config 0).Subnet}}' "$N")"
check "inspect: gateway" "$SUB.254" "$(D network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$N")"
check "inspect: ip-range" "$SUB.128/25" "$(D network inspect -f '{{(index .IPAM.Config 0).IPRange}}' "$N")"
check "inspect: driver, scope, label" "bridge local e2e" "$(D network inspect -f '{{.Driver}} {{.Scope}} {{.Labels.team}}' "$N")"
contains "its own bridge with the gateway" "$SUB.254/24" "$(ip -o -4 addr show "$nbr" 2>&1)"
contains "its own nft table masquerades" "masquerade" "$(nft list table ip "berth-$nbr" 2>&1)"
check "ls --filter name" "$N" "$(D network ls -q --filter name="$N" --format '{{.Name}}')"
check "ls --filter label" "$N" "$(D network ls --filter label=team=e2e --format '{{.Name}}')"
check "ls --filter type=custom" "$N" "$(D network ls --filter type=custom --format '{{.Name}}')"
out=$(D network create "$N" 2>&1); rc=$?
check "duplicate name refused" 1 "$rc"; contains "duplicate name: message" "already exists" "$out"
out=$(D network create --subnet "$SUB.0/25" other$$ 2>&1); rc=$?
check "overlapping subnet refused" 1 "$rc"; contains "overlap: message" "overlaps" "$out"

# Two containers reach each other by address; --ip; --network-alias.
web=$(D run -d --name web$$ --network "$N" --network-alias webalias "$ref" sh -c "$HTTPD")
wip=$(D inspect -f "{{(index .NetworkSettings.Networks \"$N\").IPAddress}}" "$web")
contains "address from the ip-range" "$SUB.1" "$wip"
check "inspect: NetworkID" "$nid" "$(D inspect -f "{{(index .NetworkSettings.Networks \"$N\").NetworkID}}" "$web")"
check "inspect: gateway" "$SUB.254" "$(D inspect -f "{{(index .NetworkSettings.Networks \"$N\").Gateway}}" "$web")"
check "inspect: aliases" "[webalias]" "$(D inspect -f "{{(index .NetworkSettings.Networks \"$N\").Aliases}}" "$web")"
contains "inspect: DNSNames" "web$$ webalias" "$(D inspect -f "{{(index .NetworkSettings.Networks \"$N\").DNSNames}}" "$web")"
dns=$(cat "$dir/run/network/dns/$nid.json" 2>&1)
contains "DNS entries file names the container" "\"name\":\"web$$\"" "$dns"
contains "DNS entries file: alias and address" "\"aliases\":[\"webalias\"" "$dns"
contains "DNS entries file: address" "\"ipv4\":\"$wip\"" "$dns"
out=$(D run --rm --network "$N" --ip "$SUB.77" "$ref" sh -c "ip -4 -o addr show eth0; timeout 5 wget -q -O - http://$wip/" 2>&1)
contains "--ip honoured" "$SUB.77/24" "$out"
contains "container to container on a user network" "hello-user" "$out"
out=$(D run --rm --network "$N" --ip "$wip" "$ref" true 2>&1); rc=$?
check "--ip taken: refused" 125 "$rc"; contains "--ip taken: message" "in use" "$out"
out=$(D run --rm --network "$N" --ip 10.250.0.9 "$ref" true 2>&1); rc=$?
check "--ip outside the subnet: refused" 125 "$rc"; contains "--ip outside: message" "not in the subnet" "$out"
contains "inspect lists the container" "web$$" "$(D network inspect -f '{{range .Containers}}{{.Name}} {{end}}' "$N")"

# container:NAME shares the web's namespace (its address on the user network).
out=$(D run --rm --network "container:web$$" "$ref" ip -4 -o addr show eth0 2>&1)
contains "container:NAME mode sees the user network's address" "$wip/24" "$out"

# The default bridge cannot reach the user network (isolation between bridges).
# (wget is not the container's PID 1 here: that one would ignore timeout's SIGTERM.)
out=$(D run --rm "$ref" sh -c "timeout 3 wget -q -O - http://$wip/; echo rc=\$?" 2>&1)
lacks "default bridge isolated from the user network" "hello-user" "$out"
contains "default bridge isolated: wget timed out (not a crash)" "rc=143" "$out"

# connect/disconnect a running container: the interface appears and goes.
c=$(D run -d --name c$$ "$ref" sleep 300)
check "before connect: eth0 only" "eth0" "$(D exec "$c" sh -c "ls /sys/class/net | grep eth | tr '\n' ' ' | xargs")"
D network connect --ip "$SUB.200" --alias calias "$N" "$c"; rc=$?
check "connect: exit 0" 0 "$rc"
contains "after connect: eth1 with the address" "$SUB.200/24" "$(D exec "$c" ip -4 -o addr show eth1 2>&1)"
check "connect: reaches the web" "hello-user" "$(D exec "$c" timeout 5 wget -q -O - "http://$wip/" 2>&1)"
check "connect: two networks in inspect" "bridge $N " "$(D inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$c")"
out=$(D network connect "$N" "$c" 2>&1); rc=$?
check "connect twice refused" 1 "$rc"
D network disconnect "$N" "$c"; rc=$?
check "disconnect: exit 0" 0 "$rc"
check "after disconnect: eth1 gone" "" "$(D exec "$c" sh -c 'ls /sys/class/net | grep eth1')"
check "after disconnect: one network in inspect" "bridge " "$(D inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$c")"
lacks "after disconnect: DNS entry gone" "calias" "$(cat "$dir/run/network/dns/$nid.json")"
D network connect "$N" "$c" >/dev/null; D stop -t 0 "$c" >/dev/null
D network disconnect "$N" "$c" >/dev/null; rc=$?
check "disconnect a stopped container" 0 "$rc"
D start "$c" >/dev/null
check "restarted after disconnect: eth0 only" "eth0" "$(D exec "$c" sh -c "ls /sys/class/net | grep eth | tr '\n' ' ' | xargs")"
D rm -f "$c" >/dev/null

# --internal: no route out, no masquerade.
I=ni$$
D network create --internal "$I" >/dev/null
iid=$(D network inspect -f '{{.Id}}' "$I"); ibr=br-${iid:0:12}; bridges="$bridges $ibr"
check "inspect: internal" "true" "$(D network inspect -f '{{.Internal}}' "$I")"
lacks "internal: no masquerade" "masquerade" "$(nft list table ip "berth-$ibr" 2>&1)"
out=$(D run --rm --network "$I" "$ref" sh -c 'ip route; ping -c 1 -W 2 '"$wip"' >/dev/null 2>&1 && echo reached' 2>&1)
lacks "internal: no default route" "default" "$out"
lacks "internal: other networks unreachable" "reached" "$out"

# rm refused while in use; prune spares what is in use.
out=$(D network rm "$N" 2>&1); rc=$?
check "rm in use refused" 1 "$rc"; contains "rm in use: message" "active endpoints" "$out"
out=$(D network prune -f 2>&1)
contains "prune removes the unused network" "$I" "$out"
lacks "prune spares the network in use" "$N" "$out"
check "pruned: bridge gone" "" "$(ip -br link show "$ibr" 2>/dev/null)"
check "pruned: table gone" "" "$(nft list tables 2>/dev/null | grep "berth-$ibr")"

# A berthd restart while a container runs on the network: kept, reachable, table back.
kill -KILL "$bpid"; wait "$bpid" 2>/dev/null; bpid=
start_berthd
check "after restart: still running" "true" "$(D inspect -f '{{.State.Running}}' "$web")"
check "after restart: same address" "$wip" "$(D inspect -f "{{(index .NetworkSettings.Networks \"$N\").IPAddress}}" "$web")"
out=$(D run --rm --network "$N" "$ref" sh -c "timeout 5 wget -q -O - http://$wip/; true" 2>&1)
check "after restart: reachable on the network" "hello-user" "$out"
D rm -f "$web" >/dev/null

# 50 run/rm cycles leave nothing.
for i in $(seq 50); do D run --rm --network "$N" "$ref" true >/dev/null 2>&1 || { fail "cycle $i"; break; }; done
sleep 0.2
check "cycles: no veth on the network's bridge" "" "$(ip -o link show master "$nbr" 2>/dev/null)"
check "cycles: no endpoint in inspect" "" "$(D network inspect -f '{{range .Containers}}{{.Name}}{{end}}' "$N")"
check "cycles: DNS entries empty" "[]" "$(cat "$dir/run/network/dns/$nid.json")"
D network rm "$N" >/dev/null; rc=$?
check "rm: exit 0" 0 "$rc"
check "rm: bridge gone" "" "$(ip -br link show "$nbr" 2>/dev/null)"
check "rm: table gone" "" "$(nft list tables 2>/dev/null | grep "berth-$nbr")"
check "rm: no address left on the host" "" "$(ip -o -4 addr show | grep " $SUB\.")"
check "rm: DNS file gone" "" "$(ls "$dir/run/network/dns/$nid.json" 2>/dev/null)"
out=$(D network inspect "$N" 2>&1); rc=$?
check "rm: inspect 404" 1 "$rc"

# Our CLI: berth network ... with docker's output.
B() { timeout -k 5 60 "$BERTH" -H "unix://$sock" "$@"; }
if [ -x "$BERTH" ]; then
    bid=$(B network create --subnet 10.214.$(( $$ % 200 )).0/24 --label k=v bn$$ 2>&1)
    check "berth network create prints the ID" 64 "${#bid}"
    check "berth network ls: header" "NETWORK ID     NAME      DRIVER    SCOPE" "$(B network ls | head -n 1 | sed 's/ *$//')"
    contains "berth network ls: row" "${bid:0:12}   bn$$" "$(B network ls)"
    check "berth network ls -q --filter" "${bid:0:12}" "$(B network ls -q --filter label=k=v)"
    check "berth network ls --format" "bn$$ bridge" "$(B network ls --filter name=bn$$ --format '{{.Name}} {{.Driver}}')"
    check "berth network inspect --format" "10.214.$(( $$ % 200 )).0/24" "$(B network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' bn$$)"
    bc=$(D run -d "$ref" sleep 300)
    B network connect --alias bal bn$$ "$bc"; rc=$?
    check "berth network connect" 0 "$rc"
    contains "berth network connect: eth1 inside" "10.214.$(( $$ % 200 ))." "$(D exec "$bc" ip -4 -o addr show eth1 2>&1)"
    out=$(B network rm bn$$ 2>&1); rc=$?
    check "berth network rm in use: exit 1" 1 "$rc"
    B network disconnect bn$$ "$bc"; rc=$?
    check "berth network disconnect" 0 "$rc"
    D rm -f "$bc" >/dev/null
    check "berth network prune" "Deleted Networks:
bn$$" "$(B network prune -f)"
else
    fail "berth CLI missing at $BERTH"
fi

echo "# network-user.sh: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
