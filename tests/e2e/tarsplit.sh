#!/usr/bin/env bash
# One copy per layer (tar-split), end to end with the docker CLI: a two-layer image (busybox,
# random files, a whiteout, an opaque dir, hard and symbolic links, long GNU and PAX names, an
# xattr, a device) is loaded; the root then costs <= 1.1x the unpacked layers; `docker save`
# gives back the loaded layer tars byte for byte and the same image ID; push to a loopback
# docker-registry and pull into a second berthd root gives the same layers again; a modified
# unpacked file makes save fail naming the layer.
#
# Usage: tests/e2e/tarsplit.sh BERTHD [BEFORE_BERTHD]
#   BEFORE_BERTHD: another berthd (e.g. the main branch's) measured on the same image, for the
#   before/after numbers (disk per image, load and save time). Env: MB=random MiB (default 8),
#   EXTRA_DIR=a host tree copied into the first layer (e.g. /usr/share: many small files).
set -u
DOCKER=${DOCKER:-/usr/local/bin/docker}
[ -x "$DOCKER" ] || { echo "SKIP tarsplit.sh: docker CLI not found at $DOCKER"; exit 0; }
BERTHD=${1:?usage: tarsplit.sh BERTHD [BEFORE_BERTHD]}
BEFORE=${2:-}
MB=${MB:-8}
WORK=$(mktemp -d /tmp/berth-tarsplit.XXXXXX)
PASS=0; FAIL=0
PIDS=()
pass() { PASS=$((PASS+1)); echo "PASS $*"; }
fail() { FAIL=$((FAIL+1)); echo "FAIL $*"; }
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2] got [$3]"; fi; }
contains() { case "$3" in *"$2"*) pass "$1";; *) fail "$1: [$2] not in [$3]";; esac; }
export DOCKER_CONFIG=$WORK/docker-config
mkdir -p "$DOCKER_CONFIG"
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    for r in "$WORK"/d*/root; do umount -R "$r" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
REG=127.0.0.1:$(free_port)

# start_berthd NAME BINARY: a daemon on $WORK/NAME; sets SOCK
start_berthd() {
    local d=$WORK/$1
    mkdir -p "$d"
    SOCK=$d/berth.sock
    "$2" -H "unix://$SOCK" --root "$d/root" --exec-root "$d/exec" --bridge none \
        --insecure-registry "$REG" --pidfile "$d/pid" >"$d/log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 300); do
        [ -S "$SOCK" ] && DOCKER_HOST=unix://$SOCK "$DOCKER" version >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "berthd $1 did not start:"; cat "$d/log"; exit 1
}
dk() { DOCKER_HOST=unix://$SOCK timeout -k 5 300 "$DOCKER" "$@"; }

# --- the image ------------------------------------------------------------------------------------
IMG=berth-e2e/tarsplit:1
make_image() {
    local r1=$WORK/l1 r2=$WORK/l2 a=$WORK/archive
    mkdir -p "$r1/bin" "$r1/etc" "$r1/tmp" "$r1/data/sub" "$r1/dev" "$r2/etc" "$r2/data" "$a"
    cp /bin/busybox "$r1/bin/busybox"
    for x in $(/bin/busybox --list); do [ "$x" = busybox ] || ln -s busybox "$r1/bin/$x"; done
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r1/etc/passwd"
    printf 'root:x:0:\n' > "$r1/etc/group"
    head -c $((MB << 20)) /dev/urandom > "$r1/data/random.bin"
    for i in $(seq 1 50); do head -c $((RANDOM * 4)) /dev/urandom > "$r1/data/sub/f$i"; done
    truncate -s 4M "$r1/data/sparse.img"; printf hello | dd of="$r1/data/sparse.img" bs=1 seek=1000000 conv=notrunc status=none
    ln "$r1/bin/busybox" "$r1/bin/busybox.hard"
    local long; long=$r1/data/$(printf 'd%.0s' $(seq 120))
    mkdir -p "$long"; echo long > "$long/$(printf 'f%.0s' $(seq 100))"
    mknod "$r1/dev/null" c 1 3
    [ -n "${EXTRA_DIR:-}" ] && mkdir -p "$r1/extra" && cp -a "$EXTRA_DIR" "$r1/extra/"
    setfattr -n user.berth -v tarsplit "$r1/data/random.bin" 2>/dev/null
    tar --numeric-owner --owner=0 --group=0 --format=gnu -C "$r1" -cf "$WORK/layer1.tar" .
    # layer 2: a whiteout, an opaque dir, a changed file, PAX long names and an xattr
    : > "$r2/etc/.wh.group"
    mkdir -p "$r2/data"; : > "$r2/data/.wh..wh..opq"; echo new > "$r2/data/new.txt"
    printf 'root:x:0:0:root:/root:/bin/sh\nu:x:1:1::/:/bin/sh\n' > "$r2/etc/passwd"
    mkdir -p "$r2/data/$(printf 'p%.0s' $(seq 150))"; echo pax > "$r2/data/$(printf 'p%.0s' $(seq 150))/$(printf 'q%.0s' $(seq 120))"
    setfattr -n user.note -v two "$r2/data/new.txt" 2>/dev/null
    tar --numeric-owner --owner=0 --group=0 --format=pax --xattrs -C "$r2" -cf "$WORK/layer2.tar" .
    local d1 d2 cfg
    d1=$(sha256sum "$WORK/layer1.tar" | cut -d' ' -f1); d2=$(sha256sum "$WORK/layer2.tar" | cut -d' ' -f1)
    mkdir -p "$a/$d1" "$a/$d2"; cp "$WORK/layer1.tar" "$a/$d1/layer.tar"; cp "$WORK/layer2.tar" "$a/$d2/layer.tar"
    printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]},"history":[{"created_by":"l1"},{"created_by":"l2"}]}' "$d1" "$d2" > "$a/c.json"
    cfg=$(sha256sum "$a/c.json" | cut -d' ' -f1); mv "$a/c.json" "$a/$cfg.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar","%s/layer.tar"]}]' "$cfg" "$IMG" "$d1" "$d2" > "$a/manifest.json"
    tar -C "$a" -cf "$WORK/image.tar" manifest.json "$cfg.json" "$d1" "$d2"
    ID=sha256:$cfg; LAYERS="$d1 $d2"
}
make_image

