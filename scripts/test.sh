#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this):
#   1. missing packages installed (Debian's, and tests/web's npm packages);
#   2. formatting (clang-format) and static analysis (cppcheck);
#   3. -Wall -Wextra -Werror build, `make check` (unit + end-to-end);
#   4. the same under AddressSanitizer + UndefinedBehaviorSanitizer;
#   5. the fuzz targets (clang, libFuzzer + ASan/UBSan): every committed
#      input replayed, then each target fuzzed for a short, bounded time;
#   6. unit tests under valgrind;
#   7. `make distcheck` (the tarball builds and passes its tests: the
#      unit tests and the end-to-end scripts that need its files);
#   8. tests/dev/test_dev.sh: scripts/dev.sh as a newcomer runs it;
#   9. `make check-deb`: the tarball builds the Debian package, which is
#      installed into a fresh debootstrap root, run, and purged
#      (tests/deb/test_deb.sh; needs the Debian archive).
# End-to-end tests start their own PostgreSQL and lighttpd; nothing needs
# to be running.  Works as root or as a user with sudo.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
scripts/install-deps.sh
# The Node.js packages of the OpenAPI and browser tests, exactly as locked.
# The tests find them through CHAT_NODE_DIR, also from distcheck's copy.
(cd tests/web && npm ci --no-audit --no-fund --loglevel=error)
export CHAT_NODE_DIR=$top/tests/web

step "format and static analysis"
clang-format --dry-run --Werror $(find src tests/unit tests/fuzz tests/tools bench -name "*.[ch]")
cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	--suppress=missingIncludeSystem --inline-suppr -Isrc src tests/unit tests/fuzz tests/tools bench

step "build with -Werror"
autoreconf -fi >/dev/null 2>&1
run_check() { # DIR CONFIGURE-FLAGS...
	local dir=$1
	shift
	rm -rf "$dir"
	mkdir -p "$dir"
	(cd "$dir" && "$top/configure" -q "$@" && make -j"$(nproc)" >/dev/null &&
		make check -j1 || { cat test-suite.log 2>/dev/null | tail -n 200; exit 1; })
}
run_check _build/werror --enable-werror

step "sanitizers (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_check _build/asan --enable-werror --enable-sanitizers

step "fuzz targets: replay the corpus, then ${FUZZ_SECONDS:-20} s each"
rm -rf _build/fuzz
tests/fuzz/check.sh _build/fuzz "${FUZZ_SECONDS:-20}"

step "unit tests under valgrind"
for t in _build/werror/tests/unit/test_*; do
	[ -x "$t" ] || continue
	CK_FORK=no valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
		--show-possibly-lost=no --child-silent-after-fork=yes \
		"$t" >/dev/null || { echo "valgrind: $t failed"; exit 1; }
	echo "valgrind: $(basename "$t") clean"
done

step "distcheck"
# Its make check runs the unit tests, the man page test and the end-to-end
# scripts that depend most on files the tarball must carry (lighttpd.conf
# and the door, the Apache template, the web client and openapi.yaml); every
# end-to-end script has run twice above.
(cd _build/werror && make distcheck -j"$(nproc)" DISTCHECK_CONFIGURE_FLAGS=--enable-werror \
	E2E_RUN="tests/e2e/test_foundation.sh tests/e2e/test_door.sh tests/e2e/test_apache.sh tests/e2e/test_web.sh" >/dev/null ||
	{ find . -name test-suite.log -path '*_build*' -exec tail -n 100 {} \; ; exit 1; })
echo "distcheck: the tarball builds and passes make check"

step "the dev stack: scripts/dev.sh quiet, its summary true, Ctrl-C leaves nothing"
tests/dev/test_dev.sh "$top/_build/werror" || { echo "test_dev failed"; exit 1; }

step "Debian package: built from the tarball, installed on a fresh Debian 12 root, purged"
(cd _build/werror && make check-deb) || { echo "check-deb failed"; exit 1; }

# One closing line over both make check runs.
# A skipped test counts as failed: CI installs everything every test needs.
pass=$(cat _build/werror/tests/*/*.trs _build/asan/tests/*/*.trs | grep -c '^:test-result: PASS')
fail=$(cat _build/werror/tests/*/*.trs _build/asan/tests/*/*.trs | grep -c '^:test-result: \(FAIL\|ERROR\|XPASS\|SKIP\)' || true)
echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
