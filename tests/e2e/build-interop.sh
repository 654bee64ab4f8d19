#!/bin/bash
# Images built by berthd on Debian's dockerd (issue 15's interop acceptance), with the docker
# CLI's classic builder (DOCKER_BUILDKIT=0):
#   - a multi-stage image built by berthd pushes to a loopback registry, and dockerd pulls it
#     (same image ID) and runs it; it also runs on dockerd after `save`/`load`;
#   - the same Dockerfile built by dockerd: `docker inspect`'s Config fields and the history
#     (created_by, empty_layer; COPY's source hashes aside) are the same.
# dockerd runs in a network namespace of its own (`unshare -n`, own --data-root/--exec-root/
# socket/pidfile), the registry inside that namespace on its loopback; berthd reaches it
# through a forwarder on the host's loopback (socat -> nsenter -> socat) at the same address,
# so one image name serves both daemons. No traffic leaves loopback.
# Usage: tests/e2e/build-interop.sh [path/to/berthd]   (as root)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
for t in dockerd docker-registry socat nsenter unshare jq; do
    command -v "$t" >/dev/null || { echo "SKIP build-interop.sh: $t not installed (scripts/deps.sh --test)"; exit 0; }
done
if [ ! -x "${DOCKER:-/usr/local/bin/docker}" ]; then echo "SKIP build-interop.sh: no docker CLI"; exit 0; fi
BERTHD=${1:-${BERTHD:-$ROOT/target/debug/berthd}}
[ -x "$BERTHD" ] || { echo "FAIL berthd binary not found"; exit 1; }
[ -x /bin/busybox ] || { echo "FAIL /bin/busybox missing (apt-get install busybox-static)"; exit 1; }
WORK=$(mktemp -d /tmp/berth-build-interop.XXXXXX)
. "$ROOT/tests/e2e/build-lib.sh"
PORT=$(free_port)
REG=127.0.0.1:$PORT
DSOCK=$WORK/dockerd.sock
DPID=""; REG_PID=""; FWD_PID=""
dk() { DOCKER_HOST=unix://$DSOCK timeout -k 5 180 "$DOCKER" "$@"; }
cleanup() {
    for p in $FWD_PID $REG_PID; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
        for c in $(dk ps -aq 2>/dev/null); do dk rm -f "$c" >/dev/null 2>&1; done
        kill -TERM "$DPID"
        for _ in $(seq 150); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
        [ "$FAIL" -gt 0 ] && { echo "--- dockerd log (tail) ---"; tail -n 20 "$WORK/dockerd.log"; }
    fi
    stop_berthd
    awk -v w="$WORK/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

start_berthd --insecure-registry "$REG"
# dockerd: its own netns (loopback up), roots, socket, containerd namespace; no networking setup.
unshare -n sh -c 'ip link set lo up && exec "$@"' sh dockerd --data-root "$WORK/docker" \
    --exec-root "$WORK/docker-run" --pidfile "$WORK/dockerd.pid" -H "unix://$DSOCK" \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=false --storage-driver=overlay2 --containerd-namespace "berth-interop-$$" \
    --containerd-plugins-namespace "berth-interop-p-$$" --exec-opt native.cgroupdriver=cgroupfs \
    --insecure-registry "$REG" >"$WORK/dockerd.log" 2>&1 &
DPID=$!
for _ in $(seq 300); do [ -S "$DSOCK" ] && dk version >/dev/null 2>&1 && break; kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
dk version >/dev/null 2>&1 || { fail "dockerd start"; tail -n 20 "$WORK/dockerd.log"; exit 1; }
NS=/proc/$DPID/ns/net
# The registry in dockerd's namespace; the forwarder for berthd on the host's loopback.
mkdir -p "$WORK/reg"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$WORK/reg" "$REG" >"$WORK/reg.yml"
nsenter --net="$NS" docker-registry serve "$WORK/reg.yml" >"$WORK/reg.log" 2>&1 &
REG_PID=$!
socat "TCP-LISTEN:$PORT,bind=127.0.0.1,fork,reuseaddr" \
    "EXEC:nsenter --net=$NS socat STDIO TCP\:127.0.0.1\:$PORT" >"$WORK/fwd.log" 2>&1 &
FWD_PID=$!
for _ in $(seq 100); do
    nsenter --net="$NS" bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
check "the registry answers through the forwarder" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/")"

make_busybox_image
docker load -i "$WORK/image.tar" >/dev/null 2>&1 || { fail "load busybox into berthd"; exit 1; }
dk load -i "$WORK/image.tar" >/dev/null 2>&1 || { fail "load busybox into dockerd"; exit 1; }

# The multi-stage Dockerfile of build.sh (heredocs aside: dockerd 20.10's classic builder has none).
C=$WORK/ctx
mkdir -p "$C/src/lib" "$C/logs"
echo "hello from src" > "$C/src/main.txt"; echo "lib" > "$C/src/lib/l.txt"
echo "one" > "$C/a.txt"; echo "log" > "$C/logs/x.log"; echo "kept" > "$C/logs/keep.log"
printf 'logs\n!logs/keep.log\n' > "$C/.dockerignore"
cat > "$C/Dockerfile" <<'DF'
ARG BASE=berth-e2e/busybox
FROM ${BASE} AS builder
ARG GREETING=hi
ENV OUT=/out
WORKDIR $OUT
COPY src/ ./src/
RUN echo "$GREETING built" > result.txt && cat src/main.txt >> result.txt

FROM ${BASE}
LABEL org.example.stage=final
ENV APP_HOME=/app
WORKDIR /app
COPY --from=builder /out/ /app/
COPY --chown=app:staff a.txt ./
COPY logs/ /app/logs/
WORKDIR /app
USER app
EXPOSE 8080
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=2s CMD test -f /app/result.txt
ENTRYPOINT ["cat"]
CMD ["/app/result.txt"]
DF
out=$(docker build -t "$REG/interop/app:1" --build-arg GREETING=hello "$C" 2>&1)
check "berthd builds it" 0 "$?"
bid=$(docker image inspect -f '{{.Id}}' "$REG/interop/app:1" 2>&1)

# --- push, pull on dockerd, run --------------------------------------------------------------
out=$(docker push "$REG/interop/app:1" 2>&1); rc=$?
check "the berth-built image pushes to the registry" 0 "$rc"; [ "$rc" = 0 ] || echo "$out" | tail -n 3
out=$(dk pull "$REG/interop/app:1" 2>&1); rc=$?
check "dockerd pulls it" 0 "$rc"; [ "$rc" = 0 ] || echo "$out" | tail -n 3
check "dockerd has the same image ID" "$bid" "$(dk image inspect -f '{{.Id}}' "$REG/interop/app:1" 2>&1)"
check "dockerd runs it" "hello built
hello from src" "$(dk run --rm --network none "$REG/interop/app:1" 2>&1)"
check "on dockerd: COPY --chown and the user" "1000:50 app" \
    "$(dk run --rm --network none --entrypoint stat "$REG/interop/app:1" -c '%u:%g %U' /app/a.txt 2>&1)"

# --- save on berthd, load into dockerd, run ----------------------------------------------------
docker tag "$REG/interop/app:1" interop/saved:1
docker save -o "$WORK/saved.tar" interop/saved:1; check "berthd saves it" 0 "$?"
out=$(dk load -i "$WORK/saved.tar" 2>&1); check "dockerd loads it" 0 "$?"
check "dockerd runs it after save/load" "hello built
hello from src" "$(dk run --rm --network none interop/saved:1 2>&1)"
check "on dockerd after load: .dockerignore's result" "keep.log" "$(dk run --rm --network none --entrypoint ls interop/saved:1 /app/logs 2>&1)"

# --- the same Dockerfile built by dockerd ------------------------------------------------------
out=$(DOCKER_BUILDKIT=0 dk build -t interop/docker:1 --build-arg GREETING=hello "$C" 2>&1); rc=$?
check "dockerd builds the same Dockerfile" 0 "$rc"; [ "$rc" = 0 ] || echo "$out" | tail -n 5
for f in User WorkingDir Entrypoint Cmd Env ExposedPorts Volumes Labels Healthcheck StopSignal Shell OnBuild ArgsEscaped; do
    check "inspect .Config.$f as dockerd's" "$(dk image inspect -f "{{json .Config.$f}}" interop/docker:1 2>&1)" \
        "$(docker image inspect -f "{{json .Config.$f}}" interop/saved:1 2>&1)"
done
for f in Architecture Os Author; do
    check "inspect .$f as dockerd's" "$(dk image inspect -f "{{.$f}}" interop/docker:1 2>&1)" \
        "$(docker image inspect -f "{{.$f}}" interop/saved:1 2>&1)"
done
check "as many layers as dockerd's" "$(dk image inspect -f '{{len .RootFS.Layers}}' interop/docker:1 2>&1)" \
    "$(docker image inspect -f '{{len .RootFS.Layers}}' interop/saved:1 2>&1)"
# The history as the image config holds it: created_by and empty_layer of each entry (COPY's
# source digests compared as "HASH" here; those of context sources are compared below — a
# directory .dockerignore excludes with exceptions inside, and `--from` sources, whose
# headers dockerd 20.10 makes with user-name lookups, may differ).
config_history() {
    local dir=$WORK/cfg-$1; mkdir -p "$dir"
    tar -xf "$2" -C "$dir" manifest.json
    local cfg; cfg=$(jq -r '.[0].Config' "$dir/manifest.json")
    tar -xf "$2" -C "$dir" "$cfg"
    jq -r '.history[] | "\(.created_by) empty=\(.empty_layer // false)"' "$dir/$cfg" |
        sed -E 's/(file|dir):[0-9a-f]{64}/\1:HASH/g'
}
# dockerd before 25 (API 1.44) has no HealthConfig.StartInterval: its HEALTHCHECK text lacks
# the fourth duration that berth (API 1.45) writes, as dockerd 25+ does.
DVER=$(dk version -f '{{.Server.Version}}' 2>/dev/null)
old_health() {
    if [ "${DVER%%.*}" -lt 25 ] 2>/dev/null; then
        sed -E "s/^(.*HEALTHCHECK &\{\[.*\] \"[^\"]*\" \"[^\"]*\" \"[^\"]*\") '/\1 \"0s\" '/"
    else
        cat
    fi
}
# compare_history WHAT BERTH_TAR DOCKER_TAR: every entry's created_by and empty_layer equal.
compare_history() {
    local bh dh
    bh=$(config_history "berth-$1" "$2"); dh=$(config_history "docker-$1" "$3" | old_health)
    check "$1 history: as many entries as dockerd's" "$(printf '%s\n' "$dh" | wc -l)" "$(printf '%s\n' "$bh" | wc -l)"
    paste -d'\n' <(printf '%s\n' "$dh") <(printf '%s\n' "$bh") | while read -r d && read -r b; do
        [ "$d" = "$b" ] && echo "PASS $1 history entry: $d" || echo "FAIL $1 history entry: dockerd [$d] berth [$b]"
    done > "$WORK/hist.txt"
    cat "$WORK/hist.txt"
    PASS=$((PASS + $(grep -c '^PASS' "$WORK/hist.txt"))); FAIL=$((FAIL + $(grep -c '^FAIL' "$WORK/hist.txt")))
}
dk save -o "$WORK/docker-built.tar" interop/docker:1
compare_history final "$WORK/saved.tar" "$WORK/docker-built.tar"
# The first stage: ARG, ENV, WORKDIR that makes its directory, COPY of a directory, a RUN
# with a build argument in scope (`|1 GREETING=hello /bin/sh -c ...`).
docker build -q --target builder -t interop/builder:1 --build-arg GREETING=hello "$C" >/dev/null 2>&1
DOCKER_BUILDKIT=0 dk build -q --target builder -t interop/builder:1 --build-arg GREETING=hello "$C" >/dev/null 2>&1
docker save -o "$WORK/berth-builder.tar" interop/builder:1; dk save -o "$WORK/docker-builder.tar" interop/builder:1
compare_history builder "$WORK/berth-builder.tar" "$WORK/docker-builder.tar"
# COPY from the build context: dockerd's own source digest (tarsum v1 of the client's
# headers), the same here for a file and a directory.
raw_by() { docker history --no-trunc --format '{{.CreatedBy}}' "$1" | grep -F "$2"; }
check "COPY of a context file: dockerd's digest" "$(dk history --no-trunc --format '{{.CreatedBy}}' interop/docker:1 | grep -F 'in ./ ')" "$(raw_by interop/saved:1 'in ./ ')"
check "COPY of a context directory: dockerd's digest" "$(dk history --no-trunc --format '{{.CreatedBy}}' interop/builder:1 | grep -F 'in ./src/ ')" "$(raw_by interop/builder:1 'in ./src/ ')"
check "docker history: CreatedBy as dockerd's" \
    "$(dk history --no-trunc --format '{{.CreatedBy}}' interop/docker:1 | sed -E 's/(file|dir):[0-9a-f]{64}/\1:HASH/g' | old_health)" \
    "$(docker history --no-trunc --format '{{.CreatedBy}}' interop/saved:1 | sed -E 's/(file|dir):[0-9a-f]{64}/\1:HASH/g')"

echo "build-interop.sh: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
