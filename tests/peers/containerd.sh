#!/bin/bash
# Opt-in peer test (not part of CI): containerd 1.6 (Debian) drives berth-runtime through
# containerd-shim-runc-v2 (`ctr run --runc-binary`). A private containerd (own root, state and
# socket) is started and stopped by pid; the image is a docker-archive built from the host's
# /bin/busybox (tests/peers/mkimage.sh) and imported with `ctr image import`.
#   tests/peers/containerd.sh            (env BERTH_RUNTIME=/abs/path to skip the cargo build)
# Prints PASS/FAIL lines; exits 1 if anything failed, 2 if the setup failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

need() { command -v "$1" >/dev/null 2>&1; }
if ! need containerd || ! need ctr || ! need containerd-shim-runc-v2 || ! need script; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y containerd bsdutils busybox-static >/dev/null || { echo "FAIL setup: apt-get install containerd"; exit 2; }
fi
RT=${BERTH_RUNTIME:-}
if [ -z "$RT" ]; then
	cargo build --release -q -p berth-runtime-bin || { echo "FAIL setup: cargo build"; exit 2; }
	RT=$REPO/target/release/berth-runtime
fi
[ -x "$RT" ] || { echo "FAIL setup: no runtime binary $RT"; exit 2; }

W=$(mktemp -d /var/tmp/berth-peer-containerd.XXXXXX)
# cgroup dirs the peer itself makes (not the runtime), removed at the end when they were not
# there before and are empty (rmdir only).
PEER_CGROUPS="berth-peer"
pre_cgroups=$(for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do for d in $PEER_CGROUPS; do [ -d "$h$d" ] && echo "$h$d"; done; done)
rm_peer_cgroups() {
	for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do for d in $PEER_CGROUPS; do
		[ -d "$h$d" ] && ! grep -qxF "$h$d" <<<"$pre_cgroups" && rmdir "$h$d" 2>/dev/null
	done; done
	return 0
}
SOCK=$W/containerd.sock
NS=berth-peer
CD_PID=""
cleanup() {
	if [ -n "$CD_PID" ]; then
		for c in $(ctr -a "$SOCK" -n $NS task ls -q 2>/dev/null); do ctr -a "$SOCK" -n $NS task kill -s KILL "$c" >/dev/null 2>&1; done
		sleep 0.3
		for c in $(ctr -a "$SOCK" -n $NS task ls -q 2>/dev/null); do ctr -a "$SOCK" -n $NS task rm -f "$c" >/dev/null 2>&1; done
		for c in $(ctr -a "$SOCK" -n $NS c ls -q 2>/dev/null); do ctr -a "$SOCK" -n $NS c rm "$c" >/dev/null 2>&1; done
		kill "$CD_PID" 2>/dev/null
		wait "$CD_PID" 2>/dev/null
	fi
	# Snapshot mounts containerd may have left under our private root.
	grep -o " $W[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount "$m" 2>/dev/null; done
	rm_peer_cgroups
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

FAILS=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }

cat >"$W/config.toml" <<EOT
version = 2
root = "$W/root"
state = "$W/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  level = "debug"
EOT
${BERTH_PEER_WRAP:-} containerd --config "$W/config.toml" >"$W/containerd.log" 2>&1 &
CD_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "FAIL setup: containerd did not start"; tail -20 "$W/containerd.log"; exit 2; }
CTR=(ctr -a "$SOCK" -n $NS)
RUNOPTS=(--runtime io.containerd.runc.v2 --runc-binary "$RT" --runc-root "$W/runc-root")

REF=docker.io/berth-peer/busybox:latest
tests/peers/mkimage.sh "$W/img" "$REF" >/dev/null || { echo "FAIL setup: mkimage"; exit 2; }
if "${CTR[@]}" image import --no-unpack=false "$W/img/docker-archive.tar" >"$W/import.log" 2>&1 ||
	"${CTR[@]}" image import "$W/img/docker-archive.tar" >"$W/import.log" 2>&1; then
	pass "ctr image import of a docker-archive"
else
	fail "ctr image import: $(cat "$W/import.log")"; exit 1
fi

