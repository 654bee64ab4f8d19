#!/bin/bash
# The build cache with the docker CLI (classic builder) against a private berthd:
# `--cache-from` (an image saved, its cache pruned, loaded again: a rebuild with it as cache
# source hits every step and gives the same image ID; without it the steps run), and the build
# cache in `system df` (entries, sizes, reclaimable, `-v`) and `builder prune` (`--filter until=`,
# `type=`; SpaceReclaimed equal to what df called reclaimable).
# Usage: tests/e2e/build-cache.sh [path/to/berthd]   (as root; needs /bin/busybox, docker CLI)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ ! -x "${DOCKER:-/usr/local/bin/docker}" ]; then echo "SKIP build-cache.sh: no docker CLI"; exit 0; fi
BERTHD=${1:-${BERTHD:-$ROOT/target/debug/berthd}}
[ -x "$BERTHD" ] || { echo "FAIL berthd binary not found"; exit 1; }
[ -x /bin/busybox ] || { echo "FAIL /bin/busybox missing (apt-get install busybox-static)"; exit 1; }
WORK=$(mktemp -d /tmp/berth-build-cache.XXXXXX)
. "$ROOT/tests/e2e/build-lib.sh"
trap 'stop_berthd; rm -rf "$WORK"' EXIT
start_berthd
make_busybox_image
docker load -i "$WORK/image.tar" >/dev/null 2>&1 || { fail "load busybox"; exit 1; }

# --- --cache-from ---------------------------------------------------------------------------
C=$WORK/ctx; mkdir -p "$C"
echo "content" > "$C/f.txt"
cat > "$C/Dockerfile" <<DF
FROM $IMG
ARG V=1
ENV A=b
WORKDIR /w
COPY f.txt ./
RUN echo "v=\$V" > /r && cat f.txt >> /r
WORKDIR /w
LABEL l=x
RUN touch /second
CMD ["cat", "/r"]
DF
steps=9
docker build -t cf/app:1 --build-arg V=2 "$C" >"$WORK/b1.out" 2>&1; rc=$?
check "first build exit" 0 "$rc"
id1=$(docker image inspect -f '{{.Id}}' cf/app:1 2>&1)
docker save -o "$WORK/app.tar" cf/app:1 2>&1; check "save exit" 0 "$?"
docker rmi cf/app:1 >/dev/null 2>&1
docker builder prune -af >/dev/null 2>&1
docker load -i "$WORK/app.tar" >/dev/null 2>&1; check "load exit" 0 "$?"
check "the loaded image has the built ID" "$id1" "$(docker image inspect -f '{{.Id}}' cf/app:1 2>&1)"
out=$(docker build -t cf/other --build-arg V=2 "$C" 2>&1); rc=$?
check "without --cache-from: exit" 0 "$rc"
check "without --cache-from: no step is a cache hit" 0 "$(count ' ---> Using cache' "$out")"
check "without --cache-from: both RUN steps run" 2 "$(count ' ---> Running in' "$out")"
[ "$(docker image inspect -f '{{.Id}}' cf/other 2>&1)" != "$id1" ] && pass "without --cache-from: a new image" || fail "without --cache-from: the same image ID"
out=$(docker build --cache-from cf/app:1 -t cf/again --build-arg V=2 "$C" 2>&1); rc=$?
check "--cache-from: exit" 0 "$rc"; [ "$rc" = 0 ] || echo "$out" | tail -n 5
check "--cache-from: every step is a cache hit" "$steps" "$(count ' ---> Using cache' "$out")"
lacks "--cache-from: nothing runs" "Running in" "$out"
check "--cache-from: the same image ID" "$id1" "$(docker image inspect -f '{{.Id}}' cf/again 2>&1)"
check "--cache-from: the image runs" "v=2
content" "$(docker run --rm cf/again 2>&1)"
out=$(docker build --cache-from cf/app:1 -t cf/v3 --build-arg V=3 "$C" 2>&1); rc=$?
check "--cache-from with another build arg: exit" 0 "$rc"
check "--cache-from with another build arg: hits up to the RUN that uses it" 4 "$(count ' ---> Using cache' "$out")"
check "--cache-from with another build arg: the rest runs" "v=3" "$(docker run --rm cf/v3 head -n 1 /r 2>&1)"
out=$(docker build --cache-from no/such:image -t cf/none --build-arg V=2 "$C" 2>&1); rc=$?
check "--cache-from an image that is not here: skipped, the build runs" 0 "$rc"
out=$(docker build --cache-from cf/app:1 --no-cache -t cf/nc --build-arg V=2 "$C" 2>&1)
check "--no-cache wins over --cache-from" 0 "$(count ' ---> Using cache' "$out")"

# Multi-stage, the final image as the source: the first stage runs (its image is not a
# source), the final stage's steps come from the source (COPY --from matched on content).
MS=$WORK/multi; mkdir -p "$MS"
printf 'FROM %s AS builder\nRUN echo built > /out.txt\nFROM %s\nCOPY --from=builder /out.txt /app/\nENV X=1\nCMD ["cat", "/app/out.txt"]\n' "$IMG" "$IMG" > "$MS/Dockerfile"
docker build -q -t cf/multi:1 "$MS" >/dev/null 2>&1
mid=$(docker image inspect -f '{{.Id}}' cf/multi:1 2>&1)
docker save -o "$WORK/multi.tar" cf/multi:1; docker rmi cf/multi:1 >/dev/null 2>&1
docker builder prune -af >/dev/null 2>&1; docker load -i "$WORK/multi.tar" >/dev/null 2>&1
out=$(docker build --cache-from cf/multi:1 -t cf/multi:2 "$MS" 2>&1); rc=$?
check "multi-stage --cache-from: exit" 0 "$rc"
check "multi-stage --cache-from: the first stage's RUN runs" 1 "$(count ' ---> Running in' "$out")"
check "multi-stage --cache-from: the final stage's 3 steps are cache hits" 3 "$(count ' ---> Using cache' "$out")"
check "multi-stage --cache-from: the same image ID" "$mid" "$(docker image inspect -f '{{.Id}}' cf/multi:2 2>&1)"

