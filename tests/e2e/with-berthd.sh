#!/bin/bash
# Run a command against a private berthd: start it on a temporary socket and root, export
# BERTH_HOST/DOCKER_HOST for the command, stop berthd (by its pid) and clean up afterwards.
#   tests/e2e/with-berthd.sh path/to/berthd COMMAND [ARGS...]
set -uo pipefail
berthd=${1:?usage: with-berthd.sh BERTHD COMMAND [ARGS...]}; shift
dir=$(mktemp -d /tmp/berth-e2e.XXXXXX)
sock=$dir/berth.sock
"$berthd" --root "$dir/root" --exec-root "$dir/run" -H "unix://$sock" --bridge "bw$$" --pidfile "$dir/berthd.pid" >"$dir/berthd.log" 2>&1 &
pid=$!
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
if [ ! -S "$sock" ]; then echo "with-berthd: berthd did not start:"; cat "$dir/berthd.log"; kill "$pid" 2>/dev/null; exit 1; fi
export BERTH_HOST=unix://$sock DOCKER_HOST=unix://$sock
"$@"
rc=$?
# Containers outlive berthd by design (live-restore): remove what this run left first.
berth=$(dirname "$berthd")/berth
if [ -x "$berth" ]; then
    ids=$("$berth" ps -aq 2>/dev/null)
    [ -n "$ids" ] && "$berth" rm -f $ids >/dev/null 2>&1
fi
kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
[ $rc -eq 0 ] || { echo "--- berthd log (tail)"; tail -n 40 "$dir/berthd.log"; }
umount -R "$dir/root" 2>/dev/null || true
rm -rf "$dir" 2>/dev/null || true
exit $rc
