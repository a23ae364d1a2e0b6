# shellcheck shell=bash
# End-to-end test helpers: a private PostgreSQL (TLS) and lighttpd with
# chat-fcgi workers on free ports in a temporary directory, torn down on
# exit whatever happens, plus curl/jq assertions.
#
# Usage in a test script:
#   . "$(dirname "$0")/lib.sh"
#   e2e_start 4                  # workers
#   req GET /healthz; expect_status 200
#   e2e_finish                   # prints "N passed, N failed", sets exit code
#
# Every answer req() receives is recorded in $STACK_DIR/responses.jsonl and
# checked against openapi.yaml at the end (tests/web/validate-responses.mjs),
# as one more test; the web server's own answers too (openapi.yaml's
# x-server-responses).

set -uo pipefail

E2E_SRCDIR=${CHAT_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
E2E_BUILDDIR=${CHAT_BUILDDIR:-$E2E_SRCDIR}
STACK_SRCDIR=$E2E_SRCDIR
# shellcheck source=../../scripts/stack.sh
. "$E2E_SRCDIR/scripts/stack.sh"

STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/chat-e2e.XXXXXX")
# Tests need speed, not durability across power loss.
STACK_PG_EXTRA="fsync = off
synchronous_commit = on
full_page_writes = off"
E2E_PASSED=0
E2E_FAILED=0
E2E_NAME=$(basename "$0" .sh)
# A rate-limit segment of our own, removed on exit.
export RATE_LIMIT_SHM=/chat-e2e-$$-$RANDOM

e2e_cleanup() {
	stack_lighttpd_stop
	stack_pg_stop
	rm -f "/dev/shm$RATE_LIMIT_SHM"
	if [ "$E2E_FAILED" -gt 0 ] || [ -n "${E2E_KEEP:-}" ]; then
		echo "# logs kept in $STACK_DIR" >&2
		tail -n 30 "$STACK_DIR/lighttpd.log" 2>/dev/null | sed 's/^/# lighttpd: /' >&2
	else
		rm -rf "$STACK_DIR"
	fi
}
trap e2e_cleanup EXIT
trap 'exit 130' INT TERM

# e2e_start WORKERS: database, migrations, lighttpd.  Extra worker settings
# come from the caller's environment (exported before the call).
e2e_start() {
	local workers=${1:-4}
	for tool in curl jq lighttpd openssl; do
		command -v "$tool" >/dev/null || { echo "Bail out! $tool is missing (scripts/install-deps.sh)"; exit 99; }
	done
	stack_pg_init || { echo "Bail out! PostgreSQL did not start"; exit 99; }
	stack_migrate "$E2E_BUILDDIR" >/dev/null || { echo "Bail out! migrations failed"; exit 99; }
	stack_env chat_app
	export SCRYPT_N=${SCRYPT_N:-10} SCRYPT_R=${SCRYPT_R:-8} SCRYPT_P=${SCRYPT_P:-1}
	e2e_lighttpd "$workers"
}

# (Re)start lighttpd with WORKERS workers and the current environment.
e2e_lighttpd() {
	stack_lighttpd_stop
	HTTP_PORT=$(stack_free_port)
	BASE=http://127.0.0.1:$HTTP_PORT
	stack_lighttpd_start "$E2E_BUILDDIR" "$HTTP_PORT" "${1:-4}" || { echo "Bail out! lighttpd did not start"; exit 99; }
	# Workers start lazily; wait until one answers.
	for _ in $(seq 1 50); do
		curl -s -o /dev/null "$BASE/healthz" && return 0
		sleep 0.1
	done
	echo "Bail out! no worker answers"
	exit 99
}

# req METHOD PATH [curl args...]: sets STATUS, BODY and HDRS (a file), and
# records the answer in E2E_RESPONSES.
HDRS=$STACK_DIR/headers
E2E_RESPONSES=$STACK_DIR/responses.jsonl
STATUS= BODY=
req() {
	local method=$1 path=$2
	shift 2
	: >"$HDRS" # no stale headers when nothing answers
	BODY=$(curl -s -S -X "$method" -D "$HDRS" -o - -w '\n%{http_code}' --max-time 20 "$@" "$BASE$path")
	STATUS=${BODY##*$'\n'}
	BODY=${BODY%$'\n'*}
	e2e_record "$method" "$path"
}

# e2e_record METHOD PATH: the answer in STATUS, HDRS and BODY as one JSON
# line: the last header block (after any 100 Continue) as [name, value]
# pairs, the body as text.  Files, not arguments: a page of messages can be
# larger than one argument may be.
e2e_record() {
	printf '%s' "$BODY" >"$STACK_DIR/response.body"
	jq -nc --arg test "$E2E_NAME" --arg method "$1" --arg path "$2" --arg status "$STATUS" \
		--rawfile headers "$HDRS" --rawfile body "$STACK_DIR/response.body" '
		{test: $test, method: $method, path: $path, status: ($status | tonumber? // 0),
		 headers: ($headers | gsub("\r"; "") | split("\n\n") | map(select(startswith("HTTP/"))) | (last // "")
			| split("\n") | .[1:] | map(select(test("^[^:]+:")) | capture("^(?<n>[^:]+):[ \t]*(?<v>.*)$") | [.n, .v])),
		 body: $body}' >>"$E2E_RESPONSES" 2>"$STACK_DIR/record.err" ||
		jq -nc --arg test "$E2E_NAME" --arg method "$1" --arg path "$2" --arg err "$(cat "$STACK_DIR/record.err")" \
			'{test: $test, method: $method, path: $path, record_error: $err}' >>"$E2E_RESPONSES"
}

# e2e_relay: count the "ok - " / "not ok - " lines a Node.js checker
# printed on stdin as this script's tests; pass the rest through.
e2e_relay() {
	local line
	while IFS= read -r line; do
		case $line in
		"ok - "*) pass "${line#ok - }" ;;
		"not ok - "*) fail "${line#not ok - }" ;;
		*) echo "$line" ;;
		esac
	done
}

# e2e_check_responses: one test, every recorded answer conforms to
# openapi.yaml (per-operation counts go to stderr, for the log).  Exits 99
# when node or its modules are missing, like a missing tool.
e2e_check_responses() {
	local out rc
	if [ ! -s "$E2E_RESPONSES" ]; then
		echo "# no answer was recorded: nothing to check against openapi.yaml"
		return 0
	fi
	command -v node >/dev/null || { echo "Bail out! node is missing (scripts/install-deps.sh)"; exit 99; }
	out=$(node "$E2E_SRCDIR/tests/web/validate-responses.mjs" --doc "$E2E_SRCDIR/openapi.yaml" "$E2E_RESPONSES")
	rc=$?
	[ "$rc" = 99 ] && { echo "$out"; exit 99; }
	e2e_relay <<<"$out"
	[ "$rc" = 0 ] || [[ "$out" == *"not ok - "* ]] || fail "validate-responses.mjs exited $rc" "$out"
}

# json METHOD PATH JSON [curl args...]
json() {
	local method=$1 path=$2 data=$3
	shift 3
	req "$method" "$path" -H 'Content-Type: application/json' --data-binary "$data" "$@"
}

header() { # NAME: value of a response header (case-insensitive), CR stripped
	grep -i "^$1:" "$HDRS" | head -n 1 | cut -d: -f2- | sed 's/^ *//; s/\r$//'
}

pass() {
	E2E_PASSED=$((E2E_PASSED + 1))
	echo "ok - $1"
}
fail() {
	E2E_FAILED=$((E2E_FAILED + 1))
	echo "not ok - $1"
	[ -n "${2:-}" ] && echo "#   $2"
	return 0
}

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc" "status=$STATUS body=${BODY:0:300}"; fi
}

