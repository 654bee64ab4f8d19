#!/bin/bash
# `docker build` (classic builder, DOCKER_BUILDKIT=0) against a private berthd: multi-stage
# builds with ARG/ENV/WORKDIR/USER/COPY --from/--chown/HEALTHCHECK, the build cache (all hits
# on a second build, a changed COPY source rebuilds from that step only), .dockerignore,
# heredocs, a failing RUN, a hostile context, `docker history`.
# Usage: tests/e2e/build.sh [path/to/berthd]   (as root; needs /bin/busybox and the docker CLI)
set -u

DOCKER=${DOCKER:-/usr/local/bin/docker}
if [ ! -x "$DOCKER" ]; then
    echo "SKIP build.sh: docker CLI not found at $DOCKER"
    exit 0
fi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BERTHD=${1:-${BERTHD:-}}
if [ -z "$BERTHD" ]; then
    for c in "$ROOT/target/release/berthd" "$ROOT/target/debug/berthd"; do
        [ -x "$c" ] && { BERTHD=$c; break; }
    done
fi
[ -x "${BERTHD:-}" ] || { echo "FAIL berthd binary not found (cargo build -p berthd, or pass its path)"; exit 1; }
[ -x /bin/busybox ] || { echo "FAIL /bin/busybox missing (apt-get install busybox-static)"; exit 1; }

WORK=$(mktemp -d /tmp/berth-build-e2e.XXXXXX)
. "$ROOT/tests/e2e/build-lib.sh"

REG_PID=""
cleanup() {
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
    stop_berthd
    rm -rf "$WORK"
}
trap cleanup EXIT

REG_PORT=$(free_port)
REG=127.0.0.1:$REG_PORT
start_berthd --insecure-registry "$REG"
make_busybox_image
docker load -i "$WORK/image.tar" >/dev/null 2>&1 || { fail "load busybox"; exit 1; }

# --- a multi-stage build ------------------------------------------------------------------------
C=$WORK/ctx
mkdir -p "$C/src/lib" "$C/logs"
echo "hello from src" > "$C/src/main.txt"
echo "lib" > "$C/src/lib/l.txt"
echo "one" > "$C/a.txt"
echo "secret" > "$C/secret.key"
echo "log" > "$C/logs/x.log"
echo "kept" > "$C/logs/keep.log"
printf 'secret.key\nlogs\n!logs/keep.log\nDockerfile\n.dockerignore\n' > "$C/.dockerignore"
cat > "$C/Dockerfile" <<'DF'
ARG BASE=berth-e2e/busybox
FROM ${BASE} AS builder
ARG GREETING=hi
ENV OUT=/out
WORKDIR $OUT
COPY src/ ./src/
RUN echo "$GREETING built" > result.txt && cat src/main.txt >> result.txt
RUN <<EOF
echo heredoc-ran > /out/heredoc.txt
EOF

FROM ${BASE}
LABEL org.example.stage=final
ENV APP_HOME=/app
WORKDIR /app
COPY --from=builder /out/ /app/
COPY --chown=app:staff a.txt ./
COPY logs/ /app/logs/
USER app
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=2s CMD test -f /app/result.txt
CMD ["cat", "/app/result.txt"]
DF
out=$(docker build -t berth-e2e/app:1 --build-arg GREETING=hello "$C" 2>&1); rc=$?
check "build exit" 0 "$rc"
contains "build prints steps" "Step 1/18 : FROM \${BASE} AS builder" "$out"
contains "build streams RUN output as a step" " ---> Running in " "$out"
contains "build ends with Successfully tagged" "Successfully tagged berth-e2e/app:1" "$out"
check "the image runs" "hello built
hello from src" "$(docker run --rm berth-e2e/app:1 2>&1)"
check "heredoc RUN ran" "heredoc-ran" "$(docker run --rm berth-e2e/app:1 cat /app/heredoc.txt 2>&1)"
check "inspect config" "app /app [cat /app/result.txt] map[8080/tcp:{}] final" \
    "$(docker image inspect -f '{{.Config.User}} {{.Config.WorkingDir}} {{.Config.Cmd}} {{.Config.ExposedPorts}} {{index .Config.Labels "org.example.stage"}}' berth-e2e/app:1 2>&1)"
