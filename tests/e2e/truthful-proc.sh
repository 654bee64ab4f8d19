#!/usr/bin/env bash
# Truthful /proc through berthd and the real docker CLI: a container's /proc/meminfo, cpuinfo,
# stat, uptime and cpu/online, and sysinfo(2) (busybox free, uptime), tell its limits
# (berth-procview, one provider per container);
# opt-out per container; a killed provider affects only its container; a killed berthd
# leaves the files right (live-restore).
#
# Usage: tests/e2e/truthful-proc.sh [path/to/berthd]. Needs root, the docker CLI, /dev/fuse.
set -u

DOCKER=${DOCKER:-/usr/local/bin/docker}
[ -x "$DOCKER" ] || { echo "SKIP truthful-proc.sh: docker CLI not found at $DOCKER"; exit 0; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BERTHD=${1:-$ROOT/target/debug/berthd}
[ -x "$BERTHD" ] || { echo "FAIL berthd binary not found: $BERTHD"; exit 1; }
[ -x /bin/busybox ] || { echo "FAIL /bin/busybox missing (apt-get install busybox-static)"; exit 1; }

WORK=$(mktemp -d /tmp/berth-proc-e2e.XXXXXX)
SOCK=$WORK/berth.sock
IMG=berth-e2e/busybox:latest
PASS=0; FAIL=0; BPID=""
export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$WORK/docker-config
mkdir -p "$DOCKER_CONFIG"
docker() { timeout -k 5 60 "$DOCKER" "$@"; }
pass() { PASS=$((PASS+1)); echo "PASS $*"; }
fail() { FAIL=$((FAIL+1)); echo "FAIL $*"; }
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2] got [$3]"; fi; }

start_berthd() {
    "$BERTHD" -H "unix://$SOCK" --root "$WORK/root" --exec-root "$WORK/exec" --bridge none \
        "$@" >>"$WORK/berthd.log" 2>&1 &
    BPID=$!
    for _ in $(seq 1 300); do
        [ -S "$SOCK" ] && "$DOCKER" version >/dev/null 2>&1 && return 0
        kill -0 "$BPID" 2>/dev/null || break
        sleep 0.05
    done
    fail "berthd start"; tail -20 "$WORK/berthd.log"; exit 1
}
cleanup() {
    if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
        for c in $("$DOCKER" ps -aq 2>/dev/null); do "$DOCKER" rm -f "$c" >/dev/null 2>&1; done
        kill -TERM "$BPID"; wait "$BPID" 2>/dev/null
    fi
    [ "$FAIL" -gt 0 ] && { echo "--- berthd log (tail) ---"; tail -n 30 "$WORK/berthd.log"; }
    umount -R "$WORK/root" "$WORK/exec" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

start_berthd
r="$WORK/rootfs"; mkdir -p "$r/bin" "$r/etc" "$r/tmp"
cp /bin/busybox "$r/bin/busybox"
for x in $(/bin/busybox --list); do [ "$x" = busybox ] || ln -s busybox "$r/bin/$x"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"
tar --numeric-owner -C "$r" -c . | docker import -c 'CMD ["/bin/sh"]' - "$IMG" >/dev/null || { fail "import"; exit 1; }

host_total=$(awk '/^MemTotal/{print $2}' /proc/meminfo)
host_cpus=$(grep -c ^processor /proc/cpuinfo)

out=$(docker run --rm --memory 64m --cpuset-cpus 0 "$IMG" sh -c \
    'head -1 /proc/meminfo; nproc; grep -c ^processor /proc/cpuinfo; grep -c "^cpu[0-9]" /proc/stat; cat /sys/devices/system/cpu/online; cut -d. -f1 /proc/uptime' 2>&1 | tr -s ' \n' ' ')
check "--memory 64m --cpuset-cpus 0: MemTotal, nproc, cpuinfo, stat, online, uptime" \
    "MemTotal: 65536 kB 1 1 1 0 0 " "$out"
if [ "$host_cpus" -ge 2 ]; then
    check "--cpus 1.5 -> 2 CPUs" "2 0-1" "$(docker run --rm --cpus 1.5 "$IMG" sh -c 'echo $(grep -c ^processor /proc/cpuinfo) $(cat /sys/devices/system/cpu/online)')"
fi
check "--cpus 0.5 -> 1 CPU" "1 0" "$(docker run --rm --cpus 0.5 "$IMG" sh -c 'echo $(grep -c ^processor /proc/cpuinfo) $(cat /sys/devices/system/cpu/online)')"
check "no limits: the host's MemTotal and CPUs" "$host_total $host_cpus" \
    "$(docker run --rm "$IMG" sh -c 'echo $(awk "/^MemTotal/{print \$2}" /proc/meminfo) $(grep -c ^processor /proc/cpuinfo)')"
check "opt-out: --annotation run.berth.truthful-proc=false" "$host_total" \
    "$(docker run --rm --memory 64m --annotation run.berth.truthful-proc=false "$IMG" awk '/^MemTotal/{print $2}' /proc/meminfo)"
drop=$(docker run --rm --memory 128m "$IMG" sh -c \
    'a=$(awk "/^MemFree/{print \$2}" /proc/meminfo); dd if=/dev/zero of=/dev/shm/x bs=1M count=30 2>/dev/null; b=$(awk "/^MemFree/{print \$2}" /proc/meminfo); echo $((a-b))')
if [ "${drop:-0}" -ge 29000 ] 2>/dev/null && [ "$drop" -le 34000 ]; then pass "30 MB in /dev/shm: MemFree drops by $drop kB"; else fail "30 MB in /dev/shm: MemFree dropped by [$drop] kB"; fi

# sysinfo(2), which busybox free and uptime use instead of /proc: answered by the provider.
out=$(docker run --rm --memory 64m "$IMG" sh -c 'free -m | awk "/^Mem:/{print \$2}"; uptime' 2>&1)
check "--memory 64m: free -m total (sysinfo)" "64" "$(echo "$out" | head -1)"
case "$out" in
    *" up 0 min,"*"load average: 0.00, 0.00, 0.00"*) pass "uptime (sysinfo): the container's uptime and load";;
    *) fail "uptime (sysinfo): [$out]";;
