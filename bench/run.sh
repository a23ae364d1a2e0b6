#!/usr/bin/env bash
# The benchmark suite (issue 6): lighttpd with 4 workers (rate limits off,
# the default scrypt parameters 2^15/8/3), PostgreSQL over TLS with fsync
# on, one conversation of 10 000 seeded messages among 2 000 of 10; wrk on
#   GET  /healthz
#   GET  /chat/conversations/{id}/messages?limit=50
#   POST /chat/conversations/{id}/messages
#   POST /auth/login                         (bench/login.lua)
# and pgbench (-M prepared) on the very statements the GET and POST prepare
# (bench/chat_sql.c prints them from src/chat.c), twice: with as many
# clients as wrk has connections, and with 4 clients, the number of
# database connections the 4 workers hold.  Prints one table (requests/s,
# p50/p99 latency, pgbench's transactions/s and the ratio) and the workers'
# memory (RSS, PSS, private from /proc/PID/smaps_rollup, min-max over the
# workers, and the largest VmHWM, which shows a password hash), then
# GET /healthz and GET messages again with the workers' seccomp filter off
# and on (WORKER_SECCOMP, lighttpd restarted for each; BENCH_SECCOMP_ROUNDS
# rounds, default 2) and the workers' CPU per request of each.  Prints
# figures; asserts nothing.  Needs a build (CHAT_BUILDDIR, default _build)
# and wrk.  Then POST messages and login with the rate limits on, in host
# and in cluster scope (RATE_LIMIT_SCOPE).  See docs/PERFORMANCE.md.
#   bench/run.sh [SECONDS] [CONNECTIONS]        (default 10 s, 32 connections)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
conns=${2:-32}
workers=4
db_conns=$workers # one PostgreSQL connection per worker
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
bench_chat_sql

export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
export SCRYPT_N=15 SCRYPT_R=8 SCRYPT_P=3
e2e_start "$workers"
bench_seed
params=(-D "p1=$jti" -D "p2=$alice_id" -D "p3=$cid")

echo "bench/run.sh: lighttpd with $workers workers; wrk -t2 -c$conns -d${secs}s --timeout 30s;" \
	"pgbench -M prepared -T$secs with -c$conns and -c$db_conns"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo);" \
	"PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }') over TLS (verify-full), fsync on," \
	"synchronous_commit on; scrypt 2^$SCRYPT_N/$SCRYPT_R/$SCRYPT_P; 10 000 seeded messages in one conversation, 2 000 conversations of 10 around it"

fmt='%-26s %9s %8s %8s %8s %10s %6s %10s %6s\n'
# shellcheck disable=SC2059
printf "$fmt" route "req/s" "p50 ms" "p99 ms" "wkr p99" "SQL c$conns" ratio "SQL c$db_conns" ratio
notes=() cpu_rows=()
row() { # LABEL: one line from run_wrk's figures and, if any, both pgbench runs
	# shellcheck disable=SC2059
	printf "$fmt" "$1" "$RPS" "$P50" "$P99" "${WP99:--}" "${TPS_C:--}" "$(ratio "$RPS" "${TPS_C:-0}")" \
		"${TPS_D:--}" "$(ratio "$RPS" "${TPS_D:-0}")"
	[ "$ERRS" = 0 ] || notes+=("$1: wrk saw $ERRS non-2xx answers")
	[ "$TIMEOUTS" = 0 ] || notes+=("$1: wrk saw $TIMEOUTS timeouts (30 s)")
	[ -z "${PGLAT:-}" ] || notes+=("$1: pgbench latency $PGLAT")
	cpu_rows+=("$1 $CPU")
	TPS_C='' TPS_D='' PGLAT=''
}
both_pgbench() { # SCRIPT-TEXT pgbench-args...: sets TPS_C, TPS_D, PGLAT
	local fails=
	PGB_CONNS=$conns run_pgbench "$@"
	TPS_C=$TPS PGLAT="-c$conns p50 $PGP50 ms p99 $PGP99 ms"
	[ "${PGFAIL:-0}" = 0 ] || fails=" ($PGFAIL failed)"
	PGB_CONNS=$db_conns run_pgbench "$@"
	TPS_D=$TPS PGLAT="$PGLAT$fails; -c$db_conns p50 $PGP50 ms p99 $PGP99 ms"
	[ "${PGFAIL:-0}" = 0 ] || PGLAT="$PGLAT ($PGFAIL failed)"
}

