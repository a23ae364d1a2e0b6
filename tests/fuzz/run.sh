#!/usr/bin/env bash
# A fuzzing campaign: each target for SECONDS (CPU time: one process per
# target, JOBS at a time), starting from the committed seeds and corpus,
# then the corpus minimised back into tests/fuzz/corpus/TARGET (libFuzzer's
# merge keeps one input per new coverage feature).  Crashes, leaks,
# timeouts and broken invariants land in OUT/TARGET/ as crash-*, leak-*,
# timeout-*; every one is a bug to fix, its input then kept under
# tests/fuzz/seeds/TARGET/regress-* (docs/SECURITY.md).
#
#   tests/fuzz/run.sh FUZZ-BUILDDIR SECONDS [JOBS] [TARGET[:SECONDS]...]
# FUZZ-BUILDDIR: configured with CC=clang --enable-fuzz.  Prints one line
# of figures per target (runs, executions/s, edges, features, corpus).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
secs=$2
jobs=${3:-1}
shift $(($# < 3 ? $# : 3))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request token netaddr utf8 json config)
out=${FUZZ_OUT:-$build/fuzz-out}

[ -n "${FUZZ_NO_BUILD:-}" ] || make -C "$build" -s fuzz
mkdir -p "$out"
one() { # TARGET[:SECONDS]
	local t=${1%%:*} secs=$secs
	[ "$t" = "$1" ] || secs=${1#*:}
	local work=$out/$t
	mkdir -p "$work/new" "$here/corpus/$t" "$here/seeds/$t"
	# New inputs go to work/new; the committed corpus and seeds are read.
	/usr/bin/time -f '%U %S' -o "$work/cpu" \
		"$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -max_len=8192 \
		-dict="$here/fuzz.dict" -close_fd_mask=2 -print_final_stats=1 \
		-artifact_prefix="$work/" "$work/new" "$here/corpus/$t" "$here/seeds/$t" \
		>"$work/log" 2>&1 || echo "fuzz_$t: stopped with a finding, see $work/" >&2
	# Minimise: only what adds coverage over the seeds joins the corpus.
	mkdir -p "$work/min"
	"$build/tests/fuzz/fuzz_$t" -merge=1 -close_fd_mask=2 "$work/min" "$here/seeds/$t" \
		"$here/corpus/$t" "$work/new" >"$work/merge.log" 2>&1
	# The merge names files by the SHA-1 of their content; seeds stay in
	# seeds/, the corpus holds what the merge kept beyond them.
	rm -rf "$here/corpus/$t.tmp" && mkdir "$here/corpus/$t.tmp"
	sha1sum "$here/seeds/$t"/* 2>/dev/null | awk '{ print $1 }' | sort >"$work/seed-sums"
	for f in "$work/min"/*; do
		[ -e "$f" ] || continue
		grep -qx "$(basename "$f")" "$work/seed-sums" || cp "$f" "$here/corpus/$t.tmp/"
	done
	rm -rf "$here/corpus/$t" && mv "$here/corpus/$t.tmp" "$here/corpus/$t"
}
running=0
for t in "${targets[@]}"; do
	one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n || true
		running=$((running - 1))
	fi
done
wait || true

printf '%-8s %6s %6s %12s %9s %7s %8s %7s %s\n' target secs cpu-s runs exec/s edges features corpus findings
for spec in "${targets[@]}"; do
	t=${spec%%:*}
	log=$out/$t/log
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	edges=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	finds=$(find "$out/$t" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' \
		-o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l)
	printf '%-8s %6s %6s %12s %9s %7s %8s %7s %s\n' "$t" \
		"$(sed -n 's/.*Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")" \
		"$(awk 'END { printf "%.0f", $1 + $2 }' "$out/$t/cpu" 2>/dev/null)" "${runs:-?}" "${speed:-?}" "${edges:-?}" \
		"${ft:-?}" "$(find "$here/corpus/$t" -type f | wc -l)" "$finds"
done
