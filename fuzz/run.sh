#!/bin/bash
# Run berth's fuzz targets, each bounded, one after the other, and print a table of
# target / executions / exec/s / crashes (from libFuzzer's final stats).
#   fuzz/run.sh SECONDS [TARGET...]      (default: every target; not run in CI)
# Environment: RUNS=N stops a target after N executions (before SECONDS is up);
# JOBS is not used: one target at a time, at nice 19 (the machine is shared).
# Builds with cargo-fuzz (stable toolchain, RUSTC_BOOTSTRAP=1; `cargo install cargo-fuzz`),
# without sanitizer (safe Rust; debug assertions on: overflow is a finding), seeds the corpus
# (seeds/make-corpus.sh) if it is missing, and keeps per-target logs in fuzz/logs/.
# The targets that write files enter a private mount namespace (see src/lib.rs): run as root.
set -euo pipefail
secs=${1:?usage: run.sh SECONDS [TARGET...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
all=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v -e berth-fuzz -e berth_fuzz)
targets=${*:-$all}
if [ -z "${NO_BUILD:-}" ]; then
	RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz build -s none -a >/dev/null
fi
[ -d corpus ] || bash seeds/make-corpus.sh
bin=$here/target/x86_64-unknown-linux-gnu/release
mkdir -p logs

max_len() {
	case $1 in
	docker_archive | oci_layout | seccomp) echo 65536 ;;
	layer_unpack) echo 32768 ;;
	dockerfile | runtime_config | api_container_create) echo 16384 ;;
	api_*) echo 8192 ;;
	*) echo 4096 ;;
	esac
}

rows=()
for t in $targets; do
	mkdir -p "corpus/$t" "artifacts/$t"
	before=$(ls "artifacts/$t" | wc -l)
	log=logs/$t-$(date -u +%Y%m%dT%H%M%S).log
	args=(-max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 -max_len="$(max_len "$t")"
		-print_final_stats=1 -artifact_prefix="$here/artifacts/$t/" -close_fd_mask=1)
	[ -n "${RUNS:-}" ] && args+=(-runs="$RUNS")
	[ -f "seeds/$t.dict" ] && args+=(-dict="seeds/$t.dict")
	set +e
	nice -n 19 "$bin/$t" "${args[@]}" "corpus/$t" >"$log" 2>&1
	rc=$?
	set -e
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	after=$(ls "artifacts/$t" | wc -l)
	rows+=("$(printf '%-22s %12s %8s %8s %4s  %s' "$t" "${execs:-?}" "${rate:-?}" "$((after - before))" "$rc" "$log")")
done
printf '%-22s %12s %8s %8s %4s  %s\n' target executions exec/s crashes rc log
printf '%s\n' "${rows[@]}"
