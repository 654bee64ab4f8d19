#!/bin/bash
# Opt-in peer test (not part of CI): podman 4.3 (Debian) + conmon drive berth-runtime
# (`podman --runtime /abs/berth-runtime`). Private storage (--root/--runroot in a temp dir),
# no network (--network none), cgroupfs. The image is `podman import` of a busybox rootfs
# built from the host's /bin/busybox (tests/peers/mkimage.sh).
#   tests/peers/podman.sh            (env BERTH_RUNTIME=/abs/path to skip the cargo build)
# Prints PASS/FAIL lines; exits 1 if anything failed, 2 if the setup failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

need() { command -v "$1" >/dev/null 2>&1; }
if ! need podman || ! need conmon || ! need script; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y podman conmon bsdutils busybox-static >/dev/null || { echo "FAIL setup: apt-get install podman"; exit 2; }
fi
RT=${BERTH_RUNTIME:-}
if [ -z "$RT" ]; then
	cargo build --release -q -p berth-runtime-bin || { echo "FAIL setup: cargo build"; exit 2; }
	RT=$REPO/target/release/berth-runtime
fi
[ -x "$RT" ] || { echo "FAIL setup: no runtime binary $RT"; exit 2; }

W=$(mktemp -d /var/tmp/berth-peer-podman.XXXXXX)
# cgroup dirs the peer itself makes (not the runtime), removed at the end when they were not
# there before and are empty (rmdir only).
PEER_CGROUPS="libpod_parent/conmon libpod_parent"
pre_cgroups=$(for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do for d in $PEER_CGROUPS; do [ -d "$h$d" ] && echo "$h$d"; done; done)
rm_peer_cgroups() {
	for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do for d in $PEER_CGROUPS; do
		[ -d "$h$d" ] && ! grep -qxF "$h$d" <<<"$pre_cgroups" && rmdir "$h$d" 2>/dev/null
	done; done
	return 0
}
# These hosts lack CAP_SYS_RESOURCE: podman's default rlimits (nofile 1048576) cannot be set.
ULIM=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
P=(podman --root "$W/storage" --runroot "$W/run" --tmpdir "$W/tmp" --cgroup-manager cgroupfs --events-backend file --runtime "$RT" ${PODMAN_DEBUG:+--log-level=debug})
RUN=(run "${ULIM[@]}" --network none)
cleanup() {
	"${P[@]}" rm -f -a -t 0 >/dev/null 2>&1
	"${P[@]}" system reset -f >/dev/null 2>&1 || true
	grep -o " $W[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount "$m" 2>/dev/null; done
	rm_peer_cgroups
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

FAILS=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
status() { "${P[@]}" inspect --format '{{.State.Status}}' "$1" 2>&1; }

REF=localhost/berth-peer/busybox:latest
tests/peers/mkimage.sh "$W/img" "$REF" >/dev/null || { echo "FAIL setup: mkimage"; exit 2; }
if "${P[@]}" import --change 'CMD ["sh"]' "$W/img/rootfs.tar" "$REF" >"$W/import.log" 2>&1; then
	pass "podman import of a busybox rootfs"
else
	fail "podman import: $(cat "$W/import.log")"; exit 1
fi

# 1. run --rm echo hi
out=$(timeout 60 "${P[@]}" "${RUN[@]}" --rm "$REF" echo hi 2>&1)
[ "$out" = hi ] && pass "podman run --rm echo hi" || fail "podman run --rm echo hi: '$out'"

# 2. exit code, stdin
timeout 60 "${P[@]}" "${RUN[@]}" --rm "$REF" sh -c 'exit 3' >"$W/rc.out" 2>&1
rc=$?
[ $rc = 3 ] && pass "exit code propagates (3)" || fail "exit code: want 3, got $rc: $(cat "$W/rc.out")"
out=$(echo piped | timeout 60 "${P[@]}" "${RUN[@]}" --rm -i "$REF" cat 2>&1)
[ "$out" = piped ] && pass "run -i (stdin)" || fail "run -i: '$out'"

# 3. -it under script(1). The sleep: podman 4.3 attaches to the pty after start and loses
# what a very short-lived container printed before (~1 run in 12, with runc 1.1 as well).
out=$(timeout 60 script -qec "${P[*]} ${RUN[*]} --rm -it $REF sh -c 'sleep 0.5; tty; echo tty-ok'" /dev/null 2>&1 | tr -d '\r')
case "$out" in *"/dev/pts/"*tty-ok*|*"/dev/console"*tty-ok*) pass "run -it (console socket)";; *) fail "run -it: '$out'";; esac

# 4. detached: exec, exec -it, pause/unpause, stats, stop, rm
if timeout 60 "${P[@]}" "${RUN[@]}" -d --name c1 --memory 64m --pids-limit 50 "$REF" sleep 1000 >"$W/c1.out" 2>&1; then
	st=$(status c1); [ "$st" = running ] && pass "run -d: running" || fail "run -d: status '$st'"
	out=$(timeout 30 "${P[@]}" exec c1 sh -c 'echo in-exec; cat /proc/1/cmdline | tr "\0" " "' 2>&1)
	case "$out" in "in-exec"*"sleep 1000"*) pass "exec";; *) fail "exec: '$out'";; esac
	out=$(timeout 30 script -qec "${P[*]} exec -it c1 sh -c 'tty; echo exec-tty-ok'" /dev/null 2>&1 | tr -d '\r')
	case "$out" in *"/dev/pts/"*exec-tty-ok*) pass "exec -it";; *) fail "exec -it: '$out'";; esac
	if "${P[@]}" pause c1 >/dev/null 2>&1 && [ "$(status c1)" = paused ] &&
		"${P[@]}" unpause c1 >/dev/null 2>&1 && [ "$(status c1)" = running ]; then
		pass "pause/unpause"
	else
		fail "pause/unpause (status $(status c1))"
	fi
	out=$("${P[@]}" stats --no-stream --format '{{.MemUsage}} {{.PIDs}}' c1 2>&1)
	case "$out" in *"64MB"*|*"67.11MB"*|*"64MiB"*) pass "stats: $out";; *) fail "stats: '$out'";; esac
	t0=$(date +%s)
	out=$(timeout 60 "${P[@]}" stop -t 2 c1 2>&1)
	st=$(status c1)
	[ "$st" = exited ] && pass "stop -t 2 ($(($(date +%s) - t0))s)" || fail "stop: status '$st': $out"
	out=$(timeout 60 "${P[@]}" start c1 2>&1) && [ "$(status c1)" = running ] && pass "start again" || fail "start again: $out"
	out=$(timeout 60 "${P[@]}" rm -f c1 2>&1) && pass "rm -f" || fail "rm -f: $out"
else
	fail "run -d: $(cat "$W/c1.out")"
fi
left=$("${P[@]}" ps -aq | wc -l)
[ "$left" = 0 ] && pass "no containers left" || fail "containers left: $left"

left=$(find /sys/fs/cgroup/*/libpod_parent /sys/fs/cgroup/libpod_parent -name 'libpod-*' -type d 2>/dev/null)
[ -z "$left" ] && pass "no container cgroup left" || fail "cgroups left: $left"

if [ $FAILS = 0 ]; then echo "podman peer: all passed"; exit 0; fi
echo "podman peer: $FAILS failed (PODMAN_DEBUG=1 shows the runtime command lines; KEEP=1 keeps $W)"; exit 1
