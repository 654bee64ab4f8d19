#!/bin/bash
# Disk quotas end to end (`--storage-opt size=`, a volume's `--opt size=`) with the docker CLI,
# on an xfs loop filesystem mounted with prjquota and on an ext4 one made with the quota and
# project features (mounted with prjquota), in a qemu guest: Debian's cloud kernel has XFS
# quotas (CONFIG_XFS_QUOTA) and the quota file format ext4 needs (CONFIG_QFMT_V2) where the
# host kernel may not. The checks are in quota-guest.sh. Needs xfsprogs, e2fsprogs and the
# docker CLI at /usr/local/bin/docker.
#   tests/qemu/quota-v2.sh [TARGET_DIR]   (default target/debug, built beforehand)
# Exit status as scripts/qemu-v2.sh: 0 pass, 1 fail, 2 harness/timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(readlink -f "${1:-target/debug}")
for b in berthd berth-monitor berth-runtime; do [ -x "$bin/$b" ] || { echo "quota: $bin/$b missing"; exit 2; }; done
command -v mkfs.xfs >/dev/null || { echo "quota: mkfs.xfs missing (apt-get install xfsprogs)"; exit 2; }
command -v mkfs.ext4 >/dev/null || { echo "quota: mkfs.ext4 missing (apt-get install e2fsprogs)"; exit 2; }
work=$(mktemp -d /tmp/berth-quota.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The e2e busybox image, as tests/e2e/docker-cli.sh makes it.
r=$work/rootfs a=$work/archive
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$a"
cp /bin/busybox "$r/bin/busybox"
for x in $(/bin/busybox --list); do [ "$x" = busybox ] || ln -s busybox "$r/bin/$x"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$work/layer.tar" .
diff=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
mkdir -p "$a/$diff"; mv "$work/layer.tar" "$a/$diff/layer.tar"
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff" >"$a/config.json"
cfg=$(sha256sum "$a/config.json" | cut -d' ' -f1); mv "$a/config.json" "$a/$cfg.json"
printf '[{"Config":"%s.json","RepoTags":["berth-e2e/busybox:latest"],"Layers":["%s/layer.tar"]}]' "$cfg" "$diff" >"$a/manifest.json"
tar -C "$a" -cf "$work/image.tar" manifest.json "$cfg.json" "$diff"
rm -rf "$r" "$a"
inc=(--include "$bin/berthd" --include "$bin/berth-monitor" --include "$bin/berth-runtime"
	--include /usr/local/bin/docker:/usr/bin/docker --include "$(command -v mkfs.xfs):/usr/sbin/mkfs.xfs"
	--include "$(command -v mkfs.ext4):/usr/sbin/mkfs.ext4"
	--include "$work/image.tar" --include tests/qemu/quota-guest.sh)
scripts/qemu-v2.sh --timeout "${BERTH_QEMU_TIMEOUT:-600}" --mem 1536 --module loop --module xfs --module quota_v2 \
	"${inc[@]}" /bin/busybox sh "$PWD/tests/qemu/quota-guest.sh" "$bin" "$work/image.tar" xfs \
	--- /bin/busybox sh "$PWD/tests/qemu/quota-guest.sh" "$bin" "$work/image.tar" ext4
