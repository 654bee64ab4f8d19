#!/bin/bash
# The whole test suite, as root, on a fresh clone: installs its apt packages, builds, runs
# every crate's tests on this host (cgroup v1/hybrid here), the runtime/cgroup/seccomp tests
# again on a real cgroup v2 kernel in qemu, and the end-to-end tests of berthd with the real
# docker CLI and of the berth CLI. Prints a summary; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/deps.sh --test || exit 1
failed=()
step() {
    local name=$1; shift
    echo "=== $name: $*"
    local t=$(date +%s)
    if "$@"; then echo "=== $name: PASS ($(( $(date +%s) - t ))s)"; else echo "=== $name: FAIL ($(( $(date +%s) - t ))s)"; failed+=("$name"); fi
}
step build cargo build --workspace --all-targets
# Lints are configuration (the workspace [lints] table and clippy.toml): any warning fails.
step clippy cargo clippy --workspace --all-targets -- -D warnings
# Root tests create cgroups, namespaces and mounts; two test threads keep the 2-core CI honest.
step unit-and-host cargo test --workspace --no-fail-fast -- --test-threads=2
step cgroup-v2-guest tests/qemu/packages-v2.sh berth-cgroups berth-seccomp berth-runtime-bin
bin=$PWD/target/debug
if [ -x /usr/local/bin/docker ] || command -v docker >/dev/null; then
    step docker-cli tests/e2e/docker-cli.sh "$bin/berthd"
    step docker-build tests/e2e/build.sh "$bin/berthd"
    step build-cache tests/e2e/build-cache.sh "$bin/berthd"
    # berth-built images on Debian's dockerd (registry push/pull, save/load) and the same
    # Dockerfile built by dockerd compared (inspect Config, history); skips without dockerd.
    step build-interop tests/e2e/build-interop.sh "$bin/berthd"
    step crash tests/e2e/crash.sh "$bin/berthd"
    step network tests/e2e/network.sh "$bin/berthd"
    step dns tests/e2e/dns.sh "$bin/berthd"
    step network-bw tests/e2e/network-bw.sh "$bin/berthd" "$bin/berth"
    step tarsplit tests/e2e/tarsplit.sh "$bin/berthd"
    step space tests/e2e/space.sh "$bin/berthd"
    step network-user tests/e2e/network-user.sh "$bin/berthd"
    step network-v6 tests/e2e/network-v6.sh "$bin/berthd"
    step network-cycles tests/e2e/network-cycles.sh "$bin/berthd"
    step compose tests/e2e/compose.sh "$bin/berthd"
    # --storage-opt / volume size= on xfs with prjquota (the guest kernel has XFS quotas).
    step quota-guest tests/qemu/quota-v2.sh "$bin"
    step truthful-proc tests/e2e/truthful-proc.sh "$bin/berthd"
else
    echo "=== docker-cli: SKIPPED (no docker CLI at /usr/local/bin/docker)"
fi
# docker-py (pinned by deps.sh): the compatibility suite, then no output lost by the streams a
# client opens around a container's start and exit (STREAMS_N runs per pattern, 500 by default;
# ~2.5 min on 2 cores). BERTH_COMPARE_DOCKERD=1 runs both against a private dockerd instead.
if python3 -c "import docker" 2>/dev/null; then
    step docker-py python3 tests/e2e/docker-py.py "$bin/berthd"
    step streams python3 tests/e2e/streams.py "$bin/berthd"
    # docker-py's own volumes and networks API tests (pytest; fetched by deps.sh --test).
    step docker-py-upstream tests/e2e/docker-py-upstream.sh "$bin/berthd"
else
    echo "=== docker-py, streams: SKIPPED (no docker-py: pip install docker==7.1.0)"
fi
step berth-cli tests/e2e/with-berthd.sh "$bin/berthd" tests/e2e/cli.sh "$bin/berth"
# berthd or a berth-monitor SIGKILLed at random points (FAULT_ROUNDS, default 50; FAULT_SEED).
step fault python3 tests/e2e/fault.py "$bin/berthd"
echo "=== total $(( $(date +%s) - start ))s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "ALL PASSED"
