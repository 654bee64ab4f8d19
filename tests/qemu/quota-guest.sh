#!/bin/sh
# Runs in the qemu guest (tests/qemu/quota-v2.sh): an xfs loop filesystem mounted with
# prjquota as berthd's root; `--storage-opt size=20M` and a volume's `--opt size=` must give
# ENOSPC at ~20 MB, without a limit the same write succeeds, and removal frees the project id.
# Args: BIN_DIR IMAGE_TAR. Prints PASS/FAIL per check; exits 1 on any failure.
bin=$1 tar=$2
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1"; fails=1; }
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2] got [$3]"; fi; }
contains() { case "$3" in *"$2"*) pass "$1";; *) fail "$1: [$2] not in [$3]";; esac; }
export HOME=/tmp
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
truncate -s 400M /tmp/xfs.img || exit 1
mkfs.xfs -q /tmp/xfs.img || exit 1
mkdir -p /mnt/q && mount -t xfs -o loop,prjquota /tmp/xfs.img /mnt/q || exit 1
"$bin/berthd" --root /mnt/q/root --exec-root /tmp/run -H unix:///tmp/b.sock --bridge none >/tmp/berthd.log 2>&1 &
pid=$!
for i in $(seq 100); do [ -S /tmp/b.sock ] && break; sleep 0.2; done
export DOCKER_HOST=unix:///tmp/b.sock
docker load -i "$tar" >/dev/null || { cat /tmp/berthd.log; exit 1; }
IMG=berth-e2e/busybox:latest

out=$(docker run --name q20 --storage-opt size=20M "$IMG" dd if=/dev/zero of=/f bs=1M count=40 2>&1); rc=$?
check "--storage-opt size=20M: dd fails" 1 "$rc"
contains "--storage-opt size=20M: ENOSPC" "No space left on device" "$out"
n=$(echo "$out" | sed -n 's/^\([0-9]*\)+[0-9]* records out/\1/p')
[ -n "$n" ] && [ "$n" -ge 18 ] && [ "$n" -le 20 ] && pass "stopped at ~20 MB ($n MB)" || fail "stopped at ~20 MB: [$out]"
check "inspect HostConfig.StorageOpt" '{"size":"20M"}' "$(docker inspect -f '{{json .HostConfig.StorageOpt}}' q20 2>&1)"
contains "the project id is recorded" '"c:' "$(cat /mnt/q/root/quota/projects.json)"
docker rm q20 >/dev/null
check "rm frees the project id" '{}' "$(cat /mnt/q/root/quota/projects.json)"
out=$(docker run --rm "$IMG" dd if=/dev/zero of=/f bs=1M count=40 2>&1); rc=$?
check "no limit: the same dd succeeds" 0 "$rc"

docker volume create --opt size=10M qv >/dev/null
check "volume --opt size: Options" '{"size":"10M"}' "$(docker volume inspect -f '{{json .Options}}' qv 2>&1)"
out=$(docker run --rm -v qv:/d "$IMG" dd if=/dev/zero of=/d/f bs=1M count=20 2>&1)
contains "volume --opt size=10M: ENOSPC" "No space left on device" "$out"
docker volume rm qv >/dev/null
check "volume rm frees the project id" '{}' "$(cat /mnt/q/root/quota/projects.json)"
contains "Unknown storage option" "Unknown option foo" "$(docker run --rm --storage-opt foo=1 "$IMG" true 2>&1)"

kill "$pid"; wait "$pid"
umount /mnt/q
[ $fails = 0 ] || { tail -n 30 /tmp/berthd.log; exit 1; }
echo "quota: all checks passed"
