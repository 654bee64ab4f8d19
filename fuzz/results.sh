#!/bin/bash
# Print the README's results table from fuzz/logs/: per target, its largest finished run
# (executions, exec/s, crashes = crash-/timeout-/oom- files in artifacts/<target>/, date).
# A run still going is shown from its last status line, marked "(running)".
set -euo pipefail
cd "$(dirname "$0")"
echo "| target | executions | exec/s | crashes | date (UTC) |"
echo "| --- | ---: | ---: | ---: | --- |"
for t in $(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v -e berth-fuzz -e berth_fuzz); do
	best=0 rate=? when=? note=
	for f in logs/"$t"-*.log; do
		[ -f "$f" ] || continue
		n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$f" | tail -1)
		r=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$f" | tail -1)
		mark=
		if [ -z "$n" ]; then
			n=$(grep -oE '^#[0-9]+' "$f" | tail -1 | tr -d '#')
			r=$(grep -oE 'exec/s: [0-9]+' "$f" | tail -1 | cut -d' ' -f2)
			mark=" (running)"
		fi
		if [ -n "$n" ] && [ "$n" -gt "$best" ]; then
			best=$n rate=${r:-?} note=$mark
			when=$(echo "$f" | sed -E 's/.*-([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2}).*/\1-\2-\3 \4:\5/')
		fi
	done
	crashes=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) 2>/dev/null | wc -l)
	printf '| `%s` | %s%s | %s | %s | %s |\n' "$t" "$best" "$note" "$rate" "$crashes" "$when"
done