is_status() { [ "$STATUS" = "$1" ]; }
is_json() { [ "$(printf '%s' "$BODY" | jq -r "$1" 2>/dev/null)" = "$2" ]; }
is_error() { # STATUS CODE: status and error envelope with that code
	[ "$STATUS" = "$1" ] && is_json .error "$2" && [ "$(printf '%s' "$BODY" | jq -r '.detail|type')" = string ]
}
has_header() { # NAME VALUE
	[ "$(header "$1")" = "$2" ]
}

# wait_workers N: after workers were killed, until N run again and answer.
# lighttpd respawns a dead worker lazily, when a request would go to it
# after its back-off, so keep a little traffic going while waiting.
wait_workers() {
	local ok
	for _ in $(seq 1 40); do
		ok=0
		for _ in 1 2 3 4 5 6 7 8; do
			[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ] && ok=$((ok + 1))
		done
		[ "$ok" = 8 ] && [ "$(stack_worker_pids | wc -l)" = "$1" ] && return 0
		sleep 0.5
	done
	return 1
}

# Sanitizer builds run their workers without the seccomp filter (LeakSanitizer
# needs ptrace at exit; src/sandbox.h): configure defines CHAT_SANITIZERS.
e2e_sanitizer_build() {
	grep -q -- '-DCHAT_SANITIZERS=1' "$E2E_BUILDDIR/Makefile" 2>/dev/null
}

