#!/usr/bin/env bash
# Record fuzz seeds from the end-to-end tests' real requests.
#
# Runs end-to-end suites with tests/fuzz/seed_recorder in place of
# chat-fcgi: every request lighttpd hands a worker is served as usual and
# also written, in the fuzz targets' input formats, under OUT/request,
# OUT/token, OUT/netaddr and OUT/json (see seed_recorder.c).  Then shrink
# them into the committed seeds with libFuzzer's merge (docs/SECURITY.md):
#   tests/fuzz/fuzz_request -merge=1 tests/fuzz/seeds/request OUT/request
#
#   tests/fuzz/record-seeds.sh BUILDDIR OUT [e2e test names...]
# BUILDDIR is a normal (gcc) build; default tests: foundation auth chat
# ratelimit metrics.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)
out=$(mkdir -p "$2" && cd "$2" && pwd)
shift 2
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(foundation auth chat ratelimit metrics)

make -C "$build" -s chat-admin tests/fuzz/seed_recorder
mkdir -p "$out"/{request,token,netaddr,json}
fake=$(mktemp -d "${TMPDIR:-/tmp}/chat-seeds.XXXXXX")
trap 'rm -rf "$fake"' EXIT
chmod 755 "$fake"
ln -s "$build/chat-admin" "$fake/chat-admin"
# lighttpd passes the workers only the variables lighttpd.conf lists; the
# wrapper adds ours.  argv[0] stays "chat-fcgi" for the tests' pgrep.
cat >"$fake/chat-fcgi" <<WRAP
#!/usr/bin/env bash
export CHAT_SEED_DIR=$out
exec -a chat-fcgi $build/tests/fuzz/seed_recorder "\$@"
WRAP
chmod 755 "$fake/chat-fcgi"
for t in "${tests[@]}"; do
	echo "== recording tests/e2e/test_$t.sh"
	CHAT_BUILDDIR=$fake CHAT_SRCDIR=$top bash "$top/tests/e2e/test_$t.sh" | tail -n 1
done
for k in request token netaddr json; do
	echo "$k: $(find "$out/$k" -type f | wc -l) inputs"
done