contains "inspect env" "APP_HOME=/app" "$(docker image inspect -f '{{.Config.Env}}' berth-e2e/app:1 2>&1)"
check "inspect healthcheck" "[CMD-SHELL test -f /app/result.txt] 5s 2s" \
    "$(docker image inspect -f '{{.Config.Healthcheck.Test}} {{.Config.Healthcheck.Interval}} {{.Config.Healthcheck.Timeout}}' berth-e2e/app:1 2>&1)"
check "COPY --chown resolved in the image" "1000:50 app" \
    "$(docker run --rm berth-e2e/app:1 stat -c '%u:%g %U' /app/a.txt 2>&1)"
check ".dockerignore excludes and ! re-includes" "keep.log" \
    "$(docker run --rm berth-e2e/app:1 ls /app/logs 2>&1)"
I=$WORK/ignore; mkdir -p "$I/logs" "$I/deep/er"
touch "$I/keep.txt" "$I/secret.key" "$I/logs/a.log" "$I/logs/keep.log" "$I/deep/er/x.tmp" "$I/deep/er/y.txt"
printf 'secret.key\nlogs\n!logs/keep.log\n**/*.tmp\nDockerfile\n.dockerignore\n' > "$I/.dockerignore"
printf 'FROM %s\nCOPY . /ctx/\n' "$IMG" > "$I/Dockerfile"
docker build -q -t berth-e2e/ignore "$I" >/dev/null 2>&1
check ".dockerignore: COPY . sees only what is not excluded (Dockerfile read, not copied)" \
    "/ctx/deep/er/y.txt /ctx/keep.txt /ctx/logs/keep.log" \
    "$(docker run --rm berth-e2e/ignore find /ctx -type f 2>&1 | sort | paste -sd' ')"
hist=$(docker history --no-trunc --format '{{.CreatedBy}}' berth-e2e/app:1 2>&1)
check "history: one entry per instruction of the final stage (+ the base)" 11 "$(printf '%s\n' "$hist" | wc -l)"
contains "history shows metadata steps as nop" "#(nop)  ENV APP_HOME=/app" "$hist"

# --- the cache ----------------------------------------------------------------------------------
start=$(date +%s%N)
out=$(docker build -t berth-e2e/app:1 --build-arg GREETING=hello "$C" 2>&1); rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "cached build exit" 0 "$rc"
check "cached build: every step after FROM is a cache hit" 16 "$(count ' ---> Using cache' "$out")"
lacks "cached build runs nothing" "Running in" "$out"
echo "# cached build of 18 steps: ${ms} ms"
echo "two" > "$C/a.txt"
out=$(docker build -t berth-e2e/app:2 --build-arg GREETING=hello "$C" 2>&1); rc=$?
check "rebuild after a change exit" 0 "$rc"; [ "$rc" = 0 ] || echo "$out" | tail -n 8
check "a changed COPY source rebuilds from that step only (10 hits, 6 rebuilt)" 10 "$(count ' ---> Using cache' "$out")"
check "the change is in the new image" "two" "$(docker run --rm berth-e2e/app:2 cat /app/a.txt 2>&1)"
out=$(docker build --no-cache -q -t berth-e2e/app:3 --build-arg GREETING=hello "$C" 2>/dev/null); rc=$?
check "--no-cache -q exit" 0 "$rc"
check "-q prints the image ID only" "$(docker image inspect -f '{{.Id}}' berth-e2e/app:3)" "$out"

# --- RUN --mount ---------------------------------------------------------------------------------
M=$WORK/mounts; mkdir -p "$M"
echo "bound content" > "$M/in.txt"
cat > "$M/Dockerfile" <<DF
FROM $IMG
RUN --mount=type=cache,target=/cache,id=counter sh -c 'echo x >> /cache/count; wc -l < /cache/count | tr -d " " > /count'
RUN --mount=type=tmpfs,target=/scratch sh -c 'echo t > /scratch/f && cat /scratch/f > /from-tmpfs'
RUN --mount=type=bind,source=in.txt,target=/mnt/in.txt cat /mnt/in.txt > /from-bind
RUN --mount=type=bind,from=$IMG,source=/etc,target=/other-etc head -n 1 /other-etc/passwd > /from-image
COPY <<HEREDOC /from-heredoc.txt
copied from a heredoc
HEREDOC
DF
docker build -q -t berth-e2e/mounts "$M" >/dev/null 2>&1
docker build -q --no-cache --network none -t berth-e2e/mounts "$M" >/dev/null 2>&1; rc=$?
check "RUN --mount build exit" 0 "$rc"
check "cache mount kept between builds" 2 "$(docker run --rm berth-e2e/mounts cat /count 2>&1)"
check "tmpfs mount: used, not in the image" "t|absent" \
    "$(docker run --rm berth-e2e/mounts sh -c 'cat /from-tmpfs; [ -e /scratch/f ] && echo present || echo absent' 2>&1 | paste -sd'|')"