# proc_confinement PID: "Seccomp NoNewPrivs Seccomp_filters" from its
# /proc/PID/status (filters 0 on kernels before 5.9, which lack the line).
proc_confinement() {
	awk '/^Seccomp:/ { s = $2 } /^NoNewPrivs:/ { n = $2 } /^Seccomp_filters:/ { f = $2 }
		END { print s, n, f + 0 }' "/proc/$1/status" 2>/dev/null
}

# confined_as_expected PIDS...: each worker has its own filter on top of
# whatever this shell runs under (a container's profile, systemd's), and
# no_new_privs: "Seccomp: 2", "NoNewPrivs: 1", one filter more than us.
# Prints the odd ones out.
confined_as_expected() {
	local base pid
	base=$(proc_confinement $$)
	for pid; do
		[ "$(proc_confinement "$pid")" = "2 1 $((${base##* } + 1))" ] ||
			echo "$pid: $(proc_confinement "$pid") (this shell: $base)"
	done
}

# unconfined_as_expected PIDS...: no filter of their own: the same seccomp
# state as this shell (Seccomp: 0 outside containers).  Prints the odd ones.
unconfined_as_expected() {
	local base pid
	base=$(proc_confinement $$)
	for pid; do
		[ "$(proc_confinement "$pid" | cut -d' ' -f1,3)" = "$(echo "$base" | cut -d' ' -f1,3)" ] ||
			echo "$pid: $(proc_confinement "$pid") (this shell: $base)"
	done
}

# logged_by_each LOG PATTERN PIDS...: every pid wrote a line matching the
# (extended regex) pattern.  Prints the pids that did not.
logged_by_each() {
	local log=$1 pattern=$2 pid
	shift 2
	for pid; do
		grep -E "$pattern" "$log" | grep -q "\"pid\":$pid," || echo "$pid"
	done
}

# The next request is still served (the worker survived whatever came before).
still_serving() {
	req GET /healthz
	is_status 200 && is_json .status ok
}

e2e_finish() {
	# Stop the workers first: a sanitizer build reports leaks at exit.
	stack_lighttpd_stop
	sleep 0.2
	check "no sanitizer report and no worker crash in the log" \
		bash -c '! grep -E "AddressSanitizer|LeakSanitizer|runtime error:|child signal" "$0"' "$STACK_DIR/lighttpd.log"
	e2e_check_responses
	echo "$E2E_PASSED passed, $E2E_FAILED failed"
	[ "$E2E_FAILED" -eq 0 ]
	exit $?
}
