#!/bin/sh
# Runs in the qemu guest (tests/qemu/quota-v2.sh): a loop filesystem with project quotas as
# berthd's root — xfs mounted with prjquota, or ext4 made with the quota and project features
# and mounted with prjquota; `--storage-opt size=20M` and a volume's `--opt size=` must give
# ENOSPC (xfs) or EDQUOT (ext4) at ~20 MB, without a limit the same write succeeds, and
# removal frees the project id.
# For ext4, the same request on an ext4 root without project quotas must be a clear error at
# create. Args: BIN_DIR IMAGE_TAR xfs|ext4. Prints PASS/FAIL per check; exits 1 on any failure.
bin=$1 tar=$2 fs=${3:-xfs}
fails=0
pass() { echo "PASS [$fs] $1"; }
fail() { echo "FAIL [$fs] $1"; fails=1; }
check() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2] got [$3]"; fi; }
contains() { case "$3" in *"$2"*) pass "$1";; *) fail "$1: [$2] not in [$3]";; esac; }
export HOME=/tmp
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
img=/tmp/$fs.img mnt=/mnt/$fs sock=/tmp/$fs.sock log=/tmp/berthd-$fs.log
truncate -s 400M "$img" || exit 1
# What a write past the limit fails with: xfs reports a project quota overrun as ENOSPC, ext4
# (the generic quota code) as EDQUOT; either way the write fails at the limit.
case $fs in
xfs) mkfs.xfs -q "$img" || exit 1; full="No space left on device" ;;
ext4) mkfs.ext4 -q -F -O quota,project "$img" || exit 1; full="Disk quota exceeded" ;;
*) echo "quota-guest: unknown filesystem $fs"; exit 1 ;;
esac
mkdir -p "$mnt" && mount -t "$fs" -o loop,prjquota "$img" "$mnt" || { dmesg | tail -n 5; exit 1; }
# start_berthd ROOT SOCK LOG: a berthd on ROOT, its pid in $pid.
start_berthd() {
	"$bin/berthd" --root "$1" --exec-root "/tmp/run-$(basename "$2" .sock)" -H "unix://$2" --bridge none >"$3" 2>&1 &
	pid=$!
	for i in $(seq 100); do [ -S "$2" ] && break; sleep 0.2; done
}
start_berthd "$mnt/root" "$sock" "$log"
export DOCKER_HOST=unix://$sock
docker load -i "$tar" >/dev/null || { cat "$log"; exit 1; }
IMG=berth-e2e/busybox:latest

out=$(docker run --name q20 --storage-opt size=20M "$IMG" dd if=/dev/zero of=/f bs=1M count=40 2>&1); rc=$?
check "--storage-opt size=20M: dd fails" 1 "$rc"
contains "--storage-opt size=20M: $full" "$full" "$out"
n=$(echo "$out" | sed -n 's/^\([0-9]*\)+[0-9]* records out/\1/p')
[ -n "$n" ] && [ "$n" -ge 18 ] && [ "$n" -le 20 ] && pass "stopped at ~20 MB ($n MB)" || fail "stopped at ~20 MB: [$out]"
check "inspect HostConfig.StorageOpt" '{"size":"20M"}' "$(docker inspect -f '{{json .HostConfig.StorageOpt}}' q20 2>&1)"
contains "the project id is recorded" '"c:' "$(cat $mnt/root/quota/projects.json)"
docker rm q20 >/dev/null
check "rm frees the project id" '{}' "$(cat $mnt/root/quota/projects.json)"
out=$(docker run --rm "$IMG" dd if=/dev/zero of=/f bs=1M count=40 2>&1); rc=$?
check "no limit: the same dd succeeds" 0 "$rc"

docker volume create --opt size=10M qv >/dev/null
check "volume --opt size: Options" '{"size":"10M"}' "$(docker volume inspect -f '{{json .Options}}' qv 2>&1)"
out=$(docker run --rm -v qv:/d "$IMG" dd if=/dev/zero of=/d/f bs=1M count=20 2>&1)
contains "volume --opt size=10M: $full" "$full" "$out"
docker volume rm qv >/dev/null
check "volume rm frees the project id" '{}' "$(cat $mnt/root/quota/projects.json)"
contains "Unknown storage option" "Unknown option foo" "$(docker run --rm --storage-opt foo=1 "$IMG" true 2>&1)"

kill "$pid"; wait "$pid"
umount "$mnt"

if [ "$fs" = ext4 ]; then
	# The same request on an ext4 root without project quotas: a clear error at create.
	truncate -s 200M /tmp/plain.img && mkfs.ext4 -q -F /tmp/plain.img && mkdir -p /mnt/plain \
		&& mount -t ext4 -o loop /tmp/plain.img /mnt/plain || exit 1
	start_berthd /mnt/plain/root /tmp/plain.sock /tmp/berthd-plain.log
	export DOCKER_HOST=unix:///tmp/plain.sock
	docker load -i "$tar" >/dev/null || { cat /tmp/berthd-plain.log; exit 1; }
	out=$(docker create --storage-opt size=20M "$IMG" true 2>&1); rc=$?
	check "no project quotas: create fails" 1 "$rc"
	contains "no project quotas: the error names ext4" "berth's root is on ext4 without them" "$out"
	check "no project quotas: nothing created" "" "$(docker ps -aq)"
	out=$(docker volume create --opt size=10M qv 2>&1); rc=$?
	check "no project quotas: volume --opt size fails" 1 "$rc"
	kill "$pid"; wait "$pid"
	umount /mnt/plain
fi
[ $fails = 0 ] || { tail -n 30 "$log"; exit 1; }
echo "quota [$fs]: all checks passed"
