#!/usr/bin/env bash
# Client-side cost of `berth` vs the docker CLI against the same daemon, measured in the same run.
# Usage: BERTH_HOST=unix:///run/berth/berth.sock bench/cli/run.sh [IMAGE]
# Needs hyperfine; the docker CLI is optional (only berth is measured without it).
set -eu
: "${BERTH_HOST:?set BERTH_HOST to the daemon socket}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BERTH:-$ROOT/target/release/berth}
IMG=${1:-berth-e2e/busybox:latest}
NET=${BERTH_BENCH_NET:---network none}
export DOCKER_HOST=$BERTH_HOST
command -v hyperfine >/dev/null || { echo "hyperfine not installed"; exit 2; }
[ -x "$B" ] || { echo "build berth first: cargo build --release -p berth"; exit 2; }
D=$(command -v docker || true)
bench() { # name, berth args, runs
    local cmds=("$B $2")
    [ -n "$D" ] && cmds+=("$D $2")
    hyperfine -N --warmup 3 --runs "$3" --export-json /tmp/berth-bench-$$.json "${cmds[@]}" >/dev/null
    python3 - "$1" /tmp/berth-bench-$$.json <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))["results"]
b = r[0]["mean"] * 1000
line = f"{sys.argv[1]:<22} berth {b:8.2f} ms"
if len(r) > 1:
    d = r[1]["mean"] * 1000
    line += f"   docker {d:8.2f} ms   ratio berth/docker {b / d:5.2f}"
print(line)
PY
    rm -f /tmp/berth-bench-$$.json
}
bench "--version" "--version" 50
bench "ps" "ps" 30
bench "run --rm true" "run --rm $NET $IMG true" 10
