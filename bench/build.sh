#!/bin/bash
# `docker build` (classic builder, DOCKER_BUILDKIT=0) of the issue's 8-instruction Dockerfile
# (ARG, 2 RUN, COPY, ENV, WORKDIR, CMD) against berthd and a private dockerd (in its own
# network namespace, private data/exec roots, --bridge none), interleaved: --no-cache builds
# and fully cached rebuilds, median of RUNS each. Also the per-RUN overhead (10 `RUN true`
# against one metadata step, no cache, divided by 10; target <= 10 ms) and `COPY` of a
# 10,000-file tree (no cache; target <= 0.5x dockerd).
# Not part of CI. Run as root.   BERTHD=path [QUICK=1] bench/build.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
DOCKER=/usr/local/bin/docker; [ -x $DOCKER ] || DOCKER=$(command -v docker)
BERTHD=${BERTHD:-target/release/berthd}
[ -x "$BERTHD" ] || { echo "no berthd at $BERTHD (cargo build --release -p berthd -p berth-monitor)"; exit 1; }
. bench/lib/workdir.sh
bench_workdir berth-bench-build
ref=$(tests/peers/mkimage.sh "$w/img" berth-bench/busybox:latest)

"$BERTHD" --root "$w/berth" --exec-root "$w/berth-run" -H "unix://$w/berth.sock" --bridge none >"$w/berthd.log" 2>&1 &
pids+=($!)
unshare -n dockerd --data-root "$w/docker" --exec-root "$w/docker-run" -H "unix://$w/docker.sock" \
    --pidfile "$w/docker.pid" --bridge none --iptables=false --ip-masq=false >"$w/dockerd.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -S "$w/berth.sock" ] && [ -S "$w/docker.sock" ] && break; sleep 0.1; done
export DOCKER_BUILDKIT=0
B="$DOCKER -H unix://$w/berth.sock"; D="$DOCKER -H unix://$w/docker.sock"
$B load -q -i "$w/img/docker-archive.tar" >/dev/null
$D load -q -i "$w/img/docker-archive.tar" >/dev/null

c=$w/ctx; mkdir -p "$c/app"
for i in $(seq 20); do echo "file $i" > "$c/app/f$i.txt"; done
cat > "$c/Dockerfile" <<EOF
FROM $ref
ARG VERSION=1.0
RUN echo "building \$VERSION" > /version
RUN mkdir -p /srv && echo ok > /srv/status
COPY app/ /srv/app/
ENV APP_VERSION=\$VERSION
WORKDIR /srv
CMD ["cat", "/srv/status"]
EOF

ms() { local s; s=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for d in B D; do
    cli=${!d}
    $cli build -t bench:warm "$c" >/dev/null 2>&1 || { echo "warm-up build failed on $d"; $cli build "$c"; exit 1; }
done
: >"$w/B.nocache"; : >"$w/D.nocache"; : >"$w/B.cached"; : >"$w/D.cached"
for _ in $(seq "$runs"); do
    for d in B D; do
        cli=${!d}
        ms $cli build --no-cache -t bench:x "$c" >>"$w/$d.nocache"
        ms $cli build -t bench:x "$c" >>"$w/$d.cached"
    done
done
bn=$(median <"$w/B.nocache"); dn=$(median <"$w/D.nocache")
bc=$(median <"$w/B.cached"); dc=$(median <"$w/D.cached")
echo "== docker build, 8 instructions, median of $runs (ms)"
printf '%-10s %8s %8s %8s\n' "" berthd dockerd ratio
printf '%-10s %8s %8s %8s\n' no-cache "$bn" "$dn" "$(awk -v a="$bn" -v b="$dn" 'BEGIN{printf "%.2f", a/b}')"
printf '%-10s %8s %8s %8s\n' cached "$bc" "$dc" "$(awk -v a="$bc" -v b="$dc" 'BEGIN{printf "%.2f", a/b}')"

# Per-RUN overhead and COPY of a 10,000-file tree (QUICK=1: skipped).
[ -n "${QUICK:-}" ] && exit 0
r=$w/runs; mkdir -p "$r/r10" "$r/r0" "$r/copy/tree"
{ echo "FROM $ref"; for i in $(seq 10); do echo "RUN true"; done; } > "$r/r10/Dockerfile"
printf 'FROM %s\nENV X=1\n' "$ref" > "$r/r0/Dockerfile"
for d in $(seq 100); do
    mkdir -p "$r/copy/tree/d$d"
    for f in $(seq 100); do echo "$d/$f" > "$r/copy/tree/d$d/f$f"; done
done
printf 'FROM %s\nCOPY tree/ /tree/\n' "$ref" > "$r/copy/Dockerfile"
for x in r10 r0 copy; do : >"$w/B.$x"; : >"$w/D.$x"; done
for _ in $(seq "$runs"); do
    for d in B D; do
        cli=${!d}
        for x in r10 r0 copy; do ms $cli build --no-cache -t bench:$x "$r/$x" >>"$w/$d.$x"; done
    done
done
for d in B D; do
    for x in r10 r0 copy; do eval "${d}_$x=\$(median <\"\$w/\$d.\$x\")"; done
done
echo "== per-RUN overhead: (10 x RUN true - 1 metadata step) / 10, no cache, median of $runs (ms)"
printf '%-10s %8s %8s\n' "" berthd dockerd
printf '%-10s %8s %8s\n' per-RUN "$(( (B_r10 - B_r0) / 10 ))" "$(( (D_r10 - D_r0) / 10 ))"
echo "== COPY of a 10,000-file tree, no cache, median of $runs (ms)"
printf '%-10s %8s %8s %8s\n' "" berthd dockerd ratio
printf '%-10s %8s %8s %8s\n' copy "$B_copy" "$D_copy" "$(awk -v a="$B_copy" -v b="$D_copy" 'BEGIN{printf "%.2f", a/b}')"
