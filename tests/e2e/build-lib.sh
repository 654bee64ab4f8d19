# Shared by build.sh, build-cache.sh and build-interop.sh (sourced): check helpers, a private
# berthd (its own root, exec root, socket, no bridge) and a busybox image made locally, with a
# user "app". The caller sets WORK (a mktemp -d dir) and BERTHD first.
DOCKER=${DOCKER:-/usr/local/bin/docker}
PASS=0; FAIL=0; BPID=""
SOCK=$WORK/berth.sock
IMG=berth-e2e/busybox:latest
export DOCKER_HOST=unix://$SOCK
export DOCKER_CONFIG=$WORK/docker-config
export DOCKER_BUILDKIT=0
mkdir -p "$DOCKER_CONFIG"
docker() { timeout -k 5 120 "$DOCKER" "$@"; }
pass() { PASS=$((PASS+1)); echo "PASS $*"; }
fail() { FAIL=$((FAIL+1)); echo "FAIL $*"; }
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2] got [$3]"; fi; }
contains() { case "$3" in *"$2"*) pass "$1";; *) fail "$1: [$2] not in [$3]";; esac; }
lacks() { case "$3" in *"$2"*) fail "$1: unexpected [$2] in [$3]";; *) pass "$1";; esac; }
count() { printf '%s\n' "$2" | grep -c -- "$1"; }
# The Engine API over berthd's socket: api METHOD PATH
api() { curl -sf --unix-socket "$SOCK" -X "$1" "http://localhost$2"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_berthd [EXTRA ARGS...]
start_berthd() {
    "$BERTHD" -H "unix://$SOCK" --root "$WORK/root" --exec-root "$WORK/exec" --bridge none \
        --pidfile "$WORK/berthd.pid" "$@" >"$WORK/berthd.log" 2>&1 &
    BPID=$!
    for _ in $(seq 1 300); do
        [ -S "$SOCK" ] && "$DOCKER" version >/dev/null 2>&1 && break
        kill -0 "$BPID" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$BPID" 2>/dev/null || { fail "berthd start"; cat "$WORK/berthd.log"; exit 1; }
}

stop_berthd() {
    if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
        for c in $("$DOCKER" ps -aq 2>/dev/null); do "$DOCKER" rm -f "$c" >/dev/null 2>&1; done
        kill -TERM "$BPID"; wait "$BPID" 2>/dev/null
    fi
    if [ "$FAIL" -gt 0 ] && [ -f "$WORK/berthd.log" ]; then echo "--- berthd log (tail) ---"; tail -n 40 "$WORK/berthd.log"; fi
    umount -R "$WORK/root" 2>/dev/null
}

# make_busybox_image: $WORK/image.tar, a docker-save archive of $IMG.
make_busybox_image() {
    local r="$WORK/rootfs" a="$WORK/archive" diff cfg
    mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$a"
    cp /bin/busybox "$r/bin/busybox"
    for x in $(/bin/busybox --list); do [ "$x" = busybox ] || ln -s busybox "$r/bin/$x"; done
    printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' > "$r/etc/passwd"
    printf 'root:x:0:\napp:x:1000:\nstaff:x:50:\n' > "$r/etc/group"
    chmod 1777 "$r/tmp"
    tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$WORK/layer.tar" .
    diff=$(sha256sum "$WORK/layer.tar" | cut -d' ' -f1)
    mkdir -p "$a/$diff"; mv "$WORK/layer.tar" "$a/$diff/layer.tar"
    printf '{"architecture":"amd64","os":"linux","created":"2025-01-01T00:00:00Z","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"2025-01-01T00:00:00Z","created_by":"berth e2e busybox"}]}' "$diff" > "$a/config.json"
    cfg=$(sha256sum "$a/config.json" | cut -d' ' -f1)
    mv "$a/config.json" "$a/$cfg.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg" "$IMG" "$diff" > "$a/manifest.json"
    tar -C "$a" -cf "$WORK/image.tar" manifest.json "$cfg.json" "$diff"
    rm -rf "$r" "$a"
}