check "bind mount of the context" "bound content" "$(docker run --rm berth-e2e/mounts cat /from-bind 2>&1)"
check "bind mount of an image" "root:x:0:0:root:/root:/bin/sh" "$(docker run --rm berth-e2e/mounts cat /from-image 2>&1)"
check "COPY of a heredoc" "copied from a heredoc" "$(docker run --rm berth-e2e/mounts cat /from-heredoc.txt 2>&1)"
check "bind mounts leave nothing in the image" "absent" \
    "$(docker run --rm berth-e2e/mounts sh -c '[ -e /mnt/in.txt ] && echo present || echo absent' 2>&1)"

# --- a base image pulled from the loopback registry, the result pushed there ----------------------
if command -v docker-registry >/dev/null; then
    mkdir -p "$WORK/reg"
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$WORK/reg" "$REG" >"$WORK/reg.yml"
    docker-registry serve "$WORK/reg.yml" >"$WORK/reg.log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$REG_PORT") 2>/dev/null && break; sleep 0.1; done
    docker tag "$IMG" "$REG/e2e/base:1" && docker push "$REG/e2e/base:1" >/dev/null 2>&1 && docker rmi "$REG/e2e/base:1" >/dev/null 2>&1
    P=$WORK/pull; mkdir -p "$P"
    printf 'FROM %s\nRUN echo on-a-pulled-base > /p\n' "$REG/e2e/base:1" > "$P/Dockerfile"
    out=$(docker build -t "$REG/e2e/built:1" "$P" 2>&1); rc=$?
    check "FROM a missing image pulls it: exit" 0 "$rc"
    contains "FROM a missing image pulls it: progress" "Pulling from e2e/base" "$out"
    out=$(docker push "$REG/e2e/built:1" 2>&1); rc=$?
    check "the built image pushes to the loopback registry" 0 "$rc"
    docker rmi "$REG/e2e/built:1" >/dev/null 2>&1
    docker pull -q "$REG/e2e/built:1" >/dev/null 2>&1
    check "and pulls back and runs" "on-a-pulled-base" "$(docker run --rm "$REG/e2e/built:1" cat /p 2>&1)"
    # pull=1: the base is pulled again although it is here (the registry has a newer one).
    old=$(docker image inspect -f '{{.Id}}' "$REG/e2e/base:1")
    printf 'FROM %s\nRUN echo v2 > /v\n' "$IMG" | docker build -q -t "$REG/e2e/base:1" - >/dev/null 2>&1
    docker push "$REG/e2e/base:1" >/dev/null 2>&1
    docker tag "$old" "$REG/e2e/base:1"
    printf 'FROM %s\nRUN cat /v > /got || echo old > /got\n' "$REG/e2e/base:1" > "$P/Dockerfile"
    docker build -q -t berth-e2e/nopull "$P" >/dev/null 2>&1
    check "without pull the local base is used" "old" "$(docker run --rm berth-e2e/nopull cat /got 2>&1)"
    out=$(docker build --pull -t berth-e2e/pull "$P" 2>&1); rc=$?
    check "--pull: exit" 0 "$rc"
    contains "--pull pulls the base again" "Pulling from e2e/base" "$out"
    check "--pull: the registry's newer base" "v2" "$(docker run --rm berth-e2e/pull cat /got 2>&1)"
else
    echo "SKIP registry checks (docker-registry not installed)"
fi

