#!/usr/bin/env bash
# Line coverage of src/ reached by the committed fuzz inputs (seeds and
# corpus), measured with llvm-cov: a separate build with source-based
# coverage instead of the sanitizers, every input run once per target, the
# profiles merged, one report over src/ (per file, then the total).
#
#   tests/fuzz/coverage.sh BUILDDIR [TARGET...]
# Needs clang and llvm (llvm-profdata, llvm-cov; Debian: llvm-14).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
mkdir -p "$1"
build=$(cd "$1" && pwd)
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request token netaddr utf8 json config)
profdata=$(command -v llvm-profdata || command -v llvm-profdata-14)
cov=$(command -v llvm-cov || command -v llvm-cov-14)

if [ ! -f "$build/Makefile" ]; then
	(cd "$build" && CC=clang "$top/configure" -q --enable-fuzz=coverage)
fi
make -C "$build" -s -j"$(nproc)" fuzz
rm -rf "$build/profiles" && mkdir -p "$build/profiles"
objects=()
for t in "${targets[@]}"; do
	LLVM_PROFILE_FILE="$build/profiles/$t-%p.profraw" "$build/tests/fuzz/fuzz_$t" -runs=0 \
		-artifact_prefix="$build/profiles/" \
		-close_fd_mask=3 "$here/seeds/$t" "$here/corpus/$t" >/dev/null 2>&1
	objects+=(-object "$build/tests/fuzz/fuzz_$t")
done
"$profdata" merge -sparse -o "$build/fuzz.profdata" "$build/profiles"/*.profraw
# Only our modules: src/*.c, not the harness nor the libraries.
"$cov" report -instr-profile="$build/fuzz.profdata" "${objects[@]:1}" \
	--ignore-filename-regex='tests/|/usr/' -show-region-summary=false \
	-show-branch-summary=false -show-instantiation-summary=false