TPS_C='' TPS_D='' PGLAT=''
run_wrk healthz "$BASE/healthz"
row "GET /healthz"

run_wrk chat_message_list -H "Authorization: Bearer $token" "$BASE/chat/conversations/$cid/messages?limit=50"
both_pgbench "$("$STACK_DIR/chat_sql" chat_messages_before)" "${params[@]}" \
	-D p4=9223372036854775807 -D p5=50
row "GET messages?limit=50"

export CHAT_TOKEN=$token CHAT_KEYED=0
run_wrk chat_message_post -s "$top/bench/chat_post.lua" "$BASE/chat/conversations/$cid/messages"
both_pgbench "$("$STACK_DIR/chat_sql" chat_message_post)" "${params[@]}" -D "p4=bench message"
row "POST messages"

mem_before_login=$(bench_memory "memory before logins:")

export LOGIN_BODY='{"email":"alice@x.io","password":"bench password"}'
run_wrk auth_login -s "$top/bench/login.lua" "$BASE/auth/login"
row "POST /auth/login"

echo "p50/p99 ms: as wrk sees them; wkr p99: duration_ms in the workers' log lines;"
echo "SQL cN: pgbench transactions/s of the same statement with N clients; ratio = req/s / that"
for n in "${notes[@]}"; do echo "#   $n"; done
echo "CPU per request during the wrk run, microseconds (from /proc/PID/stat; 'rest' is mostly wrk):"
printf '%-26s %8s %8s %8s %8s %8s\n' route worker lighttpd postgres rest "busy"
for r in "${cpu_rows[@]}"; do
	# shellcheck disable=SC2086 # the label ends before the five figures
	set -- $r
	label=${r% * * * * *}
	printf '%-26s %8s %8s %8s %8s %8s\n' "$label" "${@: -5}"
done
echo "$mem_before_login"
bench_memory "memory after the run:"

# The rate-limit scope (RATE_LIMIT_SCOPE, docs/RATELIMIT.md): POST messages
# and POST /auth/login with every limit on but never reached (1000000/minute:
# a burst of a million, then one a millisecond), in host scope (the segment
# only) and in cluster scope (the segment, then one rl_check statement in
# PostgreSQL per limited class: one for a message, two for a login, address
# and email), lighttpd restarted for each, a short unmeasured run first,
# in BENCH_SCOPE_ROUNDS rounds (default 2: host, cluster, host, cluster, so
# that a drift of the machine does not favour one side).  The rows above
# had the limits off.
echo "rate-limit scope, limits on and never reached; CPU per request in microseconds:"
rfmt='%-26s %-8s %9s %8s %8s %8s %8s\n'
# shellcheck disable=SC2059
printf "$rfmt" route scope "req/s" "p50 ms" "p99 ms" worker postgres
for scope in $(for _ in $(seq 1 "${BENCH_SCOPE_ROUNDS:-2}"); do echo host cluster; done); do
	export RATE_LIMIT_SCOPE=$scope RATE_LIMIT_AUTH=1000000/minute RATE_LIMIT_CHAT=1000000/minute
	e2e_lighttpd "$workers"
	export CHAT_TOKEN=$token CHAT_KEYED=0
	wrk -t2 -c"$conns" -d1s -s "$top/bench/chat_post.lua" "$BASE/chat/conversations/$cid/messages" >/dev/null
	run_wrk chat_message_post -s "$top/bench/chat_post.lua" "$BASE/chat/conversations/$cid/messages"
	# shellcheck disable=SC2086 # five figures
	set -- $CPU
	# shellcheck disable=SC2059
	printf "$rfmt" "POST messages" "$scope" "$RPS" "$P50" "$P99" "$1" "$3"
	[ "$ERRS" = 0 ] || echo "#   POST messages, $scope scope: wrk saw $ERRS non-2xx answers"
	run_wrk auth_login -s "$top/bench/login.lua" "$BASE/auth/login"
	# shellcheck disable=SC2086 # five figures
	set -- $CPU
	# shellcheck disable=SC2059
	printf "$rfmt" "POST /auth/login" "$scope" "$RPS" "$P50" "$P99" "$1" "$3"
	[ "$ERRS" = 0 ] || echo "#   POST /auth/login, $scope scope: wrk saw $ERRS non-2xx answers"