# --- ADD of a URL (a loopback HTTP server) ---------------------------------------------------------
U=$WORK/urlsrv; mkdir -p "$U/files"
echo "served over http" > "$U/files/remote.txt"
HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$U/files" "$HTTP_PORT" >"$WORK/http.log" 2>&1 &
HTTP_PID=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null && break; sleep 0.1; done
printf 'FROM %s\nADD http://127.0.0.1:%s/remote.txt /dl/\n' "$IMG" "$HTTP_PORT" > "$U/Dockerfile"
out=$(docker build -t berth-e2e/url "$U" 2>&1); rc=$?
check "ADD of a URL: exit" 0 "$rc"
check "ADD of a URL: the file, mode 0600" "served over http|600" \
    "$(docker run --rm berth-e2e/url sh -c 'cat /dl/remote.txt; stat -c %a /dl/remote.txt' 2>&1 | paste -sd'|')"
printf 'FROM %s\nADD http://127.0.0.1:%s/missing.txt /dl/\n' "$IMG" "$HTTP_PORT" > "$U/Dockerfile"
out=$(docker build "$U" 2>&1); rc=$?
[ "$rc" -ne 0 ] && pass "ADD of a missing URL fails" || fail "ADD of a missing URL exited 0"
contains "ADD of a missing URL: the reason" "404" "$out"
kill "$HTTP_PID" 2>/dev/null; wait "$HTTP_PID" 2>/dev/null

# --- docker-compose 1.29 `build:` (docker-py's build API) ----------------------------------------
if command -v docker-compose >/dev/null; then
    CP=$WORK/compose; mkdir -p "$CP/app"
    printf 'FROM %s\nARG MSG=default\nRUN echo "compose $MSG" > /msg\nCMD ["cat", "/msg"]\n' "$IMG" > "$CP/app/Dockerfile"
    printf 'version: "3"\nservices:\n  web:\n    build:\n      context: ./app\n      args:\n        MSG: built\n    image: berth-e2e/compose-web:1\n' > "$CP/docker-compose.yml"
    out=$(cd "$CP" && timeout 120 docker-compose build 2>&1); rc=$?
    check "docker-compose build: exit" 0 "$rc"
    check "docker-compose build: the image runs" "compose built" "$(docker run --rm berth-e2e/compose-web:1 2>&1)"
else
    echo "SKIP docker-compose build (docker-compose not installed)"
fi

# --- --target, failures, hostile contexts -------------------------------------------------------
W=$WORK/workdir; mkdir -p "$W"
printf 'FROM %s\nWORKDIR /made/by\nWORKDIR workdir\nWORKDIR /bin\n' "$IMG" > "$W/Dockerfile"
docker build -q -t berth-e2e/workdir "$W" >/dev/null 2>&1
check "WORKDIR makes a missing directory in the image" "/made/by/workdir" \
    "$(docker run --rm -w / berth-e2e/workdir sh -c 'ls -d /made/by/workdir' 2>&1)"
check "WORKDIR: a layer where it made a directory, none where one was there" 3 \
    "$(docker image inspect -f '{{len .RootFS.Layers}}' berth-e2e/workdir 2>&1)"
