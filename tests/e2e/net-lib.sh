# Shared by network-user.sh, network-v6.sh and network-cycles.sh (sourced): the docker CLI and
# nft checks, a work dir, check helpers, a private berthd (own root, exec root, socket, default
# bridge $BR) and a cleanup that removes only what the test made (its containers, networks,
# the bridges listed in $bridges with their ip/ip6 nft tables, its mounts, the work dir).
# The caller sets ROOT, BERTHD and NET_TAG (one letter: dir berth-net<tag>-e2e, bridge b<tag><pid>,
# network n<tag><pid>) first, and adds each bridge it makes to $bridges.
DOCKER=/usr/local/bin/docker; [ -x $DOCKER ] || DOCKER=$(command -v docker || true)
[ -x "$DOCKER" ] || { echo "SKIP $(basename "$0"): no docker CLI"; exit 0; }
command -v nft >/dev/null || { echo "FAIL $(basename "$0"): nft missing"; exit 1; }
dir=$(mktemp -d "/tmp/berth-net$NET_TAG-e2e.XXXXXX")
sock=$dir/berth.sock
BR=b$NET_TAG$$
N=n$NET_TAG$$
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
start_berthd() {
    "$BERTHD" --root "$dir/root" --exec-root "$dir/run" -H "unix://$sock" --bridge "$BR" \
        --pidfile "$dir/berthd.pid" >>"$dir/berthd.log" 2>&1 &
    bpid=$!
    for _ in $(seq 200); do [ -S "$sock" ] && D version >/dev/null 2>&1 && break; kill -0 "$bpid" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$bpid" 2>/dev/null || { fail "berthd start"; cat "$dir/berthd.log"; exit 1; }
}
bridges=
cleanup() {
    if [ -n "$bpid" ] && kill -0 "$bpid" 2>/dev/null; then
        ids=$(D ps -aq 2>/dev/null); [ -n "$ids" ] && D rm -f $ids >/dev/null 2>&1
        D network prune -f >/dev/null 2>&1
        kill -TERM "$bpid"; wait "$bpid" 2>/dev/null
    fi
    [ "$FAIL" -gt 0 ] && { echo "--- berthd log (tail)"; tail -n 30 "$dir/berthd.log"; }
    # (Only what this test made: its own bridges and their tables.)
    for b in $bridges; do
        ip link del "$b" 2>/dev/null
        nft delete table ip "berth-$b" 2>/dev/null; nft delete table ip6 "berth-$b" 2>/dev/null
    done
    grep -o " $dir[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$dir" 2>/dev/null
}
trap cleanup EXIT
