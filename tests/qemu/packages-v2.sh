#!/bin/bash
# Run the tests of several packages on a real cgroup v2 kernel in qemu.
#   tests/qemu/packages-v2.sh [PACKAGE...] [-- TEST ARGS...]
# Default packages: berth-cgroups berth-seccomp berth-runtime (override with arguments or
# BERTH_QEMU_PACKAGES). Exit status as scripts/qemu-v2.sh: 0 pass, 1 fail, 2 harness/timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."
pkgs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do pkgs+=("$1"); shift; done
[ ${#pkgs[@]} -gt 0 ] || read -r -a pkgs <<<"${BERTH_QEMU_PACKAGES:-berth-cgroups berth-seccomp berth-runtime}"
args=""
for p in "${pkgs[@]}"; do args="$args -p $p"; done
exec scripts/qemu-v2.sh --timeout "${BERTH_QEMU_TIMEOUT:-900}" --module loop --cargo "$args" "$@"
