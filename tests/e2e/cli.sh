#!/usr/bin/env bash
# End-to-end test of the `berth` CLI against a Docker-Engine-API daemon (berthd, or dockerd).
#
# Usage: BERTH_HOST=unix:///run/berth/berth.sock tests/e2e/cli.sh [path/to/berth]
#   or:  tests/e2e/cli.sh --host unix:///path.sock [path/to/berth]
# Env:   BERTH_E2E_NET   network flags for containers (default "--network none")
#        BERTH_E2E_NO_REGISTRY=1  skip the registry (push/pull/login) part (reported as SKIP)
# Needs: busybox-static (/bin/busybox), util-linux `script`, tmux (else `script` is used
#        for the interactive test), docker-registry (Debian package), curl and gzip for pull/push.
set -u

if [ "${1:-}" = "--host" ]; then export BERTH_HOST="$2"; shift 2; fi
: "${BERTH_HOST:?set BERTH_HOST to the daemon socket, e.g. unix:///run/berth/berth.sock}"
export BERTH_HOST
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-}
if [ -z "$B" ]; then
    for c in "$ROOT/target/release/berth" "$ROOT/target/debug/berth"; do
        [ -x "$c" ] && { B=$c; break; }
    done
fi
[ -x "${B:-}" ] || { echo "berth binary not found (build it: cargo build -p berth)"; exit 2; }
NET=${BERTH_E2E_NET:---network none}
IMG=berth-e2e/busybox:latest
TAG=e2e$$
WORK=$(mktemp -d /tmp/berth-cli-e2e.XXXXXX)
PASS=0; FAIL=0; SKIP=0
REG_PID=""; TMUX_SOCK="$WORK/tmux.sock"
PORT=$(( 20000 + $$ % 20000 ))

say() { printf '%s\n' "$*"; }
ok() { PASS=$((PASS+1)); say "ok   $*"; }
bad() { FAIL=$((FAIL+1)); say "FAIL $*"; }
skip() { SKIP=$((SKIP+1)); say "SKIP $*"; }
# check NAME EXPECTED ACTUAL
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: expected [$2] got [$3]"; fi; }
# contains NAME NEEDLE HAYSTACK
contains() { case "$3" in *"$2"*) ok "$1";; *) bad "$1: [$2] not in [$3]";; esac; }
lacks() { case "$3" in *"$2"*) bad "$1: unexpected [$2] in [$3]";; *) ok "$1";; esac; }

cleanup() {
    for c in "$TAG-d" "$TAG-logs" "$TAG-it" "$TAG-x" "$TAG-att" "$TAG-cp" "$TAG-m" "$TAG-m2"; do "$B" rm -f "$c" >/dev/null 2>&1; done
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
    [ -S "$TMUX_SOCK" ] && tmux -S "$TMUX_SOCK" kill-server 2>/dev/null
    "$B" rmi "$TAG-img:c" "$TAG-img:i" >/dev/null 2>&1
    # images pulled from our throw-away registry
    "$B" images --format '{{.ID}} {{.Repository}}' 2>/dev/null | awk -v r="127.0.0.1:$PORT/" 'index($2, r) == 1 {print $1}' \
        | sort -u | xargs -r "$B" rmi -f >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- fixture: a docker-archive image of the host's busybox -------------------------------
# make_image REF OUT CREATED: CREATED "" leaves "created" out of the config
make_image() {
    local ref=$1 out=$2 created=$3 r="$WORK/rootfs" a="$WORK/archive"
    rm -rf "$r" "$a"
    mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$a"
    cp /bin/busybox "$r/bin/busybox"
    for x in $(/bin/busybox --list); do [ "$x" = busybox ] || ln -s busybox "$r/bin/$x"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
    chmod 1777 "$r/tmp"
    tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$WORK/layer.tar" .
    local diff; diff=$(sha "$WORK/layer.tar")
    mkdir -p "$a/$diff"; mv "$WORK/layer.tar" "$a/$diff/layer.tar"
    local c=""; [ -n "$created" ] && c="\"created\":\"$created\","
    printf '{"architecture":"amd64","os":"linux",%s"config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"],"Labels":{"org.berth.e2e":"yes"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"berth e2e busybox"}]}' "$c" "$diff" > "$a/config.json"
    local cfg; cfg=$(sha "$a/config.json")
    mv "$a/config.json" "$a/$cfg.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg" "$ref" "$diff" > "$a/manifest.json"
    tar -C "$a" -cf "$out" manifest.json "$cfg.json" "$diff"
}

say "# berth e2e against $BERTH_HOST with $B"
make_image "$IMG" "$WORK/image.tar" 2025-01-01T00:00:00Z

# --- load / images ------------------------------------------------------------------------
"$B" rmi -f "$IMG" >/dev/null 2>&1
out=$("$B" load -i "$WORK/image.tar" 2>&1); rc=$?
check "load exit" 0 "$rc"
contains "load prints loaded image" "Loaded image: $IMG" "$out"
out=$("$B" load < "$WORK/image.tar" 2>&1)
contains "load from stdin" "Loaded image: $IMG" "$out"
out=$("$B" images)
contains "images header" "REPOSITORY" "$out"
contains "images lists repo" "berth-e2e/busybox" "$out"
out=$("$B" images --format '{{.Repository}}:{{.Tag}}|{{.Size}}' berth-e2e/busybox)
case "$out" in "$IMG|"*[0-9]MB) ok "images --format with repo filter";; *) bad "images --format: [$out]";; esac
id=$("$B" images -q berth-e2e/busybox)
check "images -q is a short id" 12 "${#id}"
"$B" tag "$IMG" "$TAG-img:second"
check "images -q: one ID per tag, as docker" "$id $id" "$(echo $("$B" images -q --filter "reference=$TAG-img:second" --filter "reference=$IMG"))"
"$B" rmi "$TAG-img:second" >/dev/null
make_image "$TAG-img:nodate" "$WORK/nodate.tar" ""
"$B" load -q -i "$WORK/nodate.tar" >/dev/null
check "images: CREATED is N/A without a creation time" "N/A" "$("$B" images --format '{{.CreatedSince}}' "$TAG-img:nodate")"
"$B" rmi "$TAG-img:nodate" >/dev/null
out=$("$B" inspect -f '{{index .Config.Labels "org.berth.e2e"}}' "$IMG")
check "image inspect label" yes "$out"

