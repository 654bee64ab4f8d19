#!/bin/bash
# Run test binaries on a real cgroup v2 kernel: Debian's linux-image-cloud-amd64 booted by
# qemu (TCG; never KVM, it hangs on these hosts) from an initramfs holding busybox, the
# binaries, their shared libraries and any extra files. No disk image is needed.
#
# Usage:
#   scripts/qemu-v2.sh [options] [--] BINARY [ARGS...] [--- BINARY [ARGS...]]...
#   scripts/qemu-v2.sh [options] --cargo "-p berth-cgroups" [-- EXTRA TEST ARGS...]
#
# Commands are separated by a "---" word. Each runs in the guest as root with cwd /tmp and
# prints one line "BERTH-QEMU: PASS <name>" or "BERTH-QEMU: FAIL <name> (exit N)" on the
# serial console; the guest then powers off. This script prints the console, then a summary,
# and exits 0 only if every command passed (1: some failed, 2: boot/timeout/harness error).
#
# Options (each also settable by environment variable):
#   --cargo "ARGS"      build test binaries with `cargo test --no-run --message-format=json ARGS`
#                       and run every one (ARGS after a following "--" are passed to each).
#                       Binary targets built alongside (CARGO_BIN_EXE_*) and each tested
#                       package's tests/ directory are copied to the same paths; other
#                       files tests read from the source tree need --include.
#   --include SRC[:DST] copy a file or directory into the guest (at DST, default same path);
#                       ELF files get their shared libraries too. Repeatable.
#                       env BERTH_QEMU_INCLUDE="SRC[:DST] ..."
#   --module NAME       insmod this kernel module (and its dependencies) at boot. Repeatable.
#                       env BERTH_QEMU_MODULES="overlay veth" (default: overlay)
#   --env K=V           environment for the commands. Repeatable. env BERTH_QEMU_ENV="K=V ..."
#   --timeout SECS      whole-run limit (default 600). env BERTH_QEMU_TIMEOUT
#   --mem MB            guest memory (default 1024). env BERTH_QEMU_MEM
#   --smp N             guest CPUs (default 2). env BERTH_QEMU_SMP
#   --kernel PATH       kernel image (default: newest /boot/vmlinuz-*-cloud-amd64).
#                       env BERTH_QEMU_KERNEL
#   --keep              keep the work dir (initramfs, console log) and print its path.
#   --quiet             do not echo the console live (it is still printed on failure).
#
# Inside the guest: /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm, /tmp (on the tmpfs root) and cgroup2
# at /sys/fs/cgroup with every controller enabled in the root's cgroup.subtree_control; lo is
# up; the root is a tmpfs (switch_root from the initramfs), so pivot_root works for runtimes.
# Every busybox applet is installed in /bin. The command line has cgroup_no_v1=all.
set -euo pipefail

die() { echo "qemu-v2: $*" >&2; exit 2; }

TIMEOUT=${BERTH_QEMU_TIMEOUT:-600}
MEM=${BERTH_QEMU_MEM:-1024}
SMP=${BERTH_QEMU_SMP:-2}
KERNEL=${BERTH_QEMU_KERNEL:-}
MODULES=${BERTH_QEMU_MODULES-overlay}
read -r -a INCLUDES <<<"${BERTH_QEMU_INCLUDE:-}"
read -r -a ENVS <<<"${BERTH_QEMU_ENV:-}"
CARGO_ARGS=""
KEEP=0
QUIET=0

while [ $# -gt 0 ]; do
	case "$1" in
	--cargo) CARGO_ARGS=${2:?--cargo needs an argument}; shift 2 ;;
	--include) INCLUDES+=("${2:?--include needs SRC[:DST]}"); shift 2 ;;
	--module) MODULES="$MODULES ${2:?--module needs a name}"; shift 2 ;;
	--env) ENVS+=("${2:?--env needs K=V}"); shift 2 ;;
	--timeout) TIMEOUT=${2:?}; shift 2 ;;
	--mem) MEM=${2:?}; shift 2 ;;
	--smp) SMP=${2:?}; shift 2 ;;
	--kernel) KERNEL=${2:?}; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--quiet) QUIET=1; shift ;;
	--) shift; break ;;
	-h|--help) sed -n '2,40p' "$0"; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
