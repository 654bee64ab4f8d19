#!/bin/bash
# berth-runtime vs crun vs runc: `run` of a busybox bundle running /bin/true, measured side by
# side with hyperfine in one run; then berth-runtime with memory+cpu+pids limits and Docker's
# default seccomp profile vs without. Prints ratios. Not part of CI. Run as root.
#   bench/runtime.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100}
export DEBIAN_FRONTEND=noninteractive
for p in hyperfine runc crun busybox-static; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || apt-get install -y -qq "$p" >/dev/null
done
cargo build --release -q -p berth-runtime-bin
cargo build --release -q -p berth-seccomp --example docker_to_oci
B=$PWD/target/release/berth-runtime
# crun refuses hybrid hosts unless hugetlb has a v1 hierarchy.
if [ -d /sys/fs/cgroup/unified ] && [ -d /sys/fs/cgroup/memory ] && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
    mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
fi
w=$(mktemp -d /tmp/berth-bench.XXXXXX)
# Every runtime keeps its state on the same private tmpfs (as /run is on real hosts).
mkdir -p "$w/state" && mount -t tmpfs tmpfs "$w/state"
trap 'umount "$w/state" 2>/dev/null; rm -rf "$w"' EXIT
mkdir -p "$w/plain/rootfs/bin" "$w/plain/rootfs/proc" "$w/plain/rootfs/sys" "$w/plain/rootfs/dev"
cp /bin/busybox "$w/plain/rootfs/bin/"; ln -s busybox "$w/plain/rootfs/bin/true"
(cd "$w/plain" && "$B" spec)
python3 - "$w/plain/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c['process']['terminal'] = False; c['process']['args'] = ['/bin/true']
json.dump(c, open(sys.argv[1], 'w'))
PY
mkdir -p "$w/limited" && ln -s ../plain/rootfs "$w/limited/rootfs"
target/release/examples/docker_to_oci crates/engine/assets/docker-default-seccomp.json > "$w/seccomp.json"
python3 - "$w/plain/config.json" "$w/limited/config.json" "$w/seccomp.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
r = c['linux'].setdefault('resources', {})
r['memory'] = {'limit': 64 << 20}; r['cpu'] = {'quota': 50000, 'period': 100000, 'shares': 512}; r['pids'] = {'limit': 100}
c['linux']['seccomp'] = json.load(open(sys.argv[3]))
json.dump(c, open(sys.argv[2], 'w'))
PY
cmd() { echo "$1 --root $w/state/$2 run --bundle $w/$3 $2"; }
echo "== run /bin/true: berth-runtime vs crun vs runc ($runs runs each, same bundle)"
hyperfine -N -w 10 -r "$runs" --export-json "$w/a.json" \
    -n berth-runtime "$(cmd "$B" b1 plain)" -n crun "$(cmd crun c1 plain)" -n runc "$(cmd runc r1 plain)" >/dev/null
echo "== run /bin/true with memory+cpu+pids limits and Docker's seccomp profile vs without"
hyperfine -N -w 10 -r "$runs" --export-json "$w/b.json" \
    -n plain "$(cmd "$B" b2 plain)" -n limited+seccomp "$(cmd "$B" b3 limited)" >/dev/null
python3 - "$w/a.json" "$w/b.json" <<'PY'
import json, sys
def load(p): return {r['command']: r for r in json.load(open(p))['results']}
a, b = load(sys.argv[1]), load(sys.argv[2])
for name, r in list(a.items()) + list(b.items()):
    print(f"  {name:16s} mean {r['mean']*1000:7.2f} ms  median {r['median']*1000:7.2f} ms  ±{r['stddev']*1000:5.2f}")
m = {k: v['median'] for k, v in a.items()}
print(f"RATIO berth-runtime/crun = {m['berth-runtime']/m['crun']:.2f}  (target <= 0.80)")
print(f"RATIO berth-runtime/runc = {m['berth-runtime']/m['runc']:.2f}  (target <= 0.30)")
n = {k: v['median'] for k, v in b.items()}
print(f"RATIO limited+seccomp/plain = {n['limited+seccomp']/n['plain']:.2f}  (target <= 1.20)")
PY