# --- run -----------------------------------------------------------------------------------
out=$("$B" run --rm $NET "$IMG" echo hello 2>&1); rc=$?
check "run output" hello "$out"
check "run exit 0" 0 "$rc"
"$B" run --rm $NET "$IMG" sh -c 'exit 7'; check "run exit code is the container's" 7 "$?"
out=$("$B" run --rm $NET "$IMG" sh -c 'echo out; echo err >&2' 2>/dev/null)
check "stdout and stderr are separate" out "$out"
out=$("$B" run --rm $NET -e FOO=bar -e BAZ "$IMG" sh -c 'echo $FOO-${BAZ:-unset}')
check "run -e" bar-unset "$out"
out=$(BAZ=fromhost "$B" run --rm $NET -e BAZ "$IMG" sh -c 'echo $BAZ')
check "run -e NAME takes the host value" fromhost "$out"
out=$("$B" run --rm $NET -w /tmp "$IMG" pwd)
check "run -w" /tmp "$out"
out=$("$B" run --rm $NET -u 65534:65534 "$IMG" id -u)
check "run -u" 65534 "$out"
out=$("$B" run --rm $NET --memory 64m "$IMG" sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max')
check "run --memory visible in the container cgroup" 67108864 "$out"
out=$(echo piped | "$B" run --rm -i $NET "$IMG" cat)
check "run -i forwards stdin" piped "$out"
"$B" run --rm $NET "$IMG" /no/such/binary >/dev/null 2>&1; check "missing command exits 127" 127 "$?"
"$B" run --rm $NET "$IMG" /etc >/dev/null 2>&1; check "non-executable exits 126" 126 "$?"
"$B" run --rm $NET no-such-image-berth-e2e:nope true >/dev/null 2>&1; check "unknown image exits 125" 125 "$?"

# --- run -d / ps / logs / exec / inspect / stop / rm -------------------------------------
cid=$("$B" run -d --name "$TAG-d" $NET "$IMG" sh -c 'echo started; while true; do sleep 1; done'); rc=$?
check "run -d exit" 0 "$rc"
case "$cid" in *[!0-9a-f]*|"") bad "run -d prints a full id: [$cid]";; *) check "run -d prints the 64-hex id" 64 "${#cid}";; esac
out=$("$B" ps)
contains "ps header" "CONTAINER ID   IMAGE" "$out"
contains "ps shows the container" "$TAG-d" "$out"
contains "ps shows Up status" "Up " "$out"
out=$("$B" ps -q --no-trunc --filter "name=$TAG-d")
check "ps -q --no-trunc --filter" "$cid" "$out"
out=$("$B" ps --filter "name=$TAG-d" --format '{{.Names}} {{.State}} {{.Image}}')
check "ps --format" "$TAG-d running $IMG" "$out"
out=$("$B" ps --filter "name=$TAG-d" --format 'table {{.ID}}\t{{.Names}}')
contains "ps --format table header" "CONTAINER ID   NAMES" "$out"
out=$("$B" exec "$TAG-d" sh -c 'echo in-exec; exit 4'); rc=$?
check "exec output" in-exec "$out"
check "exec exit code" 4 "$rc"
out=$("$B" exec -e X=1 -w /tmp -u 65534 "$TAG-d" sh -c 'echo $X $(pwd) $(id -u)')
check "exec -e -w -u" "1 /tmp 65534" "$out"
out=$(echo viaexec | "$B" exec -i "$TAG-d" cat)
check "exec -i" viaexec "$out"
check "inspect -f State.Status" running "$("$B" inspect -f '{{.State.Status}}' "$TAG-d")"
check "inspect -f Name" "/$TAG-d" "$("$B" inspect -f '{{.Name}}' "$TAG-d")"
check "inspect -f json" '["sh","-c","echo started; while true; do sleep 1; done"]' "$("$B" inspect -f '{{json .Config.Cmd}}' "$TAG-d")"
check "inspect --type container" "$cid" "$("$B" inspect --type container -f '{{.Id}}' "$TAG-d")"
out=$("$B" inspect "$TAG-d")
contains "inspect prints a JSON array" '"Id": "'"$cid"'"' "$out"
out=$("$B" logs "$TAG-d")
check "logs" started "$out"
out=$("$B" stop -t 1 "$TAG-d"); rc=$?
check "stop prints the name" "$TAG-d" "$out"
check "stop exit" 0 "$rc"
check "stopped state" exited "$("$B" inspect -f '{{.State.Status}}' "$TAG-d")"
out=$("$B" ps -a --filter "name=$TAG-d" --format '{{.Status}}')
case "$out" in "Exited ("*") "*" ago") ok "ps -a shows Exited status";; *) bad "ps -a status: [$out]";; esac
check "rm prints the name" "$TAG-d" "$("$B" rm "$TAG-d")"
"$B" inspect "$TAG-d" >/dev/null 2>&1; check "inspect of removed container fails" 1 "$?"
"$B" rm "$TAG-d" >/dev/null 2>&1; check "rm of missing container exits 1" 1 "$?"

