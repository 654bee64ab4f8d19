#!/bin/bash
# Run berth-cgroups' tests (unit + root integration) on a real cgroup v2 kernel in qemu.
# Exit status: 0 all passed, 1 a test binary failed, 2 boot/timeout/harness error.
set -euo pipefail
cd "$(dirname "$0")/../.."
# loop: block devices for the io.max tests.
exec scripts/qemu-v2.sh --timeout "${BERTH_QEMU_TIMEOUT:-300}" --module loop --cargo "-p berth-cgroups" "$@"