# --- build cache in system df and builder prune -----------------------------------------------
docker builder prune -af >/dev/null 2>&1
M=$WORK/mount; mkdir -p "$M"
cat > "$M/Dockerfile" <<DF
FROM $IMG
RUN --mount=type=cache,target=/cache,id=big dd if=/dev/urandom of=/cache/blob bs=1M count=2 2>/dev/null && echo made > /made
ENV X=1
DF
docker build -q -t cache/m "$M" >/dev/null 2>&1; check "cache-mount build exit" 0 "$?"
mkdir -p "$WORK/gone"; printf 'FROM %s\nRUN echo gone > /g\n' "$IMG" > "$WORK/gone/Dockerfile"
docker build -q -t cache/gone "$WORK/gone" >/dev/null 2>&1
docker rmi cache/gone >/dev/null 2>&1
df=$(api GET /system/df)
n_entries=$(echo "$df" | jq '.BuildCache | length')
check "df lists the entries (3 step records, one of a removed image, + 1 cache mount)" 4 "$n_entries"
check "df: the cache mount" "exec.cachemount" "$(echo "$df" | jq -r '[.BuildCache[] | select(.Type=="exec.cachemount")][0].Type')"
msize=$(echo "$df" | jq '[.BuildCache[] | select(.Type=="exec.cachemount")][0].Size')
[ "$msize" -ge 2097152 ] && pass "df: the cache mount's size counts its 2 MiB ($msize)" || fail "df: cache mount size $msize < 2 MiB"
total=$(echo "$df" | jq '[.BuildCache[].Size] | add')
check "df: BuildCacheUsage.TotalSize is the entries' sum" "$total" "$(echo "$df" | jq '.BuildCacheUsage.TotalSize')"
check "df: nothing in use, all reclaimable" "$total" "$(echo "$df" | jq '.BuildCacheUsage.Reclaimable')"
contains "df: a record describes its step" "dd if=/dev/urandom" "$(echo "$df" | jq -r '.BuildCache[].Description')"
out=$(docker system df 2>&1)
check "docker system df: the Build Cache row (4 entries, none active)" 1 "$(echo "$out" | grep -cE '^Build Cache +4 +0 ')"
out=$(docker system df -v 2>&1)
contains "docker system df -v lists the cache mount" "exec.cachemount" "$out"
contains "docker system df -v lists step records" "regular" "$out"
out=$(docker builder prune -af --filter until=1h 2>&1)
contains "builder prune -a --filter until=1h: nothing that recent" "Total reclaimed space: 0B" "$out"
check "... and every entry stays" 4 "$(api GET /system/df | jq '.BuildCache | length')"
out=$(api POST "/build/prune?all=1&filters=%7B%22type%22%3A%5B%22exec.cachemount%22%5D%7D")
check "builder prune -a --filter type=exec.cachemount: the mount only" 1 "$(echo "$out" | jq '.CachesDeleted | length')"
check "... its size reclaimed" "$msize" "$(echo "$out" | jq '.SpaceReclaimed')"
reclaim=$(api GET /system/df | jq '.BuildCacheUsage.Reclaimable')
out=$(docker builder prune -f 2>&1)
human=$(python3 -c 'import sys
n=float(sys.argv[1]); u=["B","kB","MB","GB","TB"]; i=0
while n>=1000 and i<4: n/=1000; i+=1
print("%.4g%s" % (n, u[i]))' "$reclaim")
check "docker builder prune: the total reclaimed is what df called reclaimable ($reclaim)" \
    "Total reclaimed space: $human" "$(echo "$out" | grep 'Total reclaimed space')"
check "builder prune: the build cache is empty" 0 "$(api GET /system/df | jq '.BuildCache | length')"
out=$(docker build -t cache/m "$M" 2>&1)
check "after builder prune -a the steps run again" 0 "$(count ' ---> Using cache' "$out")"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X POST "http://localhost/build/prune?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D")
check "builder prune: an unknown filter is a 400" 400 "$code"

# The berth CLI: `system df` counts the build cache, `builder prune` empties it.
BERTH=$(dirname "$BERTHD")/berth
if [ -x "$BERTH" ]; then
    export BERTH_HOST=$DOCKER_HOST
    n=$(api GET /system/df | jq '.BuildCache | length')
    check "berth system df: the Build Cache row" 1 "$("$BERTH" system df 2>&1 | grep -cE "^Build Cache +$n +0 ")"
    out=$("$BERTH" builder prune -f 2>&1); rc=$?
    check "berth builder prune: exit" 0 "$rc"
    contains "berth builder prune: the total" "Total reclaimed space:" "$out"
    check "berth builder prune: the build cache is empty" 0 "$(api GET /system/df | jq '.BuildCache | length')"
else
    echo "SKIP berth CLI checks ($BERTH not built)"
fi

echo "build-cache.sh: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