done

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: apt-get install -y qemu-system-x86"
command -v cpio >/dev/null || die "cpio missing: apt-get install -y cpio"
if [ -z "$KERNEL" ]; then
	KERNEL=$(ls -1 /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n1 || true)
	[ -n "$KERNEL" ] || die "no /boot/vmlinuz-*-cloud-amd64: apt-get install -y linux-image-cloud-amd64"
fi
[ -r "$KERNEL" ] || die "kernel $KERNEL not readable"
KVER=$(basename "$KERNEL"); KVER=${KVER#vmlinuz-}

# ---- collect commands: arrays of words, separated by "---"
CMDS=()      # each entry: a shell-quoted command line
NAMES=()
add_cmd() {  # add_cmd BINARY ARGS...
	local bin=$1; shift
	[ -f "$bin" ] || die "binary $bin not found"
	local abs; abs=$(readlink -f "$bin")
	local n=${#CMDS[@]}
	local name; name=$(basename "$abs")
	local dest="/berth-bin/$n/$name"
	BINS+=("$abs:$dest")
	local line; line=$(printf '%q ' "$dest" "$@")
	CMDS+=("$line")
	NAMES+=("$name")
}
BINS=()

if [ -n "$CARGO_ARGS" ]; then
	extra=("$@")
	[ "${extra[0]:-}" = "--" ] && extra=("${extra[@]:1}")
	# shellcheck disable=SC2086
	json=$(cargo test --no-run --message-format=json $CARGO_ARGS) || die "cargo test --no-run $CARGO_ARGS failed"
	mapfile -t built < <(sed -n 's/.*"profile":{[^}]*"test":true[^}]*}.*"executable":"\([^"]*\)".*/\1/p' <<<"$json")
	[ ${#built[@]} -gt 0 ] || die "cargo test --no-run $CARGO_ARGS produced no test executables"
	for b in "${built[@]}"; do add_cmd "$b" "${extra[@]}"; done
	# Test data the tests read through env!("CARGO_MANIFEST_DIR"): each tested package's
	# tests/ directory goes to the same path in the guest.
	while IFS= read -r m; do
		d=$(dirname "$m")/tests
		[ -d "$d" ] && INCLUDES+=("$d")
	done < <(sed -n 's/.*"profile":{[^}]*"test":true[^}]*}.*/&/p' <<<"$json" |
		sed -n 's/.*"manifest_path":"\([^"]*\)".*/\1/p' | sort -u)
	# Binaries the tests reach through env!("CARGO_BIN_EXE_<name>"): same path in the guest.
	while IFS= read -r b; do [ -n "$b" ] && INCLUDES+=("$b"); done < \
		<(sed -n 's/.*"profile":{[^}]*"test":false[^}]*}.*"executable":"\([^"]*\)".*/\1/p' <<<"$json")
else
	[ $# -gt 0 ] || die "no binary given (see --help)"
	cur=()
	for a in "$@" ---; do
		if [ "$a" = "---" ]; then
			[ ${#cur[@]} -gt 0 ] && add_cmd "${cur[@]}"
			cur=()
		else
			cur+=("$a")
		fi
	done
fi

WORK=$(mktemp -d /tmp/berth-qemu.XXXXXX)
cleanup() { if [ "$KEEP" = 1 ]; then echo "qemu-v2: work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,dev,proc,sys,tmp,run,etc,root,newroot,berth-bin,usr/bin,usr/sbin}
mknod -m 600 "$ROOT/dev/console" c 5 1
mknod -m 666 "$ROOT/dev/null" c 1 3

# copy SRC to ROOT/DST, then the shared libraries an ELF needs (same paths as on the host).
copy_libs() {
	local f=$1
	file_is_elf "$f" || return 0
	{ ldd "$f" 2>/dev/null || true; } | while read -r a b c _; do
		local lib=""
		if [ "$b" = "=>" ] && [ -n "$c" ] && [ "${c#/}" != "$c" ]; then lib=$c
		elif [ "${a#/}" != "$a" ]; then lib=$a; fi
		if [ -n "$lib" ] && [ ! -e "$ROOT$lib" ]; then
			mkdir -p "$ROOT$(dirname "$lib")"
			cp -L "$lib" "$ROOT$lib"
		fi
	done
}
file_is_elf() { [ -f "$1" ] && [ "$(head -c4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]; }
put() {  # put SRC DST [strip]
	local src=$1 dst=$2
	[ -e "$src" ] || die "include $src does not exist"
	mkdir -p "$ROOT$(dirname "$dst")"
	if [ -d "$src" ]; then
		cp -a "$src" "$ROOT$dst"
		while IFS= read -r -d '' f; do copy_libs "$f"; done < <(find "$src" -type f -perm -u+x -print0)
	else
		cp -L "$src" "$ROOT$dst"
		if [ "${3:-}" = strip ] && file_is_elf "$ROOT$dst"; then
			objcopy --strip-debug "$ROOT$dst" 2>/dev/null || true
		fi
		copy_libs "$src"
	fi
}

put /bin/busybox /bin/busybox
for b in "${BINS[@]}"; do put "${b%%:*}" "${b#*:}" strip; done
for i in "${INCLUDES[@]}"; do
	[ -n "$i" ] || continue
	src=${i%%:*}; dst=${i#*:}; [ "$dst" = "$i" ] && dst=$(readlink -f "$src")
	put "$src" "$dst"
done

# kernel modules and their dependencies, in load order
MODDIR=/lib/modules/$KVER
MODLOAD=()
add_module() {
	local m=$1 line path deps d
	line=$(grep -E "(^|/)${m//-/[-_]}\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep" | head -n1 || true)
	if [ -z "$line" ]; then
		if grep -qE "/${m}\.ko" "$MODDIR/modules.builtin" 2>/dev/null; then return 0; fi
		die "kernel module $m not found for $KVER"
	fi
	path=${line%%:*}; deps=${line#*:}
	for d in $deps; do add_module "$(basename "${d%%.ko*}")"; done
	for d in "${MODLOAD[@]}"; do [ "$d" = "/lib/modules/$KVER/$path" ] && return 0; done
	mkdir -p "$ROOT/lib/modules/$KVER/$(dirname "$path")"
	case "$path" in
	*.ko) cp "$MODDIR/$path" "$ROOT/lib/modules/$KVER/$path" ;;
	*.ko.xz) xz -dc "$MODDIR/$path" >"$ROOT/lib/modules/$KVER/${path%.xz}"; path=${path%.xz} ;;
	*.ko.zst) zstd -qdc "$MODDIR/$path" >"$ROOT/lib/modules/$KVER/${path%.zst}"; path=${path%.zst} ;;
	*.ko.gz) gzip -dc "$MODDIR/$path" >"$ROOT/lib/modules/$KVER/${path%.gz}"; path=${path%.gz} ;;
	esac
	MODLOAD+=("/lib/modules/$KVER/$path")
}
for m in $MODULES; do add_module "$m"; done

# ---- the guest's init: stage 1 moves the root to a tmpfs (so pivot_root works), stage 2 runs
{
	echo '#!/bin/busybox sh'
	echo 'export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root RUST_BACKTRACE=1'
	cat <<'EOF'
/bin/busybox mount -t proc proc /proc
if [ "$$" = 1 ] && [ ! -e /.stage2 ]; then
	/bin/busybox mount -t tmpfs -o mode=0755 root /newroot
	for d in /*; do
		case "$d" in /newroot|/proc|/sys|/dev) /bin/busybox mkdir -p "/newroot$d" ;; *) /bin/busybox cp -a "$d" /newroot/ ;; esac
	done
	/bin/busybox touch /newroot/.stage2
	/bin/busybox umount /proc
	exec /bin/busybox switch_root /newroot /init
fi
/bin/busybox --install -s /bin 2>/dev/null
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /sys/fs/cgroup
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
# The root is a tmpfs already: a second tmpfs on /tmp would hide files included under /tmp
# (a checkout in /tmp puts the test binaries there).
chmod 1777 /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; done
ip link set lo up 2>/dev/null
echo "BERTH-QEMU: kernel $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
EOF
	for m in "${MODLOAD[@]}"; do printf 'insmod %q || echo "BERTH-QEMU: insmod %q failed"\n' "$m" "$m"; done
	for e in "${ENVS[@]}"; do [ -n "$e" ] && printf 'export %q\n' "$e"; done
	echo 'cd /tmp'
	for i in "${!CMDS[@]}"; do
		name=${NAMES[$i]}
		printf 'echo "BERTH-QEMU: RUN %s"\n' "$name"
		printf '%s\nrc=$?\n' "${CMDS[$i]}"
		# (a leading newline keeps the marker at the start of a line after partial output)
		printf 'if [ $rc = 0 ]; then echo; echo "BERTH-QEMU: PASS %s"; else echo; echo "BERTH-QEMU: FAIL %s (exit $rc)"; fi\n' "$name" "$name"
	done
	cat <<'EOF'
echo; echo "BERTH-QEMU: DONE"
sync
poweroff -f
echo o > /proc/sysrq-trigger
EOF
} >"$ROOT/init"
chmod 755 "$ROOT/init"

(cd "$ROOT" && find . -print0 | cpio --null -o -H newc --quiet) >"$WORK/initrd.cpio"
gzip -1 -c "$WORK/initrd.cpio" >"$WORK/initrd.gz" && rm -f "$WORK/initrd.cpio"

LOG=$WORK/console.log
start=$(date +%s%N)
set +e
if [ "$QUIET" = 1 ]; then
	timeout --foreground -k 5 "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp "$SMP" -m "$MEM" \
		-display none -no-reboot -nodefaults -serial stdio -kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
		-append "console=ttyS0 quiet panic=-1 rdinit=/init cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1" \
		</dev/null >"$LOG" 2>&1
	qrc=$?
else
	timeout --foreground -k 5 "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp "$SMP" -m "$MEM" \
		-display none -no-reboot -nodefaults -serial stdio -kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
		-append "console=ttyS0 quiet panic=-1 rdinit=/init cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1" \
		</dev/null 2>&1 | tee "$LOG"
	qrc=${PIPESTATUS[0]}
fi
set -e
ms=$(( ($(date +%s%N) - start) / 1000000 )); secs="$((ms / 1000)).$(printf %03d $((ms % 1000)))"

tr -d '\r' <"$LOG" >"$LOG.clean"
pass=$(grep -c '^BERTH-QEMU: PASS ' "$LOG.clean" || true)
fail=$(grep -c '^BERTH-QEMU: FAIL ' "$LOG.clean" || true)
echo "==== qemu-v2 summary ($KVER, ${secs}s) ===="
grep -E '^BERTH-QEMU: (PASS|FAIL) ' "$LOG.clean" || true
if ! grep -q '^BERTH-QEMU: DONE' "$LOG.clean"; then
	[ "$QUIET" = 1 ] && tail -n 60 "$LOG.clean"
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then echo "qemu-v2: TIMEOUT after ${TIMEOUT}s" >&2; else echo "qemu-v2: guest did not finish (qemu exit $qrc)" >&2; fi
	exit 2
fi
if [ "$fail" != 0 ] || [ "$pass" != "${#CMDS[@]}" ]; then
	[ "$QUIET" = 1 ] && cat "$LOG.clean"
	echo "qemu-v2: $fail of ${#CMDS[@]} failed" >&2
	exit 1
fi
echo "qemu-v2: all ${#CMDS[@]} passed"