docker build -q --target builder -t berth-e2e/builder "$C" >/dev/null 2>&1
check "--target builds up to that stage" "/out" "$(docker image inspect -f '{{.Config.WorkingDir}}' berth-e2e/builder 2>&1)"
F=$WORK/fail; mkdir -p "$F"
printf 'FROM %s\nRUN echo before-failing; exit 3\n' "$IMG" > "$F/Dockerfile"
out=$(docker build "$F" 2>&1); rc=$?
[ "$rc" -ne 0 ] && pass "failing RUN: non-zero exit ($rc)" || fail "failing RUN exited 0"
contains "failing RUN: its output" "before-failing" "$out"
contains "failing RUN: Docker's message" "The command '/bin/sh -c echo before-failing; exit 3' returned a non-zero code: 3" "$out"
H=$WORK/hostile; mkdir -p "$H"
ln -s /etc/passwd "$H/passwd"
ln -s ../../../../../../etc "$H/etc-up"
printf 'FROM %s\nCOPY passwd /got\n' "$IMG" > "$H/Dockerfile"
out=$(docker build -t berth-e2e/hostile "$H" 2>&1); rc=$?
[ "$rc" -ne 0 ] && pass "symlink to /etc/passwd: COPY refused ($rc)" || fail "symlink to /etc/passwd was copied"
printf 'FROM %s\nCOPY etc-up/ /got/\n' "$IMG" > "$H/Dockerfile"
docker build -t berth-e2e/hostile "$H" >/dev/null 2>&1
lacks "symlink to ../../etc: no host file copied" "root:x:0:0:root:/root:/bin/bash" "$(docker run --rm berth-e2e/hostile cat /got/passwd 2>&1)"
out=$(printf 'FROM %s\nFORM x\n' "$IMG" | docker build - 2>&1); rc=$?
[ "$rc" -ne 0 ] && pass "parse error: non-zero exit" || fail "parse error exited 0"
contains "parse error names the line" "Dockerfile:2: unknown instruction: FORM" "$out"
# Dangling: only the first stage's last image (no child), of the cached builds and of the
# --no-cache one, and the mounts image the --no-cache rebuild untagged, as dockerd's classic
# builder leaves them; every other step is hidden.
check "docker images hides the intermediate images" 3 "$(docker images -q --filter dangling=true | wc -l)"
[ "$(docker images -aq | wc -l)" -gt "$(docker images -q | wc -l)" ] && pass "docker images -a shows them" || fail "docker images -a shows no intermediate image"
# image prune keeps the intermediates that have a child (not dangling, as dockerd): a rebuild
# redoes only the first stage's last step (it had no child), and its COPY --from hits again
# on content.
docker image prune -f >/dev/null 2>&1
out=$(docker build -t berth-e2e/app:1 --build-arg GREETING=hello "$C" 2>&1)
check "after image prune the cache of the tagged image stays" 15 "$(count ' ---> Using cache' "$out")"
out=$(docker builder prune -f 2>&1); rc=$?
check "builder prune exit" 0 "$rc"
out=$(docker build -t berth-e2e/app:1 --build-arg GREETING=hello "$C" 2>&1)
check "after builder prune nothing is a cache hit" 0 "$(count ' ---> Using cache' "$out")"