"$B" run -d --name "$TAG-logs" $NET "$IMG" sh -c 'for i in 1 2 3; do echo l$i; sleep 1; done' >/dev/null
out=$(timeout 30 "$B" logs -f "$TAG-logs"); rc=$?
check "logs -f follows until the container exits" "l1 l2 l3" "$(echo $out)"
check "logs -f exit" 0 "$rc"
out=$("$B" logs --tail 1 "$TAG-logs")
check "logs --tail 1" l3 "$out"
"$B" rm -f "$TAG-logs" >/dev/null

# --- run --rm / signal proxy / attach / start -a / cp / host selection ----------------------
"$B" run --rm --name "$TAG-rm" $NET "$IMG" true
"$B" inspect "$TAG-rm" >/dev/null 2>&1; check "run --rm removes the container" 1 "$?"
: > "$WORK/sig.out"
"$B" run --rm $NET "$IMG" sh -c 'trap "echo got-TERM; exit 3" TERM; echo ready; while true; do sleep 0.2; done' > "$WORK/sig.out" 2>&1 &
SP=$!
for _ in $(seq 1 100); do grep -q ready "$WORK/sig.out" && break; sleep 0.1; done
kill -TERM "$SP"; wait "$SP"; rc=$?
check "signal proxy: container exit status after SIGTERM" 3 "$rc"
contains "signal proxy: container got SIGTERM" got-TERM "$(cat "$WORK/sig.out")"
"$B" run -d --name "$TAG-att" $NET "$IMG" sh -c 'sleep 2; echo bye; exit 5' >/dev/null
out=$(timeout 30 "$B" attach "$TAG-att"); rc=$?
check "attach streams output" bye "$out"
check "attach returns the exit status" 5 "$rc"
out=$("$B" start -a "$TAG-att"); rc=$?
check "start -a output" bye "$out"
check "start -a exit status" 5 "$rc"
"$B" rm "$TAG-att" >/dev/null
"$B" run -d --name "$TAG-cp" $NET "$IMG" sleep 300 >/dev/null
mkdir -p "$WORK/cpsrc/sub" && echo cp-data > "$WORK/cpsrc/sub/f.txt"
"$B" cp "$WORK/cpsrc/sub/f.txt" "$TAG-cp:/tmp/"; check "cp host->container exit" 0 "$?"
"$B" cp "$WORK/cpsrc" "$TAG-cp:/tmp/tree"
check "cp file into container dir" cp-data "$("$B" exec "$TAG-cp" cat /tmp/f.txt)"
check "cp dir to new name" cp-data "$("$B" exec "$TAG-cp" cat /tmp/tree/sub/f.txt)"
mkdir -p "$WORK/cpout"
"$B" cp "$TAG-cp:/tmp/tree" "$WORK/cpout/"; "$B" cp "$TAG-cp:/tmp/f.txt" "$WORK/cpout/renamed.txt"
check "cp container dir -> host dir" cp-data "$(cat "$WORK/cpout/tree/sub/f.txt" 2>&1)"
check "cp container file -> new host name" cp-data "$(cat "$WORK/cpout/renamed.txt" 2>&1)"
contains "cp container -> stdout tar" "f.txt" "$("$B" cp "$TAG-cp:/tmp/f.txt" - | tar -t)"
"$B" rm -f "$TAG-cp" >/dev/null
out=$("$B" version --format '{{.Server.APIVersion}} {{.Client.APIVersion}}')
case "$out" in "1."*" 1."*) ok "version --format with docker's Go field names";; *) bad "version --format .Server.APIVersion: [$out]";; esac
"$B" events --since 0 --until "$(( $(date +%s) + 1 ))" --filter "container=$TAG-cp" --format '{{.Status}} {{.Type}} {{.Action}}' > "$WORK/ev.out" 2>&1
contains "events --format with docker's Go field names (.Status)" "create container create" "$(cat "$WORK/ev.out")"
lacks "events --format: no <no value>" "<no value>" "$(cat "$WORK/ev.out")"
out=$(BERTH_HOST="$BERTH_HOST" DOCKER_HOST=unix:///nonexistent/docker.sock "$B" version --format '{{.Server.ApiVersion}}' 2>&1)
case "$out" in 1.*) ok "BERTH_HOST wins over DOCKER_HOST";; *) bad "BERTH_HOST precedence: [$out]";; esac
out=$(env -u BERTH_HOST DOCKER_HOST="$BERTH_HOST" "$B" version --format '{{.Server.ApiVersion}}' 2>&1)
case "$out" in 1.*) ok "DOCKER_HOST is used when BERTH_HOST is unset";; *) bad "DOCKER_HOST fallback: [$out]";; esac
out=$(env -u BERTH_HOST -u DOCKER_HOST "$B" -H "$BERTH_HOST" version --format '{{.Server.ApiVersion}}' 2>&1)
case "$out" in 1.*) ok "-H selects the daemon";; *) bad "-H: [$out]";; esac

