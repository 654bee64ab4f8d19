#!/bin/bash
# Seed fuzz/corpus/<target>/ from real files: a busybox layer and image made from the host's
# busybox (tests/peers/mkimage.sh, with the binary shrunk so inputs stay small), the same
# image converted by skopeo (OCI layout, docker-archive) and unpacked by umoci (its
# config.json), Docker's seccomp profile (shared/reference), the build crate's Dockerfile
# fixtures, runc's and berth-runtime's default specs, and the hand-made cases of seeds/*.py.
#   fuzz/seeds/make-corpus.sh            (idempotent; keeps what fuzzing added)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$here/.." && pwd)
c=$here/corpus
tmp=$(mktemp -d /tmp/berth-fuzz-seed.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for t in $(sed -n 's/^name = "\(.*\)"$/\1/p' "$here/Cargo.toml" | grep -v -e berth-fuzz -e berth_fuzz); do mkdir -p "$c/$t"; done
seed() { cp "$2" "$c/$1/seed-$(basename "$2")"; }

# busybox image, then shrink the binary (the tree, names, modes and links stay real)
bash "$repo/tests/peers/mkimage.sh" "$tmp/img" localhost/fuzz/busybox:latest >/dev/null
r=$tmp/img/rootfs
printf '#!/bin/sh\necho busybox stand-in\n' >"$r/bin/busybox"
tarit() { tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$1" -cf "$2" .; }
tarit "$r" "$tmp/busybox-layer.tar"
# a smaller one: a few applets only (libFuzzer keeps inputs under -max_len)
mkdir -p "$tmp/small/bin" "$tmp/small/etc"
cp -a "$r/bin/busybox" "$r/bin/sh" "$r/bin/ls" "$tmp/small/bin/"
cp -a "$r/etc/passwd" "$r/etc/group" "$tmp/small/etc/"
mkdir -m 1777 "$tmp/small/tmp"
tarit "$tmp/small" "$tmp/small-layer.tar"
gzip -9 -k -n "$tmp/small-layer.tar"
zstd -q -19 -k "$tmp/small-layer.tar" -o "$tmp/small-layer.tar.zst" 2>/dev/null || true
for f in busybox-layer.tar small-layer.tar small-layer.tar.gz small-layer.tar.zst; do
	[ -f "$tmp/$f" ] && seed layer_unpack "$tmp/$f"
done

# images: docker-archive of the small tree (mkimage's layout), skopeo conversions
bash "$repo/tests/peers/mkimage.sh" "$tmp/img2" localhost/fuzz/small:1 >/dev/null
rm -rf "$tmp/img2/rootfs"/*; cp -a "$tmp/small/." "$tmp/img2/rootfs/"
(
	cd "$tmp/img2"
	layer=$(ls archive | grep -v '\.json$' | grep -v manifest)
	tarit rootfs "archive/$layer/layer.tar"
	# the layer's digest changed: rebuild mkimage's archive around it
	sha=$(sha256sum "archive/$layer/layer.tar" | cut -d' ' -f1)
	mv "archive/$layer" "archive/$sha"
	rm -f archive/*.json
	cfg=$(printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"seed"}]}' "$sha")
	cs=$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
	printf '%s' "$cfg" >"archive/$cs.json"
	printf '[{"Config":"%s.json","RepoTags":["localhost/fuzz/small:1"],"Layers":["%s/layer.tar"]}]' "$cs" "$sha" >archive/manifest.json
	tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C archive -cf docker-archive.tar manifest.json "$cs.json" "$sha"
)
seed docker_archive "$tmp/img2/docker-archive.tar"
gzip -9 -n -c "$tmp/img2/docker-archive.tar" >"$c/docker_archive/seed-docker-archive.tar.gz"
if command -v skopeo >/dev/null; then
	skopeo copy -q "docker-archive:$tmp/img2/docker-archive.tar" "oci:$tmp/oci:small:1"
	skopeo copy -q "docker-archive:$tmp/img2/docker-archive.tar" "oci-archive:$tmp/oci-archive.tar:small:1"
	skopeo copy -q "docker-archive:$tmp/img2/docker-archive.tar" "docker-archive:$tmp/skopeo-docker-archive.tar:localhost/fuzz/sk:1"
	skopeo copy -q --format v2s2 "docker-archive:$tmp/img2/docker-archive.tar" "dir:$tmp/v2s2"
	skopeo copy -q --format oci "docker-archive:$tmp/img2/docker-archive.tar" "dir:$tmp/ocidir"
	seed docker_archive "$tmp/oci-archive.tar"
	seed docker_archive "$tmp/skopeo-docker-archive.tar"
	seed oci_layout "$tmp/oci-archive.tar"
	tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tmp/oci" -cf "$tmp/oci-layout.tar" .
	seed oci_layout "$tmp/oci-layout.tar"
	cp "$tmp/v2s2/manifest.json" "$c/registry_manifest/seed-docker-v2s2-manifest.json"
	cp "$tmp/ocidir/manifest.json" "$c/registry_manifest/seed-oci-manifest.json"
	cp "$tmp/oci/index.json" "$c/registry_manifest/seed-oci-layout-index.json"
	for b in "$tmp"/oci/blobs/sha256/*; do
		[ "$(stat -c %s "$b")" -lt 8192 ] && head -c1 "$b" | grep -q '{' && cp "$b" "$c/registry_manifest/seed-blob-$(basename "$b" | cut -c1-12).json"
	done
fi
if command -v umoci >/dev/null; then
	umoci init --layout "$tmp/umoci" && umoci new --image "$tmp/umoci:t"
	umoci config --image "$tmp/umoci:t" --config.cmd sh --config.env A=b --config.user 1000:1000 --config.workingdir /w --config.label l=v
	tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tmp/umoci" -cf "$tmp/umoci-layout.tar" .
	seed oci_layout "$tmp/umoci-layout.tar"
	seed docker_archive "$tmp/umoci-layout.tar"
	umoci unpack --image "$tmp/oci:small:1" "$tmp/bundle" >/dev/null
	cp "$tmp/bundle/config.json" "$c/runtime_config/seed-umoci-config.json"
fi
command -v runc >/dev/null && (cd "$tmp" && runc spec && cp config.json "$c/runtime_config/seed-runc-spec.json" && rm config.json)
command -v runc >/dev/null && (cd "$tmp" && runc spec --rootless && cp config.json "$c/runtime_config/seed-runc-spec-rootless.json" && rm config.json)
rt=$repo/target/debug/berth-runtime
[ -x "$rt" ] || rt=/work/main/target/debug/berth-runtime
[ -x "$rt" ] && (cd "$tmp" && "$rt" spec && cp config.json "$c/runtime_config/seed-berth-runtime-spec.json" && rm config.json) || true

# seccomp: Docker's profile, and the OCI form inside runc's/umoci's specs
for ref in "$repo/../shared/reference/docker-default-seccomp.json" /work/shared/reference/docker-default-seccomp.json "$repo/crates/engine/assets/docker-default-seccomp.json"; do
	[ -f "$ref" ] && { cp "$ref" "$c/seccomp/seed-docker-default.json"; break; }
done
# Dockerfiles
for f in "$repo"/crates/build/tests/fixtures/*Dockerfile; do seed dockerfile "$f"; done
# hand-made cases: tars with escapes, API bodies, headers, references, ...
python3 "$here/seeds/handmade.py" "$c"
echo "corpus seeded in $c: $(find "$c" -type f | wc -l) files"
