#!/bin/bash
# Build a busybox image from the host's /bin/busybox (never downloaded):
#   tests/peers/mkimage.sh OUTDIR [REPO:TAG]
# writes OUTDIR/rootfs/ (the tree), OUTDIR/rootfs.tar (for `podman import`) and
# OUTDIR/docker-archive.tar (manifest.json + config + layer.tar, for `ctr image import`,
# `podman load`, `docker load`). Prints the image reference.
set -euo pipefail
out=${1:?usage: mkimage.sh OUTDIR [REPO:TAG]}
ref=${2:-localhost/berth-peer/busybox:latest}
bb=$(command -v busybox || true)
[ -x /bin/busybox ] && bb=/bin/busybox
[ -n "$bb" ] || { echo "mkimage: busybox-static is required (apt-get install busybox-static)" >&2; exit 2; }
rm -rf "$out"; mkdir -p "$out/rootfs" "$out/archive"
r=$out/rootfs
mkdir -p "$r"/{bin,dev,etc,proc,sys,tmp,root,var/tmp}
chmod 1777 "$r/tmp" "$r/var/tmp"
cp "$bb" "$r/bin/busybox"
for a in $("$r/bin/busybox" --list); do
	[ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
# Reproducible tars: fixed owner and mtime, sorted names.
tarit() { tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$1" -cf "$2" .; }
tarit "$r" "$out/rootfs.tar"
layer_sha=$(sha256sum "$out/rootfs.tar" | cut -d' ' -f1)
mkdir -p "$out/archive/$layer_sha"
cp "$out/rootfs.tar" "$out/archive/$layer_sha/layer.tar"
printf '1.0' >"$out/archive/$layer_sha/VERSION"
cfg=$(printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"berth tests/peers/mkimage.sh"}]}' "$layer_sha")
cfg_sha=$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
printf '%s' "$cfg" >"$out/archive/$cfg_sha.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg_sha" "$ref" "$layer_sha" >"$out/archive/manifest.json"
tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$out/archive" -cf "$out/docker-archive.tar" manifest.json "$cfg_sha.json" "$layer_sha"
echo "$ref"