# --- container lifecycle commands ---------------------------------------------------------
"$B" run -d --name "$TAG-m" -l "berth.e2e=$TAG" $NET "$IMG" sh -c 'echo x > /added; sleep 300' >/dev/null
sleep 0.5
check "pause" "$TAG-m" "$("$B" pause "$TAG-m")"
contains "paused status" "(Paused)" "$("$B" ps --filter "name=$TAG-m" --format '{{.Status}}')"
check "unpause" "$TAG-m" "$("$B" unpause "$TAG-m")"
"$B" rename "$TAG-m" "$TAG-m2"; check "rename" "/$TAG-m2" "$("$B" inspect -f '{{.Name}}' "$TAG-m2")"
"$B" update --memory 32m --memory-swap 64m "$TAG-m2" >/dev/null
check "update --memory" 33554432 "$("$B" inspect -f '{{.HostConfig.Memory}}' "$TAG-m2")"
contains "diff shows the added file" "A /added" "$("$B" diff "$TAG-m2")"
contains "top lists the process" "sleep 300" "$("$B" top "$TAG-m2")"
out=$("$B" top "$TAG-m2" -o pid,comm)
check "top passes ps options through: header" "PID COMMAND" "$(echo $(printf '%s\n' "$out" | head -1))"
contains "top -o pid,comm: the process" "sleep" "$out"
lacks "top -o pid,comm: no args column" "300" "$out"
out=$("$B" system df -v)
for section in "Images space usage:" "Containers space usage:" "Local Volumes space usage:" "Build cache usage: 0B"; do
    contains "system df -v: $section" "$section" "$out"
