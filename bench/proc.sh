#!/usr/bin/env bash
# Truthful /proc cost: read latency of meminfo (host procfs vs a berth-procview provider vs a
# private LXCFS), container start latency with and without the provider (berth-runtime run
# of `true`), and the provider's memory. Needs root, /dev/fuse, busybox-static, lxcfs
# (optional: apt-get install lxcfs). Prints ratios.
#
# The provider's files are read through its mount directory, as the container's bind
# mounts reach the same FUSE connection; LXCFS is read through its own mount, from this
# shell's cgroup. Usage: bench/proc.sh [berth-runtime] (default target/release, then debug).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RT=${1:-}
for c in "$ROOT/target/release/berth-runtime" "$ROOT/target/debug/berth-runtime"; do
    [ -n "$RT" ] || { [ -x "$c" ] && RT=$c; }
done
N=${N:-3000}; STARTS=${STARTS:-30}
W=$(mktemp -d /tmp/berth-proc-bench.XXXXXX)
LXPID=""
cleanup() {
    "$RT" --root "$W/state" delete -f pb 2>/dev/null || true
    [ -n "$LXPID" ] && kill "$LXPID" 2>/dev/null && wait "$LXPID" 2>/dev/null
    umount -l "$W/lxcfs" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/b/rootfs/bin" "$W/b/rootfs/proc" "$W/b/rootfs/sys" "$W/b/rootfs/dev"
cp /bin/busybox "$W/b/rootfs/bin/"; for a in sh true sleep cat; do ln -s busybox "$W/b/rootfs/bin/$a"; done
(cd "$W/b" && "$RT" spec)
conf() { # conf ARGS... TRUTHFUL
    python3 - "$W/b/config.json" "$@" <<'PY'
import json, sys
p, truthful, args = sys.argv[1], sys.argv[2], sys.argv[3:]
c = json.load(open(p)); c["process"]["terminal"] = False; c["process"]["args"] = args
c["annotations"] = {"run.berth.truthful-proc": truthful}
c["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
json.dump(c, open(p, "w"))
PY
}

lat() { # mean µs of open+read+close of $1
    python3 - "$1" "$N" <<'PY'
import os, sys, time
p, n = sys.argv[1], int(sys.argv[2])
for _ in range(100):
    fd = os.open(p, os.O_RDONLY); os.read(fd, 65536); os.close(fd)
t = time.perf_counter()
for _ in range(n):
    fd = os.open(p, os.O_RDONLY); os.read(fd, 65536); os.close(fd)
print(f"{(time.perf_counter() - t) / n * 1e6:.1f}")
PY
}

conf true sleep 600
"$RT" --root "$W/state" create --bundle "$W/b" pb && "$RT" --root "$W/state" start pb
PV="$W/state/pb/procview"
host=$(lat /proc/meminfo); berth=$(lat "$PV/meminfo")
echo "meminfo read: host ${host} us, berth-procview ${berth} us (x$(python3 -c "print(round($berth/$host,2))"))"
for f in cpuinfo stat uptime loadavg; do echo "  $f: host $(lat /proc/$f) us, berth-procview $(lat "$PV/$f") us"; done
ppid=$(cat "$W/state/pb/procview.pid")
awk '/^(Rss|Pss|Private_Clean|Private_Dirty):/{printf "  provider %s %s kB\n", $1, $2}' "/proc/$ppid/smaps_rollup"
"$RT" --root "$W/state" delete -f pb

if command -v lxcfs >/dev/null; then
    mkdir -p "$W/lxcfs"
    lxcfs -f -p "$W/lxcfs.pid" "$W/lxcfs" >"$W/lxcfs.log" 2>&1 & LXPID=$!
    for _ in $(seq 100); do [ -e "$W/lxcfs/proc/meminfo" ] && break; sleep 0.05; done
    lx=$(lat "$W/lxcfs/proc/meminfo")
    echo "meminfo read: LXCFS ${lx} us (x$(python3 -c "print(round($lx/$host,2))") host); berth-procview / LXCFS = $(python3 -c "print(round($berth/$lx,2))")"
    awk '/^(Rss|Pss):/{printf "  lxcfs (one for all containers) %s %s kB\n", $1, $2}' "/proc/$LXPID/smaps_rollup"
else
    echo "LXCFS: not installed (apt-get install lxcfs), skipped"
fi

start() { # mean ms of `run` of true
    conf "$1" true
    python3 - "$RT" "$W" "$STARTS" <<'PY'
import subprocess, sys, time
rt, w, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ts = []
for i in range(n + 3):
    t = time.perf_counter()
    subprocess.run([rt, "--root", w + "/state", "run", "--bundle", w + "/b", f"s{i}"], check=True)
    ts.append(time.perf_counter() - t)
ts = sorted(ts[3:])
print(f"{ts[len(ts) // 2] * 1e3:.2f}")
PY
}
off=$(start false); on=$(start true)
echo "container start (run true, median of $STARTS): without ${off} ms, with ${on} ms (+$(python3 -c "print(round($on-$off,2))") ms)"

# 50 containers reading their /proc/meminfo in a loop at once: one reader per container (in
# the container's cgroups, so LXCFS renders for that container as it would for a process
# inside), first through each container's provider, then through one private LXCFS; per-read
# latency (mean over readers) and the CPU the providers / the lxcfs process used meanwhile.
MANY=${MANY:-50}; SECS=${SECS:-5}
if command -v lxcfs >/dev/null && [ "$MANY" -gt 0 ]; then
    conf true sleep 600
    for i in $(seq "$MANY"); do
        "$RT" --root "$W/state" create --bundle "$W/b" "m$i" && "$RT" --root "$W/state" start "m$i"
    done
    sleep 1
    python3 - "$W" "$MANY" "$SECS" "$LXPID" <<'PY'
import json, os, sys, time
w, many, secs, lxpid = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
hz = os.sysconf("SC_CLK_TCK")
def cpu(pids):
    t = 0
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            t += int(f[11]) + int(f[12])
        except OSError:
            pass
    return t / hz
def join_cgroups(init):
    for l in open(f"/proc/{init}/cgroup"):
        _, ctrls, path = l.rstrip("\n").split(":", 2)
        name = ctrls.replace("name=", "") if ctrls else "unified"
        for base in (f"/sys/fs/cgroup/{name}", "/sys/fs/cgroup" if not ctrls else None):
            if base and os.path.exists(base + path + "/cgroup.procs"):
                try:
                    open(base + path + "/cgroup.procs", "w").write("0")
                except OSError:
                    pass
                break
def phase(paths, server_pids):
    r, kids = [], []
    for init, p in paths:
        rd, wr = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(rd); join_cgroups(init)
            n, end = 0, time.perf_counter() + secs
            t0 = time.perf_counter()
            while time.perf_counter() < end:
                fd = os.open(p, os.O_RDONLY); os.read(fd, 65536); os.close(fd); n += 1
            os.write(wr, f"{(time.perf_counter() - t0) / max(n, 1) * 1e6} {n}".encode()); os._exit(0)
        os.close(wr); r.append(rd); kids.append(pid)
    c0, t0 = cpu(server_pids), time.perf_counter()
    for k in kids: os.waitpid(k, 0)
    c1, el = cpu(server_pids), time.perf_counter() - t0
    res = [tuple(map(float, os.read(fd, 100).split())) for fd in r]
    lat = sum(x for x, _ in res) / len(res); reads = sum(n for _, n in res)
    return lat, (c1 - c0) / el * 100, reads / el
inits = [json.load(open(f"{w}/state/m{i}/state.json"))["pid"] for i in range(1, many + 1)]
provs = [int(open(f"{w}/state/m{i}/procview.pid").read()) for i in range(1, many + 1)]
def kb(pid, key):
    for l in open(f"/proc/{pid}/smaps_rollup"):
        if l.startswith(key + ":"):
            return int(l.split()[1])
    return 0
print(f"{many} providers: Pss {sum(kb(p, 'Pss') for p in provs) / many:.0f} kB each (mean), Rss {sum(kb(p, 'Rss') for p in provs) / many:.0f} kB")
b = phase([(inits[i], f"{w}/state/m{i+1}/procview/meminfo") for i in range(many)], provs)
l = phase([(inits[i], f"{w}/lxcfs/proc/meminfo") for i in range(many)], [lxpid])
print(f"{many} containers reading meminfo in a loop for {secs:.0f} s:")
print(f"  berth-procview: {b[0]:.0f} us per read, providers' CPU {b[1]:.0f} %, {b[2]:.0f} reads/s")
print(f"  LXCFS:          {l[0]:.0f} us per read, lxcfs CPU {l[1]:.0f} %, {l[2]:.0f} reads/s")
print(f"  berth/LXCFS: latency x{b[0]/l[0]:.2f}, CPU x{b[1]/max(l[1], 0.01):.2f}, CPU per read x{(b[1]/b[2])/max(l[1]/l[2], 1e-9):.2f}")
PY
    for i in $(seq "$MANY"); do "$RT" --root "$W/state" delete -f "m$i"; done
fi
