#!/bin/bash
# Opt-in (not part of CI): the same busybox bundles under runc, crun and berth-runtime, one
# line per case with each runtime's outcome, marked DIFF where berth-runtime's is not runc's.
# docs/runtime.md ("Where berth-runtime differs from runc") says why each DIFF is deliberate.
#   tests/peers/oci-diff.sh          (env BERTH_RUNTIME=/abs/path to skip the cargo build)
# Every runtime runs in a private mount namespace of its own (runc mounts into the caller's
# mount table when a spec has mounts and no mount namespace); on a cgroup v1/v2 hybrid host
# crun's namespace has /sys/fs/cgroup/unified unmounted (crun 1.8 refuses hybrid).
# Exit status: 0 (the table is the result), 2 if the setup failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
for c in runc crun python3 setpriv unshare; do
	command -v "$c" >/dev/null || { echo "FAIL setup: $c is missing (apt-get install runc crun)"; exit 2; }
done
RT=${BERTH_RUNTIME:-}
if [ -z "$RT" ]; then
	cargo build -q -p berth-runtime-bin || { echo "FAIL setup: cargo build"; exit 2; }
	RT=$PWD/target/debug/berth-runtime
fi
BUSYBOX=$(command -v busybox) || { echo "FAIL setup: busybox-static is missing"; exit 2; }
W=$(mktemp -d /var/tmp/berth-oci-diff.XXXXXX)
trap 'rm -rf "$W"' EXIT
export W RT BUSYBOX

# bundle DIR PYTHON: a busybox bundle whose config.json (the `spec` default, no terminal,
# writable root) is then edited by PYTHON acting on the dict `c`.
bundle() {
	rm -rf "$1" && mkdir -p "$1"/rootfs/{bin,proc,sys,dev,etc,tmp} || return 1
	cp "$BUSYBOX" "$1/rootfs/bin/busybox"
	for a in sh true false sleep cat; do ln -s busybox "$1/rootfs/bin/$a"; done
	"$RT" spec -b "$1" || return 1
	python3 - "$1/config.json" "$2" <<-'EOF'
	import json, sys
	p = sys.argv[1]
	c = json.load(open(p))
	c['process']['terminal'] = False
	c['process']['args'] = ['true']
	c['root']['readonly'] = False
	exec(sys.argv[2])
	json.dump(c, open(p, 'w'))
	EOF
}
# hook PATH: a hook that saves its stdin (the state) to PATH.
hook() { echo "{'path': '/bin/sh', 'args': ['sh', '-c', 'cat > $1']}"; }
status_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$1" 2>/dev/null || echo none; }
export -f bundle hook status_of