done
contains "system df -v: image row" "berth-e2e/busybox" "$out"
contains "system df -v: container row" "$TAG-m2" "$out"
contains "system df -v: container header" "LOCAL VOLUMES" "$out"
# volumes
V=$TAG-vol
check "volume create" "$V" "$("$B" volume create --label e2e=1 "$V")"
"$B" run --rm --pull never $NET -v "$V":/d "$IMG" sh -c 'echo kept > /d/f'
check "volume: data for the next container" "kept" "$("$B" run --rm --pull never $NET --mount type=volume,src="$V",dst=/d,readonly "$IMG" cat /d/f)"
out=$("$B" volume ls --filter label=e2e=1)
check "volume ls table" "DRIVER    VOLUME NAME|local     $V" "$(printf '%s\n' "$out" | paste -sd'|')"
check "volume inspect --format" "local" "$("$B" volume inspect -f '{{.Driver}}' "$V")"
check "volume rm" "$V" "$("$B" volume rm "$V")"
out=$("$B" volume rm "$V" 2>&1); rc=$?
check "volume rm of a missing volume: exit 1" 1 "$rc"
contains "volume rm of a missing volume: message" "no such volume" "$out"
cimg=$("$B" commit -m e2e-msg -c 'ENV E2E=1' "$TAG-m2" "$TAG-img:c")
case "$cimg" in sha256:*) ok "commit prints the image id";; *) bad "commit: [$cimg]";; esac
check "committed image has the change" "x 1" "$(echo $("$B" run --rm --pull never $NET "$TAG-img:c" sh -c 'cat /added; echo $E2E'))"
contains "history shows the commit message" e2e-msg "$("$B" history "$TAG-img:c")"
"$B" export "$TAG-m2" | "$B" import - "$TAG-img:i" >/dev/null
check "export | import round trip" x "$("$B" run --rm --pull never $NET "$TAG-img:i" /bin/cat /added)"
(sleep 1; "$B" kill -s KILL "$TAG-m2" >/dev/null) &
check "wait prints the exit status after kill" 137 "$("$B" wait "$TAG-m2")"
"$B" restart -t 1 "$TAG-m2" >/dev/null
check "restart starts it again" running "$("$B" inspect -f '{{.State.Status}}' "$TAG-m2")"
"$B" stop -t 0 "$TAG-m2" >/dev/null
out=$("$B" container prune -f --filter "label=berth.e2e=$TAG")
contains "container prune (label filter) deletes ours" "Deleted Containers:" "$out"
"$B" inspect "$TAG-m2" >/dev/null 2>&1; check "pruned container is gone" 1 "$?"
out=$("$B" rmi "$TAG-img:c" "$TAG-img:i")
contains "rmi untags" "Untagged: $TAG-img:c" "$out"

