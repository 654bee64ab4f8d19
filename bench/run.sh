#!/bin/bash
# All benchmarks (not part of CI); each prints ratios against its peers measured in the same run.
set -uo pipefail
cd "$(dirname "$0")/.."
echo "##### runtime: berth-runtime vs crun vs runc";  bench/runtime.sh
echo "##### daemon: berthd vs dockerd";               bench/daemon.sh
echo "##### image: load/pull vs dockerd";             bench/image/run.sh