# Each case: CASE RUNTIME runs in the runtime's private namespace and prints one outcome.
case_hook_status() {
	local b=$W/$1/hooks
	local h='' p
	for p in prestart createRuntime createContainer poststart poststop; do h="$h'$p': [$(hook "$b/$p")], "; done
	h="$h'startContainer': [$(hook /startContainer)]"
	bundle "$b" "c['hooks'] = {$h}" || return
	$RUN run -b "$b" hs >/dev/null 2>&1
	cp "$b/rootfs/startContainer" "$b/startContainer" 2>/dev/null
	local out=''
	for p in prestart createRuntime createContainer startContainer poststart poststop; do out="$out $p=$(status_of "$b/$p")"; done
	echo "$out"
}
case_poststart_failure() {
	local b=$W/$1/poststart
	bundle "$b" "c['process']['args'] = ['sleep', '1']; c['hooks'] = {'poststart': [{'path': '/bin/false'}, $(hook "$b/ran")]}" || return
	$RUN create -b "$b" pf >/dev/null 2>&1 </dev/null; local cr=$?
	$RUN start pf >/dev/null 2>&1; local st=$?
	$RUN delete -f pf >/dev/null 2>&1
	echo "create=$cr start=$st next-hook-ran=$([ -e "$b/ran" ] && echo yes || echo no)"
}
case_start_container_failure() {
	local b=$W/$1/startfail
	bundle "$b" "c['hooks'] = {'startContainer': [{'path': '/bin/false'}]}" || return
	$RUN create -b "$b" sf >/dev/null 2>&1 </dev/null; local cr=$?
	$RUN start sf >/dev/null 2>&1; local st=$?
	$RUN delete -f sf >/dev/null 2>&1
	echo "create=$cr start=$st"
}
case_start_waits_for_exec() {
	local b=$W/$1/startwait
	bundle "$b" "c['process']['args'] = ['sleep', '5']; c['hooks'] = {'startContainer': [{'path': '/bin/sleep', 'args': ['sleep', '1']}]}" || return
	$RUN create -b "$b" sw >/dev/null 2>&1 </dev/null
	local t0=$(date +%s%N)
	$RUN start sw >/dev/null 2>&1; local st=$?
	local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	$RUN delete -f sw >/dev/null 2>&1
	echo "start=$st waited-for-exec=$([ "$ms" -ge 900 ] && echo yes || echo no)"
}
case_cap_not_in_bounding_set() {
	local b=$W/$1/caps
	bundle "$b" "c['process']['capabilities']['permitted'].append('CAP_WAKE_ALARM')" || return
	setpriv --bounding-set -wake_alarm $RUN create -b "$b" cb >/dev/null 2>"$b/err" </dev/null; local cr=$?
	$RUN start cb >/dev/null 2>&1; local st=$?
	$RUN delete -f cb >/dev/null 2>&1
	echo "create=$cr start=$st names-it=$(grep -q CAP_WAKE_ALARM "$b/err" && echo yes || echo no)"
}
case_mounts_without_mount_ns() {
	local b=$W/$1/nomntns
	bundle "$b" "c['linux']['namespaces'] = [n for n in c['linux']['namespaces'] if n['type'] != 'mount']; c['linux']['maskedPaths'] = []; c['linux']['readonlyPaths'] = []" || return
	$RUN create -b "$b" nm >/dev/null 2>&1 </dev/null; local cr=$?
	local leaked=$(grep -c " $b/rootfs" /proc/self/mountinfo)
	$RUN delete -f nm >/dev/null 2>&1
	echo "create=$cr mounts-in-caller-ns=$leaked"
}
case_oci_version_invalid() {
	local b=$W/$1/version
	bundle "$b" "c['ociVersion'] = 'invalid'" || return
	$RUN create -b "$b" ov >/dev/null 2>&1 </dev/null; local cr=$?
	$RUN delete -f ov >/dev/null 2>&1
	echo "create=$cr"
}
CASES="hook_status poststart_failure start_container_failure start_waits_for_exec cap_not_in_bounding_set mounts_without_mount_ns oci_version_invalid"
export -f $(for c in $CASES; do echo "case_$c"; done)

# in_ns NAME CMD CASE: run case CASE for runtime NAME (command line CMD) in a private mount
# namespace.
in_ns() {
	local prep=''
	if [ "$1" = crun ] && mountpoint -q /sys/fs/cgroup/unified; then prep='umount /sys/fs/cgroup/unified && '; fi
	mkdir -p "$W/$1"
	RUN="$2 --root $W/$1/state" unshare -m --propagation private bash -c "$prep case_$3 $1"
}

printf '%-26s %-8s %s\n' case runtime outcome
for c in $CASES; do
	ref=$(in_ns runc runc "$c")
	printf '%-26s %-8s %s\n' "$c" runc "$ref"
	printf '%-26s %-8s %s\n' "$c" crun "$(in_ns crun crun "$c")"
	ours=$(in_ns berth "$RT" "$c")
	mark=''; [ "$ours" != "$ref" ] && mark='  DIFF'
	printf '%-26s %-8s %s%s\n' "$c" berth "$ours" "$mark"
done
exit 0
