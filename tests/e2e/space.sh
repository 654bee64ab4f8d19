#!/bin/bash
# Space is given back, through the docker CLI, on a private berthd (its own root: nothing else
# loads into it meanwhile): after `load` + `rmi`, and after `load` of two images sharing a
# layer + `image prune -a`, the root's disk use returns to within 1 MB of where it started;
# `system df` said beforehand what was reclaimable (each layer counted once: the two images
# share one), and prune's "Total reclaimed space" is that.
#   tests/e2e/space.sh BERTHD
set -uo pipefail
cd "$(dirname "$0")/../.."
berthd=${1:?usage: space.sh BERTHD}
[ "$berthd" = --inner ] || berthd=$(readlink -f "$berthd")
DOCKER=${DOCKER:-/usr/local/bin/docker}
[ -x "$DOCKER" ] || { echo "SKIP space.sh: docker CLI not found at $DOCKER"; exit 0; }
if [ "$berthd" != --inner ]; then
    exec tests/e2e/with-berthd.sh "$berthd" "$PWD/tests/e2e/space.sh" --inner
fi
root=$(dirname "${DOCKER_HOST#unix://}")/root
work=$(mktemp -d /tmp/berth-space.XXXXXX)
trap 'rm -rf "$work"' EXIT
PASS=0 FAIL=0
check() { if [ "$2" = "$3" ]; then PASS=$((PASS+1)); echo "PASS $1"; else FAIL=$((FAIL+1)); echo "FAIL $1: expected [$2] got [$3]"; fi; }
d() { "$DOCKER" "$@"; }

# Two images sharing a busybox layer, each with its own layer of random data.
a=$work/a
mkdir -p "$a" "$work/bb/bin"
cp /bin/busybox "$work/bb/bin/busybox"
for x in sh true; do ln -s busybox "$work/bb/bin/$x"; done
layer() { # TREE -> sha256 of its tar, stored in $a
    tar --sort=name --numeric-owner --mtime=@0 -C "$1" -cf "$work/l.tar" .
    local s; s=$(sha256sum "$work/l.tar" | cut -d' ' -f1)
    mkdir -p "$a/$s"; mv "$work/l.tar" "$a/$s/layer.tar"; echo "$s"
}
base=$(layer "$work/bb")
entries=""
for i in 1 2; do
    mkdir -p "$work/own$i"; head -c $((3 + i))M /dev/urandom >"$work/own$i/data"
    own=$(layer "$work/own$i")
    cfg=$(printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],"Labels":{"i":"%s"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]}}' "$i" "$base" "$own")
    c=$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1); printf '%s' "$cfg" >"$a/$c.json"
    printf '[{"Config":"%s.json","RepoTags":["space/img:%s"],"Layers":["%s/layer.tar","%s/layer.tar"]}]' "$c" "$i" "$base" "$own" >"$a/manifest.json"
    (cd "$a" && tar -cf "$work/img$i.tar" manifest.json "$c.json" "$base" "$own")
    rm "$a/manifest.json"
done

# The root's disk use (KiB) once it holds still for 2 s (layer blobs are dropped, records
# synced in the background).
settled() {
    local last=-1 same=0 now
    for _ in $(seq 120); do
        now=$(du -sk "$root" | cut -f1)
        if [ "$now" = "$last" ]; then same=$((same+1)); [ $same -ge 4 ] && break; else same=0; fi
        last=$now; sleep 0.5
    done
    echo "$now"
}
within_1mb() { local diff=$(( $2 - $1 )); [ ${diff#-} -le 1024 ] && echo yes || echo "no ($1 -> $2 KiB)"; }

start=$(settled)
d load -q -i "$work/img1.tar" >/dev/null
loaded=$(settled)
d rmi -f space/img:1 >/dev/null
check "load + rmi: the root back within 1 MB" yes "$(within_1mb "$start" "$(settled)")"
[ $((loaded - start)) -gt 4096 ] && echo "  (the load took $((loaded - start)) KiB)"

d load -q -i "$work/img1.tar" >/dev/null; d load -q -i "$work/img2.tar" >/dev/null
settled >/dev/null
reclaimable=$(d system df --format '{{.Type}} {{.Reclaimable}}' | awk '$1=="Images" {print $2}')
out=$(d image prune -af 2>&1)
reclaimed=$(echo "$out" | sed -n 's/^Total reclaimed space: //p')
# (The CLI prints both with 4 significant digits, decimal units: equal within 100 kB.)
agree=$(python3 - "$reclaimable" "$reclaimed" <<'PY'
import re, sys
def b(s):
    m = re.fullmatch(r"([0-9.]+)([kMG]?B)", s)
    return float(m[1]) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[m[2]] if m else -1e12
r, p = map(b, sys.argv[1:3])
print("yes" if r > 1e6 and abs(r - p) <= 1e5 else f"no (system df {sys.argv[1]}, prune {sys.argv[2]})")
PY
)
check "image prune -a reclaims what system df called reclaimable ($reclaimable)" yes "$agree"
check "image prune -a: no image left" "" "$(d images -q)"
check "load x2 + image prune -a: the root back within 1 MB" yes "$(within_1mb "$start" "$(settled)")"
echo "# space.sh: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
