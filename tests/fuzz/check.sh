#!/usr/bin/env bash
# What CI runs of the fuzzing (scripts/test.sh): build the targets with
# libFuzzer, ASan and UBSan; replay every committed input (seeds, with the
# regression cases, and the campaign's corpus) once; then fuzz each target
# for SECONDS (default 20) from there.  Any crash, leak, sanitizer report,
# timeout or broken invariant fails, with its input saved in the build dir.
#
#   tests/fuzz/check.sh BUILDDIR [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
mkdir -p "$1"
build=$(cd "$1" && pwd)
secs=${2:-20}
targets=(request token netaddr utf8 json config)

if [ ! -f "$build/Makefile" ]; then
	(cd "$build" && CC=clang "$top/configure" -q --enable-fuzz --enable-werror)
fi
make -C "$build" -s -j"$(nproc)" fuzz >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
for t in "${targets[@]}"; do
	bin=$build/tests/fuzz/fuzz_$t
	out=$build/fuzz-check/$t
	rm -rf "$out" && mkdir -p "$out/new"
	mkdir -p "$here/corpus/$t" # may be empty: no campaign has run yet
	n=$(find "$here/seeds/$t" "$here/corpus/$t" -type f | wc -l)
	# -runs=0: execute every input of the corpus directories once, no mutation.
	if ! "$bin" -runs=0 -timeout=10 -close_fd_mask=2 -artifact_prefix="$out/" \
		"$here/seeds/$t" "$here/corpus/$t" >"$out/replay.log" 2>&1; then
		echo "fuzz_$t: replay of $n inputs FAILED"; tail -n 30 "$out/replay.log"; failed=1; continue
	fi
	if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -dict="$here/fuzz.dict" \
		-close_fd_mask=2 -print_final_stats=1 -artifact_prefix="$out/" \
		"$out/new" "$here/corpus/$t" "$here/seeds/$t" >"$out/fuzz.log" 2>&1; then
		echo "fuzz_$t: replayed $n inputs; fuzzing FAILED (input in $out/)"
		grep -E 'invariant|ERROR|SUMMARY|runtime error' "$out/fuzz.log" | head -n 5
		failed=1; continue
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log")
	echo "fuzz_$t: replayed $n inputs, then $runs executions in ${secs} s: clean"
done
exit $failed