done
echo "#   rows in chat.rate_limits after the cluster runs: $(stack_psql chat -At -c "SELECT string_agg(class || ':' || n, ' ') FROM (SELECT class, count(*) n FROM chat.rate_limits GROUP BY class ORDER BY class) c")"
export RATE_LIMIT_AUTH=off RATE_LIMIT_CHAT=off
unset RATE_LIMIT_SCOPE

# The workers' seccomp filter (src/sandbox.h): GET /healthz and GET messages
# with WORKER_SECCOMP=off and on, lighttpd restarted for each, in
# BENCH_SECCOMP_ROUNDS rounds (default 2: off, on, off, on, so that a drift
# of the machine does not favour one side).  The runs above have the filter
# on: the default.  A short unmeasured wrk run first lets each new worker
# connect and prepare.  What to compare is the workers' CPU per request.
echo "seccomp filter off/on: lighttpd restarted for each; CPU per request in microseconds:"
sfmt='%-26s %-7s %9s %8s %8s %8s %8s\n'
# shellcheck disable=SC2059
printf "$sfmt" route filter "req/s" "p50 ms" "p99 ms" worker lighttpd
for _ in $(seq 1 "${BENCH_SECCOMP_ROUNDS:-2}"); do
	for mode in off on; do
		export WORKER_SECCOMP=$mode
		e2e_lighttpd "$workers"
		states=$(for pid in $(stack_worker_pids); do proc_confinement "$pid" | cut -d' ' -f1; done |
			sort | uniq -c | awk '{ printf "%s%d x Seccomp: %s", (NR > 1 ? ", " : ""), $1, $2 }')
		for r in healthz messages; do
			if [ "$r" = healthz ]; then
				set -- healthz "$BASE/healthz"
				label="GET /healthz"
			else
				set -- chat_message_list -H "Authorization: Bearer $token" \
					"$BASE/chat/conversations/$cid/messages?limit=50"
				label="GET messages?limit=50"
			fi
			wrk -t2 -c"$conns" -d1s "${@:2}" >/dev/null
			run_wrk "$@"
			# shellcheck disable=SC2086 # five figures
			set -- $CPU
			# shellcheck disable=SC2059
			printf "$sfmt" "$label" "$mode" "$RPS" "$P50" "$P99" "$1" "$2"
			[ "$ERRS" = 0 ] || echo "#   $label, filter $mode: wrk saw $ERRS non-2xx answers"
		done
		echo "#   the workers of this run: $states"
	done
done
unset WORKER_SECCOMP
# The floor: Debian's libpq alone after one TLS connection, with the
# workers' GNUTLS_NO_IMPLICIT_INIT (lighttpd.conf) and connection keywords.
# shellcheck disable=SC2046
if cc -O2 -o "$STACK_DIR/rss_floor" "$top/bench/rss_floor.c" $(pkg-config --cflags --libs libpq); then
	GNUTLS_NO_IMPLICIT_INIT=1 PGPASSWORD=$(cat "$STACK_DIR/secrets/pg_app_password") \
		"$STACK_DIR/rss_floor" "host=localhost port=$PG_PORT dbname=chat user=chat_app
		sslmode=verify-full sslrootcert=$STACK_DIR/pg/ca.crt gssencmode=disable" |
		awk '{ printf "%-28s libpq alone, one TLS connection and SELECT 1: RSS %.1f MiB, PSS %.1f MiB, private %.1f MiB\n",
			"memory floor:", $1 / 1024, $2 / 1024, $3 / 1024 }'
fi
# shellcheck disable=SC2034 # read by e2e_finish
E2E_PASSED=1
e2e_finish >/dev/null