# --- usage errors --------------------------------------------------------------------------
err=$("$B" run 2>&1); rc=$?
check "run without image exits 125" 125 "$rc"
contains "run without image explains" "'berth run' requires at least 1 argument" "$err"
err=$("$B" ps --bogus 2>&1); rc=$?
check "unknown flag exits 125" 125 "$rc"
contains "unknown flag message" "unknown flag: --bogus" "$err"
err=$("$B" run --memory lots "$IMG" 2>&1); rc=$?
check "bad flag value exits 125" 125 "$rc"
contains "bad flag value message" 'invalid argument "lots" for "-m, --memory" flag' "$err"
err=$("$B" logs 2>&1); check "missing argument exits 125" 125 "$?"
err=$("$B" frobnicate 2>&1); check "unknown command exits 125" 125 "$?"
lacks "no panic on usage errors" "panicked" "$err"
err=$("$B" -H unix:///nonexistent/berth.sock ps 2>&1); rc=$?
contains "daemon down message tells how to start it" "Is berthd running? Start it with: berthd &" "$err"
check "daemon down exit" 1 "$rc"
out=$("$B" run --help); contains "run --help lists --memory" "--memory bytes" "$out"
out=$("$B" --help); contains "berth --help lists commands" "Common Commands:" "$out"
out=$("$B" completion bash); contains "bash completion" "complete -F _berth berth" "$out"

# --- interactive: run -it under a terminal -------------------------------------------------
if command -v tmux >/dev/null 2>&1; then
    tmux -S "$TMUX_SOCK" new-session -d -x 120 -y 30 -s e2e "env BERTH_HOST=$BERTH_HOST bash -c 'while :; do bash --norc --noprofile; done'"
    tsend() { tmux -S "$TMUX_SOCK" send-keys -t e2e "$@" 2>/dev/null; }
    pane() { tmux -S "$TMUX_SOCK" capture-pane -p -t e2e 2>/dev/null; }
    waitfor() { for _ in $(seq 1 100); do pane | grep -q -- "$1" && return 0; sleep 0.1; done; return 1; }
    tsend "stty -a > $WORK/stty.before; echo READY" Enter
    waitfor '^READY' || true
    tsend "$B run -it --rm --name $TAG-it $NET $IMG sh; echo RC=\$?" Enter
    sleep 0.5
    waitfor '/ #' && ok "run -it shows the container prompt" || bad "run -it: no prompt [$(pane)]"
    tsend 'echo $((6*7))' Enter
    waitfor '^42' && ok "run -it: typed echo \$((6*7)) prints 42" || bad "run -it: no 42 [$(pane)]"
    tsend 'exit' Enter
    waitfor 'RC=0' && ok "run -it: exit returns with status 0" || bad "run -it: no RC=0 [$(pane)]"
    tsend "stty -a > $WORK/stty.after; echo DONE" Enter
    waitfor '^DONE' || true
    if [ -s "$WORK/stty.before" ] && cmp -s "$WORK/stty.before" "$WORK/stty.after"; then
        ok "terminal settings restored after run -it"
    else
        bad "terminal not restored: $(diff "$WORK/stty.before" "$WORK/stty.after" 2>&1 | head -5)"
    fi
    # window size changes reach the container (SIGWINCH -> resize)
    tsend "clear" Enter; sleep 0.3; tmux -S "$TMUX_SOCK" clear-history -t e2e 2>/dev/null
    tsend "$B run -it --rm $NET $IMG sh" Enter
    waitfor '/ #' || true
    tmux -S "$TMUX_SOCK" resize-window -t e2e -x 90 -y 25 2>/dev/null; sleep 0.5
    tsend 'stty size' Enter
    waitfor '^25 90' && ok "terminal resize is forwarded" || bad "resize: [$(pane)]"
    tsend 'exit' Enter; sleep 0.5
    # exec -it
    "$B" run -d --name "$TAG-x" $NET "$IMG" sh -c 'echo inside-$((2+3)) > /marker; sleep 300' >/dev/null
    tsend "clear" Enter; sleep 0.3; tmux -S "$TMUX_SOCK" clear-history -t e2e 2>/dev/null
    tsend "$B exec -it $TAG-x sh; echo XRC=\$?" Enter
    waitfor '/ #' || true
    tsend 'echo "$(cat /marker):$(tty)"' Enter
    waitfor '^inside-5:/dev/pts/' && ok "exec -it: interactive shell in the container on a tty" || bad "exec -it: [$(pane)]"
    tsend 'exit 3' Enter
    waitfor 'XRC=3' && ok "exec -it exit status" || bad "exec -it status: [$(pane)]"
    "$B" rm -f "$TAG-x" >/dev/null
    # detach keys: ctrl-p ctrl-q leaves the container running
    tsend "clear" Enter; sleep 0.3; tmux -S "$TMUX_SOCK" clear-history -t e2e 2>/dev/null
    tsend "$B run -it --name $TAG-it $NET $IMG sh; echo RC2=\$?" Enter
    waitfor '/ #' || true
    tsend C-p C-q
    waitfor 'RC2=0' && ok "ctrl-p ctrl-q detaches" || bad "detach: [$(pane)]"
    check "detached container keeps running" running "$("$B" inspect -f '{{.State.Status}}' "$TAG-it" 2>&1)"
    "$B" rm -f "$TAG-it" >/dev/null 2>&1
    tmux -S "$TMUX_SOCK" kill-server 2>/dev/null
elif command -v script >/dev/null 2>&1; then
    out=$( (sleep 1; printf 'echo $((6*7))\r'; sleep 1; printf 'exit\r'; sleep 1) | script -qfc "$B run -it --rm $NET $IMG sh" /dev/null)
    contains "run -it under script prints 42" "42" "$out"
else
    skip "run -it (neither tmux nor script installed)"
fi

# Uploads a one-layer image (busybox + 3 MB of random data) to a registry with curl.
push_fresh() { # registry repo tag
    local reg=$1 repo=$2 tag=$3 d="$WORK/fresh"
    mkdir -p "$d/root/bin" && cp /bin/busybox "$d/root/bin/" && ln -sf busybox "$d/root/bin/sh" && ln -sf busybox "$d/root/bin/echo"
    head -c 3000000 /dev/urandom > "$d/root/noise"
    tar --numeric-owner -C "$d/root" -cf "$d/layer.tar" . || return 1
    local diff; diff=$(sha "$d/layer.tar")
    gzip -c "$d/layer.tar" > "$d/layer.tgz"
    local ld ls; ld=$(sha "$d/layer.tgz"); ls=$(stat -c %s "$d/layer.tgz")
    printf '{"architecture":"amd64","os":"linux","created":"2025-06-01T00:00:00Z","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff" > "$d/config.json"
    local cd cs; cd=$(sha "$d/config.json"); cs=$(stat -c %s "$d/config.json")
    upload() { # file digest
        local loc
        loc=$(curl -sfi -X POST "http://$reg/v2/$repo/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
        [ -n "$loc" ] || return 1
        case "$loc" in http*) ;; *) loc="http://$reg$loc";; esac
        case "$loc" in *\?*) loc="$loc&digest=sha256:$2";; *) loc="$loc?digest=sha256:$2";; esac
        curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$1" "$loc" >/dev/null
    }
    upload "$d/layer.tgz" "$ld" && upload "$d/config.json" "$cd" || return 1
    printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%s,"digest":"sha256:%s"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%s,"digest":"sha256:%s"}]}' "$cs" "$cd" "$ls" "$ld" > "$d/manifest.json"
    curl -sf -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' --data-binary "@$d/manifest.json" "http://$reg/v2/$repo/manifests/$tag" >/dev/null
}

