#!/bin/bash
# Checks that scripts/qemu-v2.sh reports what happened in the guest: a passing command gives
# exit 0, a failing one exit 1, a hung guest exit 2 (timeout); the guest is cgroup v2 only with
# the controllers enabled, the overlay module is loaded and pivot_root works from its root.
set -uo pipefail
cd "$(dirname "$0")/../.."
Q=scripts/qemu-v2.sh
fail=0
check() { # check WANT_RC DESCRIPTION ARGS...
	local want=$1 what=$2; shift 2
	local out rc
	out=$("$Q" --quiet "$@" 2>&1); rc=$?
	if [ "$rc" = "$want" ]; then echo "ok   $what"; else echo "FAIL $what: exit $rc, want $want"; echo "$out" | tail -n 20; fail=1; fi
}
check 0 "passing command" /bin/busybox sh -c '
	grep -q " - cgroup2 " /proc/self/mountinfo && ! grep -q " - cgroup " /proc/self/mountinfo &&
	for c in cpuset cpu io memory pids; do grep -qw $c /sys/fs/cgroup/cgroup.subtree_control || exit 3; done &&
	grep -qw overlay /proc/filesystems &&
	unshare -m sh -c "mkdir -p /tmp/nr && mount -t tmpfs t /tmp/nr && mkdir /tmp/nr/old && cd /tmp/nr && pivot_root . old"'
check 1 "failing command among passing ones" /bin/busybox true --- /bin/busybox false --- /bin/busybox true
check 2 "timeout" --timeout 8 /bin/busybox sleep 60
exit $fail
