#!/bin/bash
# Run berth-runtime's end-to-end tests (bins/berth-runtime/tests: runtime.rs and resources.rs,
# driving the berth-runtime binary) on a real cgroup v2 kernel in qemu. The same tests run on
# the host (v1/hybrid) with `cargo test -p berth-runtime-bin`.
#   tests/qemu/runtime-v2.sh [-- TEST FILTER / ARGS...]
# Exit status as scripts/qemu-v2.sh: 0 all passed, 1 a test binary failed, 2 boot/timeout/harness.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec scripts/qemu-v2.sh --timeout "${BERTH_QEMU_TIMEOUT:-900}" --cargo "-p berth-runtime-bin" "$@"
