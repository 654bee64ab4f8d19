#!/bin/bash
# Bandwidth limits and a published port seen from "outside", through the real docker CLI and
# berth's own CLI, against a private berthd (own root, exec root, socket, bridge bw<pid>):
# - a container created with the annotation kubernetes.io/egress-bandwidth=10M sends to
#   another one (busybox nc) at 10 Mbit/s ±20 %; an uncapped one is > 3x faster;
# - `berth update --network-rate egress=20M` changes the cap (measured again), a restart of
#   berthd keeps it, `egress=none` lifts it; invalid values are a 400 naming the key;
# - shaping is on the host end (tbf on the veth / its ingress redirected to ifb<id>), and
#   nothing (ifb, veth) is left after rm;
# - a port published on all addresses is reached from a separate network namespace (this
#   test's, with its own veth pair and 198.18.x.0/30 addresses, removed at the end).
# Traffic goes only between this test's containers and namespace.
#   tests/e2e/network-bw.sh [path/to/berthd] [path/to/berth]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BERTHD=${1:-$ROOT/target/debug/berthd}
BERTH=${2:-$(dirname "$BERTHD")/berth}
DOCKER=/usr/local/bin/docker; [ -x $DOCKER ] || DOCKER=$(command -v docker || true)
[ -x "$DOCKER" ] || { echo "SKIP network-bw.sh: no docker CLI"; exit 0; }
for t in nft tc ip; do command -v $t >/dev/null || { echo "FAIL network-bw.sh: $t missing"; exit 1; }; done
dir=$(mktemp -d /tmp/berth-netbw-e2e.XXXXXX)
sock=$dir/berth.sock
BR=bw$$
NS=bwns$$
HV=bxh$$; PV=bxp$$
X=$(( $$ % 250 + 1 ))
export DOCKER_CONFIG=$dir/docker-config
mkdir -p "$DOCKER_CONFIG"
D() { timeout -k 5 60 "$DOCKER" -H "unix://$sock" "$@"; }
B() { timeout -k 5 60 "$BERTH" -H "unix://$sock" "$@"; }
PASS=0; FAIL=0
pass() { PASS=$((PASS+1)); echo "PASS $*"; }
fail() { FAIL=$((FAIL+1)); echo "FAIL $*"; }
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2] got [$3]"; fi; }
contains() { case "$3" in *"$2"*) pass "$1";; *) fail "$1: [$2] not in [$3]";; esac; }
# within NAME LO HI VALUE
within() { if awk -v v="$4" -v lo="$2" -v hi="$3" 'BEGIN{exit !(v>=lo && v<=hi)}'; then pass "$1 ($4)"; else fail "$1: $4 not in [$2, $3]"; fi; }
bpid=
start_berthd() {
    "$BERTHD" --root "$dir/root" --exec-root "$dir/run" -H "unix://$sock" --bridge "$BR" \
        --pidfile "$dir/berthd.pid" >>"$dir/berthd.log" 2>&1 &
    bpid=$!
    for _ in $(seq 200); do [ -S "$sock" ] && D version >/dev/null 2>&1 && break; kill -0 "$bpid" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$bpid" 2>/dev/null || { fail "berthd start"; cat "$dir/berthd.log"; exit 1; }
}
cleanup() {
    if [ -n "$bpid" ] && kill -0 "$bpid" 2>/dev/null; then
        ids=$(D ps -aq 2>/dev/null); [ -n "$ids" ] && D rm -f $ids >/dev/null 2>&1
        kill -TERM "$bpid"; wait "$bpid" 2>/dev/null
    fi
    ip netns del "$NS" 2>/dev/null; ip link del "$HV" 2>/dev/null
    [ "$FAIL" -gt 0 ] && { echo "--- berthd log (tail)"; tail -n 30 "$dir/berthd.log"; }
    grep -o " $dir[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$dir" 2>/dev/null
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
veth_of() { echo "veth${1:0:11}"; }
ifb_of() { echo "ifb${1:0:11}"; }

start_berthd
ref=$("$ROOT/tests/peers/mkimage.sh" "$dir/img" berth-netbw/busybox:latest)
D load -q -i "$dir/img/docker-archive.tar" >/dev/null || { fail "load the busybox image"; exit 1; }

# The receiver: each measurement is one `nc -l` whose connection runs recv.sh, which writes
# "bytes first-byte-uptime eof-uptime" (the clock starts at the first byte: no connect time).
rx=$(D run -d "$ref" sleep 3600)
printf '%s\n' 'dd bs=1 count=1 of=/dev/null 2>/dev/null' 's=$(cut -d" " -f1 /proc/uptime)' \
    'n=$(wc -c)' 'e=$(cut -d" " -f1 /proc/uptime)' 'echo "$((n+1)) $s $e" >"$1.tmp" && mv "$1.tmp" "$1"' |
    D exec -i "$rx" sh -c 'cat >/recv.sh'
rxip=$(D inspect -f '{{.NetworkSettings.IPAddress}}' "$rx")
round=0
# rate FROM BYTES: Mbit/s of BYTES sent from container FROM to the receiver.
rate() {
    round=$((round+1))
    local port=$((5000+round)) out=/tmp/r$round
    D exec -d "$rx" nc -l -p $port -e sh /recv.sh $out >/dev/null
    sleep 0.3
    D exec "$1" sh -c "dd if=/dev/zero bs=1000 count=$(($2/1000)) 2>/dev/null | nc $rxip $port"
    local r=
    for _ in $(seq 100); do r=$(D exec "$rx" cat $out 2>/dev/null) && [ -n "$r" ] && break; sleep 0.1; done
    echo "$r" | awk '{d=$3-$2; if (d<0.01) d=0.01; printf "%.2f", $1*8/d/1e6}'
}

# Capped at create (docker CLI --annotation -> HostConfig.Annotations).
tx=$(D run -d --annotation kubernetes.io/egress-bandwidth=10M "$ref" sleep 3600)
free=$(D run -d "$ref" sleep 3600)
txv=$(veth_of "$tx"); txi=$(ifb_of "$tx")
contains "egress: the host veth's ingress is redirected to $txi" "Egress Redirect to device $txi" "$(tc filter show dev "$txv" ingress 2>&1)"
contains "egress: tbf 10Mbit on $txi" "rate 10Mbit" "$(tc qdisc show dev "$txi" 2>&1)"
check "no ingress limit: no tbf on the veth" "" "$(tc qdisc show dev "$txv" 2>&1 | grep tbf)"
check "annotations kept in inspect" '{"kubernetes.io/egress-bandwidth":"10M"}' "$(D inspect -f '{{json .HostConfig.Annotations}}' "$tx")"
capped=$(rate "$tx" 3000000)
within "capped container sends at 10 Mbit/s ±20 %" 8 12 "$capped"
uncapped=$(rate "$free" 30000000)
if awk -v a="$uncapped" -v b="$capped" 'BEGIN{exit !(a > 3*b)}'; then pass "uncapped is > 3x faster ($uncapped Mbit/s)"; else fail "uncapped $uncapped Mbit/s not > 3x $capped"; fi

# Invalid values: a 400 naming the key, at create and at update.
out=$(D run -d --annotation kubernetes.io/egress-bandwidth=fast "$ref" true 2>&1); rc=$?
check "invalid rate: run fails" 125 "$rc"
contains "invalid rate: the key is named" "kubernetes.io/egress-bandwidth" "$out"
out=$(B update --network-rate ingress=999 "$tx" 2>&1)
contains "invalid update: the key is named" "invalid annotation kubernetes.io/ingress-bandwidth" "$out"
out=$(D run -d --network none --annotation kubernetes.io/ingress-bandwidth=1M "$ref" true 2>&1)
contains "a limit without a veth is refused" "bandwidth limits need a network" "$out"

# berth's CLI: update changes the cap; an ingress limit is a tbf on the host veth.
check "berth update --network-rate" "$tx" "$(B update --network-rate egress=20M,ingress=50M "$tx" 2>&1)"
contains "update: tbf 20Mbit on $txi" "rate 20Mbit" "$(tc qdisc show dev "$txi" 2>&1)"
contains "update: ingress tbf 50Mbit on the veth" "rate 50Mbit" "$(tc qdisc show dev "$txv" 2>&1)"
within "after update the container sends at 20 Mbit/s ±20 %" 16 24 "$(rate "$tx" 6000000)"
made=$(B run -d --network-rate 5M "$ref" sleep 3600 2>&1)
contains "berth run --network-rate: ingress tbf" "rate 5Mbit" "$(tc qdisc show dev "$(veth_of "$made")" 2>&1)"
contains "berth run --network-rate: egress tbf" "rate 5Mbit" "$(tc qdisc show dev "$(ifb_of "$made")" 2>&1)"

# A daemon restart keeps the limits of running containers.
kill -TERM "$bpid"; wait "$bpid" 2>/dev/null; bpid=
start_berthd
check "restart: tx still running" "true" "$(D inspect -f '{{.State.Running}}' "$tx")"
contains "restart: egress limit kept" "rate 20Mbit" "$(tc qdisc show dev "$txi" 2>&1)"
contains "restart: ingress limit kept" "rate 50Mbit" "$(tc qdisc show dev "$txv" 2>&1)"

# Lifting: no ifb, no tbf.
B update --network-rate none "$tx" >/dev/null
check "lifted: no $txi" "" "$(ip -br link show "$txi" 2>/dev/null)"
check "lifted: no tbf on the veth" "" "$(tc qdisc show dev "$txv" 2>&1 | grep -E 'tbf|ingress')"

# A published port reached from another namespace through its own veth pair.
ip netns add "$NS" && ip link add "$HV" type veth peer name "$PV" netns "$NS" &&
    ip addr add "198.18.$X.1/30" dev "$HV" && ip link set "$HV" up &&
    ip -n "$NS" addr add "198.18.$X.2/30" dev "$PV" && ip -n "$NS" link set "$PV" up &&
    ip -n "$NS" link set lo up && ip -n "$NS" route add default via "198.18.$X.1" ||
    fail "make the test namespace"
P=$(free_port)
web=$(D run -d -p "$P:80" "$ref" sh -c 'mkdir -p /www && echo hello-remote > /www/index.html && exec httpd -f -p 80 -h /www')
got=
for _ in $(seq 50); do got=$(ip netns exec "$NS" curl -fsS --max-time 2 "http://198.18.$X.1:$P/" 2>/dev/null) && break; sleep 0.1; done
check "published port reached from another namespace" "hello-remote" "$got"

# Nothing left after rm: no ifb, no veth, no qdisc.
mi=$(ifb_of "$made"); mv=$(veth_of "$made")
D rm -f "$tx" "$free" "$rx" "$made" "$web" >/dev/null
for _ in $(seq 100); do [ -z "$(ip -o link show master "$BR" 2>/dev/null)" ] && break; sleep 0.05; done
check "no ifb left" "" "$(ip -br link show "$txi" 2>/dev/null; ip -br link show "$mi" 2>/dev/null)"
check "no veth left" "" "$(ip -br link show "$txv" 2>/dev/null; ip -br link show "$mv" 2>/dev/null)"
check "no ifb of this daemon's containers" "" "$(ip -br link show type ifb | grep -E "ifb(${tx:0:11}|${made:0:11})")"
ip netns del "$NS"; ip link del "$HV" 2>/dev/null
check "test namespace and veth removed" "" "$(ip netns list | grep -w "$NS"; ip -br link show "$HV" 2>/dev/null)"
kill -TERM "$bpid"; wait "$bpid" 2>/dev/null; bpid=

echo "# network-bw.sh: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