show_logs() { # the runtime's json log (containerd reads the last error from it) and the daemon's
	echo "--- containerd log (tail)"; tail -15 "$W/containerd.log"
}

# 1. run --rm echo hi
out=$(timeout 60 "${CTR[@]}" run --rm "${RUNOPTS[@]}" "$REF" c1 echo hi 2>&1)
if [ "$out" = hi ]; then pass "ctr run --rm echo hi"; else fail "ctr run --rm echo hi: got '$out'"; show_logs; fi

# 2. exit code
timeout 60 "${CTR[@]}" run --rm "${RUNOPTS[@]}" "$REF" c2 sh -c 'exit 3' >"$W/c2.out" 2>&1
rc=$?
if [ $rc = 3 ]; then pass "exit code propagates (3)"; else fail "exit code: want 3, got $rc: $(cat "$W/c2.out")"; fi

# 3. detached task: exec, ps, pause/resume, metrics, kill, delete
if timeout 60 "${CTR[@]}" run -d "${RUNOPTS[@]}" "$REF" c3 sleep 1000 >"$W/c3.out" 2>&1; then
	st=$("${CTR[@]}" task ls | awk '$1=="c3"{print $3}')
	[ "$st" = RUNNING ] && pass "run -d: task RUNNING" || fail "run -d: task status '$st'"
	out=$(timeout 30 "${CTR[@]}" task exec --exec-id e1 c3 sh -c 'echo in-exec; hostname' 2>&1)
	case "$out" in in-exec*) pass "task exec";; *) fail "task exec: '$out'";; esac
	n=$("${CTR[@]}" task ps c3 2>/dev/null | tail -n +2 | wc -l)
	[ "$n" -ge 1 ] && pass "task ps ($n)" || fail "task ps"
	if "${CTR[@]}" task pause c3 && [ "$("${CTR[@]}" task ls | awk '$1=="c3"{print $3}')" = PAUSED ] &&
		"${CTR[@]}" task resume c3 && [ "$("${CTR[@]}" task ls | awk '$1=="c3"{print $3}')" = RUNNING ]; then
		pass "task pause/resume"
	else
		fail "task pause/resume"
	fi
	if "${CTR[@]}" task metrics c3 >"$W/metrics" 2>&1 && grep -qi memory "$W/metrics"; then pass "task metrics"; else fail "task metrics: $(head -5 "$W/metrics")"; fi
	"${CTR[@]}" task kill -s KILL c3
	for _ in $(seq 50); do [ "$("${CTR[@]}" task ls | awk '$1=="c3"{print $3}')" = STOPPED ] && break; sleep 0.1; done
	st=$("${CTR[@]}" task ls | awk '$1=="c3"{print $3}')
	[ "$st" = STOPPED ] && pass "task kill -> STOPPED" || fail "task kill: status '$st'"
	if "${CTR[@]}" task rm c3 && "${CTR[@]}" c rm c3; then pass "task rm, container rm"; else fail "task rm / container rm"; fi
	left=$(ls "$W/runc-root/$NS" 2>/dev/null | grep -c . || true)
	[ "$left" = 0 ] && pass "nothing left in the runtime's state root" || fail "runtime state left: $(ls "$W/runc-root/$NS")"
else
	fail "ctr run -d: $(cat "$W/c3.out")"; show_logs
fi

# 4. terminal (-t) under script(1) for a pty
out=$(timeout 60 script -qec "ctr -a $SOCK -n $NS run --rm -t ${RUNOPTS[*]} $REF c4 sh -c 'tty; echo tty-ok'" /dev/null 2>&1 | tr -d '\r')
case "$out" in *"/dev/pts/"*tty-ok*|*"/dev/console"*tty-ok*) pass "run -t (console socket)";; *) fail "run -t: '$out'"; show_logs;; esac

left=$(find /sys/fs/cgroup/*/berth-peer /sys/fs/cgroup/berth-peer -mindepth 1 -type d 2>/dev/null)
[ -z "$left" ] && pass "no container cgroup left" || fail "cgroups left: $left"

if [ $FAILS = 0 ]; then echo "containerd peer: all passed"; exit 0; fi
echo "containerd peer: $FAILS failed (logs in $W if KEEP=1)"; exit 1