# --- registry: push, pull (plain and with progress bars), login/logout ---------------------
if [ "${BERTH_E2E_NO_REGISTRY:-}" = 1 ] || ! command -v docker-registry >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
    skip "registry tests (docker-registry or curl not installed, or BERTH_E2E_NO_REGISTRY=1)"
else
    mkdir -p "$WORK/reg"
    printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$WORK/reg" "$PORT" > "$WORK/reg.yml"
    docker-registry serve "$WORK/reg.yml" > "$WORK/reg.log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
    REF=127.0.0.1:$PORT/e2e/busybox:v1
    "$B" tag "$IMG" "$REF"; check "tag" 0 "$?"
    out=$("$B" push "$REF" 2>&1); rc=$?
    check "push exit" 0 "$rc"
    contains "push reports digest" "v1: digest: sha256:" "$out"
    "$B" rmi "$REF" >/dev/null 2>&1
    # a fresh image uploaded straight to the registry (curl), so the daemon has never seen
    # its layer and the pull really downloads it
    REF=127.0.0.1:$PORT/e2e/fresh:v1
    if ! push_fresh "127.0.0.1:$PORT" e2e/fresh v1; then bad "could not upload the fresh image with curl"; fi
    out=$("$B" pull "$REF" 2>&1); rc=$?
    check "pull exit" 0 "$rc"
    contains "pull plain: layer lines" "Pull complete" "$out"
    contains "pull plain: digest" "Digest: sha256:" "$out"
    contains "pull plain: status" "Status: Downloaded newer image for $REF" "$out"
    check "pull plain: last line is the reference" "$REF" "$(printf '%s\n' "$out" | tail -1)"
    lacks "pull plain: no byte progress without a terminal" "Downloading" "$out"
    "$B" rmi "$REF" >/dev/null 2>&1
    # a second fresh repository for the terminal case (the daemon may keep layers after rmi)
    REF=127.0.0.1:$PORT/e2e/fresh2:v1
    push_fresh "127.0.0.1:$PORT" e2e/fresh2 v1 || bad "could not upload the second fresh image"
    script -qfc "$B pull $REF" "$WORK/pull.tty" >/dev/null 2>&1
    tty=$(cat "$WORK/pull.tty")
    contains "pull on a terminal: byte counts as docker (MB)" "MB/" "$tty"
    contains "pull on a terminal: bar" "[=" "$tty"
    contains "pull on a terminal: layer lines rewritten in place (cursor up)" $'\e[1A' "$tty"
    # after the layer block: the digest, the status and the reference each on a line of their own
    last=$(tr '\r' '\n' < "$WORK/pull.tty" | sed 's/\x1b\[[0-9]*[ABK]//g' | grep -v -e '^Script ' -e '^$' | tail -3 | tr '\n' '|')
    case "$last" in "Digest: sha256:"*"|Status: Downloaded newer image for $REF|$REF|") ok "pull on a terminal: digest, status, reference on their own lines";; *) bad "pull on a terminal: last lines [$last]";; esac
    out=$("$B" pull -q "$REF" 2>&1)
    check "pull -q prints only the reference" "$REF" "$out"
    out=$("$B" run --rm $NET "$REF" echo pulled-ok)
    check "run the pulled image" pulled-ok "$out"
    "$B" rmi "$REF" >/dev/null 2>&1
    out=$("$B" run --rm $NET "$REF" echo auto-pulled 2>"$WORK/runpull.err"); rc=$?
    check "run pulls a missing image" auto-pulled "$out"
    contains "run says it is pulling" "Unable to find image '$REF' locally" "$(cat "$WORK/runpull.err")"
    export DOCKER_CONFIG="$WORK/dockercfg"
    out=$("$B" login -u e2euser --password-stdin "127.0.0.1:$PORT" <<<"s3cret" 2>&1); rc=$?
    check "login exit" 0 "$rc"
    contains "login succeeded" "Login Succeeded" "$out"
    contains "login writes config.json auth" "\"auth\": \"$(printf 'e2euser:s3cret' | base64)\"" "$(cat "$DOCKER_CONFIG/config.json" 2>/dev/null)"
    out=$("$B" logout "127.0.0.1:$PORT")
    contains "logout" "Removing login credentials for 127.0.0.1:$PORT" "$out"
    lacks "logout removes the entry" "127.0.0.1:$PORT" "$(cat "$DOCKER_CONFIG/config.json")"
    unset DOCKER_CONFIG
    # restore the image under its original name for anyone after us
    "$B" load -q -i "$WORK/image.tar" >/dev/null