# Multi-stage: only the stages the target needs, independent ones concurrently, output in
# Dockerfile order; a failing stage stops the others.
MS=$WORK/multi; mkdir -p "$MS"
cat > "$MS/Dockerfile" <<DF
FROM $IMG AS one
RUN sleep 1 && echo one > /one
FROM $IMG AS unused
RUN echo should-not-run
FROM $IMG AS two
RUN sleep 1 && echo two > /two
FROM $IMG
COPY --from=one /one /one
COPY --from=two /two /two
DF
t0=$(date +%s%N)
out=$(docker build --no-cache -t berth-e2e/multi "$MS" 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "concurrent stages: exit" 0 "$rc"
[ "$ms" -lt 1800 ] && pass "two independent 'RUN sleep 1' stages take ${ms} ms (< 1800)" \
    || fail "two independent 'RUN sleep 1' stages took ${ms} ms"
check "concurrent stages: the final image" "one two" "$(docker run --rm berth-e2e/multi cat /one /two 2>&1 | paste -sd' ')"
lacks "a stage the target does not need is not built" "should-not-run" "$out"
check "concurrent stages: steps printed in order" "1 2 3 4 5 6 7" \
    "$(printf '%s\n' "$out" | sed -n 's|^Step \([0-9]*\)/7 : .*|\1|p' | paste -sd' ')"
check "concurrent stages: each RUN's output under its step" "Step 2/7 : RUN sleep 1 && echo one > /one| ---> Running in" \
    "$(printf '%s\n' "$out" | grep -A1 '^Step 2/7' | sed 's/Running in .*/Running in/' | paste -sd'|')"
cat > "$MS/Dockerfile" <<DF
FROM $IMG AS slow
RUN sleep 30
FROM $IMG AS bad
RUN echo failing-stage; exit 5
FROM $IMG
COPY --from=slow /etc/passwd /a
COPY --from=bad /etc/passwd /b
DF
before=$(docker ps -aq | wc -l)
t0=$(date +%s%N)
out=$(docker build --force-rm -t berth-e2e/multi-fail "$MS" 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" -ne 0 ] && pass "a failing stage fails the build ($rc)" || fail "a failing stage's build exited 0"
contains "a failing stage: its message" "The command '/bin/sh -c echo failing-stage; exit 5' returned a non-zero code: 5" "$out"
[ "$ms" -lt 10000 ] && pass "a failing stage stops the other stage's 'RUN sleep 30' (${ms} ms)" \
    || fail "the other stage ran on after a stage failed (${ms} ms)"
check "a failing stage (--force-rm): no container left" "$before" "$(docker ps -aq | wc -l)"
check "a failing stage: nothing tagged" "" "$(docker images -q berth-e2e/multi-fail 2>&1)"

# The request's parameters for the RUN containers, labels, rm, platform.
Q=$WORK/params; mkdir -p "$Q"
cat > "$Q/Dockerfile" <<DF
FROM $IMG
RUN (cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max) > /mem; \\
    (cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight) > /shares; \\
    (cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max) > /quota; \\
    (cat /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null || cat /sys/fs/cgroup/cpuset.cpus) > /cpus; \\
    df -k /dev/shm | tail -n 1 | awk '{print \$2}' > /shm; \\
    grep -c 'buildhost' /etc/hosts > /hosts; ls /sys/class/net | paste -sd' ' > /net
DF
out=$(docker build --no-cache -q --memory 64m --cpu-shares 512 --cpu-quota 50000 --cpu-period 100000 \
    --cpuset-cpus 0 --shm-size 8m --add-host buildhost:10.1.2.3 --network none \
    --label org.example.built=by-e2e -t berth-e2e/params "$Q" 2>&1); rc=$?
check "build parameters: exit" 0 "$rc"
pv() { docker run --rm berth-e2e/params cat "$1" 2>&1; }
check "memory in the RUN's cgroup" 67108864 "$(pv /mem)"
shares=$(pv /shares); case "$shares" in 512|20) pass "cpushares in the RUN's cgroup ($shares)";; *) fail "cpushares: got [$shares]";; esac
check "cpuquota in the RUN's cgroup" 50000 "$(pv /quota)"
check "cpusetcpus in the RUN's cgroup" 0 "$(pv /cpus)"
check "shmsize: /dev/shm of the RUN" 8192 "$(pv /shm)"
check "extrahosts in the RUN's /etc/hosts" 1 "$(pv /hosts)"
check "networkmode none: no interface but lo" "lo" "$(pv /net)"
check "labels on the built image" "by-e2e" "$(docker image inspect -f '{{index .Config.Labels "org.example.built"}}' berth-e2e/params 2>&1)"
docker build --no-cache -q --network host -t berth-e2e/params "$Q" >/dev/null 2>&1
[ "$(pv /net)" != lo ] && pass "networkmode host: the host's interfaces ($(pv /net | wc -w))" || fail "networkmode host: only lo"
before=$(docker ps -aq | wc -l)
docker build --no-cache -q --rm=false -t berth-e2e/params "$Q" >/dev/null 2>&1
check "rm=false keeps the RUN's container" $((before + 1)) "$(docker ps -aq | wc -l)"
docker ps -aq | head -n $(( $(docker ps -aq | wc -l) - before )) | xargs -r "$DOCKER" rm -f >/dev/null 2>&1
out=$(docker build --platform linux/amd64 -q "$Q" 2>&1); rc=$?
check "platform of the host: exit" 0 "$rc"
out=$(docker build --platform linux/s390x "$Q" 2>&1); rc=$?
[ "$rc" -ne 0 ] && pass "another platform fails" || fail "platform linux/s390x exited 0"
contains "another platform: a clear error" "platform linux/s390x is not supported" "$out"

# A client that goes away mid-RUN: the step is killed, its container removed, nothing tagged.
X=$WORK/cancel; mkdir -p "$X"
printf 'FROM %s\nRUN echo started-long-step; sleep 60\nRUN touch /never\n' "$IMG" > "$X/Dockerfile"
before=$(docker ps -aq | wc -l)
"$DOCKER" build -t berth-e2e/cancelled "$X" >"$WORK/cancel.out" 2>&1 &
cpid=$!
for _ in $(seq 100); do grep -q started-long-step "$WORK/cancel.out" && break; sleep 0.1; done
contains "cancel: the long step runs" "started-long-step" "$(cat "$WORK/cancel.out")"
kill -9 "$cpid"; wait "$cpid" 2>/dev/null
for _ in $(seq 50); do [ "$(docker ps -aq | wc -l)" = "$before" ] && break; sleep 0.1; done
check "cancel: the step's container is removed" "$before" "$(docker ps -aq | wc -l)"
check "cancel: nothing tagged" "" "$(docker images -q berth-e2e/cancelled 2>&1)"

# The failing RUN's container stays (rm=1 without forcerm, as Docker); no other is left.
check "only the failed step's container is left" 1 "$(docker ps -aq | wc -l)"

echo "build.sh: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
