# Sourced by the bench scripts: `bench_workdir NAME [WAIT]` makes the work dir `$w`
# (/tmp/NAME.XXXXXX) and the list `pids` (daemons the script starts: `pids+=($!)`), and traps
# EXIT to stop those daemons by pid (waiting up to WAIT tenths of a second each, 100 by
# default, for their shutdown), unmount whatever is still mounted below `$w` (deepest first)
# and remove it.
bench_workdir() {
    w=$(mktemp -d "/tmp/$1.XXXXXX")
    pids=()
    bench_wait=${2:-100}
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local p m
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq "$bench_wait"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    done
    awk -v w="$w/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$w" 2>/dev/null || true
}