fi

# --- build -----------------------------------------------------------------------------------
BC=$WORK/buildctx; mkdir -p "$BC"
echo "from the context" > "$BC/msg.txt"
printf 'FROM %s\nARG WHO=nobody\nCOPY msg.txt /msg.txt\nRUN echo "built by $WHO" >> /msg.txt\nCMD ["cat", "/msg.txt"]\n' "$IMG" > "$WORK/Dockerfile.outside"
out=$("$B" build -t berth-e2e/built:1 -f "$WORK/Dockerfile.outside" --build-arg WHO=cli --label via=cli --iidfile "$WORK/iid" "$BC" 2>&1); rc=$?
check "build exit" 0 "$rc"
contains "build shows steps" "Step 3/5 : COPY msg.txt /msg.txt" "$out"
contains "build tags" "Successfully tagged berth-e2e/built:1" "$out"
check "build: -f outside the context, --build-arg" "from the context
built by cli" "$("$B" run --rm berth-e2e/built:1 2>&1)"
check "build --iidfile" "$("$B" image inspect -f '{{.Id}}' berth-e2e/built:1)" "$(cat "$WORK/iid")"
check "build --label" "cli" "$("$B" image inspect -f '{{index .Config.Labels "via"}}' berth-e2e/built:1)"
out=$("$B" build -q -t berth-e2e/built:1 -f "$WORK/Dockerfile.outside" --build-arg WHO=cli --label via=cli "$BC" 2>&1)
check "build -q prints only the ID (all cached)" "$(cat "$WORK/iid")" "$out"
out=$(printf 'FROM %s\nRUN echo failing-now; exit 2\n' "$IMG" | "$B" build - 2>&1); rc=$?
check "build of a failing RUN exits 1" 1 "$rc"
contains "build of a failing RUN shows its output and error" "failing-now" "$out"
contains "build failure message" "returned a non-zero code: 2" "$out"
"$B" rmi berth-e2e/built:1 >/dev/null 2>&1
for c in $("$B" ps -aq --filter status=exited); do "$B" rm "$c" >/dev/null 2>&1; done

# --- save ----------------------------------------------------------------------------------
"$B" save -o "$WORK/saved.tar" "$IMG"; rc=$?
check "save -o exit" 0 "$rc"
if tar -tf "$WORK/saved.tar" 2>/dev/null | grep -q manifest.json; then ok "save -o writes a docker archive"; else bad "save -o: no manifest.json"; fi

say "# passed $PASS, failed $FAIL, skipped $SKIP"
[ "$FAIL" -eq 0 ]