# layer digests of a saved archive, in manifest order, then the config
saved_digests() {
    local x=$WORK/x.$$; rm -rf "$x"; mkdir -p "$x"; tar -C "$x" -xf "$1" || return 1
    python3 - "$x" <<'EOF'
import json, sys, hashlib, os
d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))[0]
out = [hashlib.sha256(open(os.path.join(d, p), "rb").read()).hexdigest() for p in m["Layers"]]
print(" ".join(out), "sha256:" + os.path.basename(m["Config"]).removesuffix(".json"))
EOF
    rm -rf "$x"
}

# wait until the root stops shrinking (blobs are dropped after a background sync)
settled_du() {
    local last=-1 now
    for _ in $(seq 1 40); do
        now=$(du -sk "$1" | cut -f1)
        [ "$now" = "$last" ] && break
        last=$now; sleep 0.25
    done
    echo "$now"
}

# measure NAME BINARY: load and save times, disk use of the root and of the unpacked layers
measure() {
    start_berthd "$1" "$2"
    local root=$WORK/$1/root t0 t1 t2
    local base; base=$(du -sk "$root" | cut -f1)
    t0=$(date +%s.%N); dk load -i "$WORK/image.tar" >/dev/null 2>&1 || fail "$1: load"
    t1=$(date +%s.%N)
    dk save -o "$WORK/$1-saved.tar" "$IMG" >/dev/null 2>&1 || fail "$1: save"
    t2=$(date +%s.%N)
    local total unpacked
    total=$(( $(settled_du "$root") - base ))
    unpacked=$(du -sck "$root"/image/snapshots/*/fs | tail -1 | cut -f1)
    printf 'MEASURE %s: root +%s KiB for %s KiB unpacked (%s x), load %.2fs, save %.2fs\n' "$1" "$total" "$unpacked" \
        "$(python3 -c "print(round($total/$unpacked, 3))")" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)"
    RATIO_OK=$(python3 -c "print(int($total <= 1.1 * $unpacked))")
}

[ -n "$BEFORE" ] && measure before "$BEFORE"
measure d1 "$BERTHD"
check "root holds <= 1.1x the unpacked layers" 1 "$RATIO_OK"
check "save gives back the loaded layers and image ID" "$LAYERS $ID" "$(saved_digests "$WORK/d1-saved.tar")"
check "no layer blob left in the content store" "0" \
    "$(find "$WORK/d1/root/image/content/sha256" -type f -size +100k | wc -l)"

# --- push, pull into a second root, save there ----------------------------------------------------
if command -v docker-registry >/dev/null; then
    mkdir -p "$WORK/reg"
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$WORK/reg" "$REG" >"$WORK/reg.yml"
    docker-registry serve "$WORK/reg.yml" >"$WORK/reg.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/${REG%:*}/${REG#*:}") 2>/dev/null && break; sleep 0.1; done
    R=$REG/e2e/tarsplit:1
    SOCK=$WORK/d1/berth.sock
    dk tag "$IMG" "$R" >/dev/null 2>&1
    out=$(dk push "$R" 2>&1); check "push of an image kept as tar-split" 0 $?
    start_berthd d2 "$BERTHD"
    out=$(dk pull "$R" 2>&1); check "pull into a second root" 0 $?
    check "same image ID after push and pull" "$ID" "$(dk image inspect -f '{{.Id}}' "$R" 2>&1)"
    settled_du "$WORK/d2/root" >/dev/null
    dk save -o "$WORK/d2-saved.tar" "$R" >/dev/null 2>&1
    check "the second root saves the same layers" "$LAYERS $ID" "$(saved_digests "$WORK/d2-saved.tar")"
    check "pulled layer blobs dropped too" "0" \
        "$(find "$WORK/d2/root/image/content/sha256" -type f -size +100k | wc -l)"
    check "run from the pulled image" "new" "$(dk run --rm "$R" cat /data/new.txt 2>&1)"
else
    echo "SKIP push/pull (docker-registry not installed)"
fi

# --- a modified unpacked file: save fails naming the layer ----------------------------------------
SOCK=$WORK/d1/berth.sock
f=$(ls "$WORK"/d1/root/image/snapshots/*/fs/data/random.bin | head -1)
printf X | dd of="$f" bs=1 seek=100 conv=notrunc status=none
out=$(dk save -o "$WORK/bad.tar" "$IMG" 2>&1); rc=$?
check "save of a modified layer fails" 1 "$rc"
contains "the error names the layer" "${LAYERS%% *}" "$out"
contains "the error names the file" "data/random.bin" "$out"

echo "tarsplit.sh: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