esac
# A user seccomp profile still applies, and sysinfo stays the container's.
printf '%s' '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}' >"$WORK/seccomp.json"
check "--security-opt seccomp=profile: mkdir denied, free -m 64" "denied 64" \
    "$(docker run --rm --memory 64m --security-opt "seccomp=$WORK/seccomp.json" "$IMG" sh -c \
        'mkdir /tmp/d 2>/dev/null && echo allowed || echo denied; free -m | awk "/^Mem:/{print \$2}"' | tr '\n' ' ' | sed 's/ $//')"

# Two containers; the provider of one is killed: the other's files stay right.
a=$(docker run -d --memory 64m "$IMG" sleep 300); b=$(docker run -d --memory 32m "$IMG" sleep 300)
pa=$(cat "$(find "$WORK/exec" -path "*$a*" -name procview.pid | head -1)" 2>/dev/null)
if [ -n "$pa" ] && kill -9 "$pa"; then
    sleep 0.2
    check "provider of A killed: B's MemTotal" "32768" "$(docker exec "$b" awk '/^MemTotal/{print $2}' /proc/meminfo)"
    check "provider of A killed: docker exec B free -m (sysinfo)" "32" "$(docker exec "$b" free -m | awk '/^Mem:/{print $2}')"
    docker exec "$a" cat /proc/meminfo >/dev/null 2>&1; rc=$?
    check "provider of A killed: A's read fails (ENOTCONN), exit" 1 "$rc"
else
    fail "no provider pid for container A"
fi

# berthd killed: B's files stay right (read in its mount namespace), and after a restart.
bpid=$(docker inspect -f '{{.State.Pid}}' "$b")
kill -9 "$BPID"; wait "$BPID" 2>/dev/null; BPID=""
check "berthd killed: B's MemTotal" "32768" "$(nsenter -t "$bpid" -m awk '/^MemTotal/{print $2}' /proc/meminfo)"
start_berthd
check "berthd restarted: B's MemTotal" "32768" "$(docker exec "$b" awk '/^MemTotal/{print $2}' /proc/meminfo)"
docker rm -f "$a" "$b" >/dev/null
left=$(find "$WORK/exec" -name procview -type d 2>/dev/null | wc -l)
check "no provider mount dir left after rm" 0 "$left"

echo "truthful-proc: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
