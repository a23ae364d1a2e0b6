#!/usr/bin/env bash
# Chat throughput (issue 4): requests/s and p99 latency of
#   GET  /chat/conversations/{id}/messages?limit=50
#   POST /chat/conversations/{id}/messages            (no key, and with a
#                                                      fresh Idempotency-Key)
# through lighttpd with 4 workers (wrk), beside pgbench running the very
# statements the workers prepare (their text comes from src/chat.c through
# bench/chat_sql.c) with the same parameters, as prepared statements, at the
# same concurrency, against the same PostgreSQL over the same TLS.  The
# ratio says what HTTP, FastCGI, JSON and the worker cost on top of the SQL.
# Prints figures; asserts nothing.  Needs a build (CHAT_BUILDDIR, default
# _build) and wrk (scripts/install-deps.sh, or apt-get install wrk).
#   bench/bench_chat.sh [SECONDS] [CONNECTIONS]
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export CHAT_SRCDIR=$top CHAT_BUILDDIR=${CHAT_BUILDDIR:-$top/_build}
secs=${1:-10}
conns=${2:-4}
workers=4
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
[ -x "$CHAT_BUILDDIR/chat-fcgi" ] || { echo "no build in $CHAT_BUILDDIR (set CHAT_BUILDDIR)"; exit 1; }
. "$top/tests/e2e/lib.sh"
# Durable commits, as in production (the tests turn fsync off).
# shellcheck disable=SC2034 # read by scripts/stack.sh
STACK_PG_EXTRA="synchronous_commit = on"

# The statements' text, from the same table the workers prepare.
# shellcheck disable=SC2046
cc -I"$top/src" $(pkg-config --cflags libpq json-c) -o "$STACK_DIR/chat_sql" \
	"$top/bench/chat_sql.c" "$CHAT_BUILDDIR/libchat.a" \
	$(pkg-config --libs libpq json-c libcrypto) -lfcgi -lscrypt ||
	{ echo "cannot build bench/chat_sql.c"; exit 1; }

export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
e2e_start "$workers"

# --- data: two users, one conversation with 10 000 messages -----------------
json POST /auth/register '{"email":"alice@x.io","password":"bench password","display_name":"Alice"}'
alice_id=$(printf '%s' "$BODY" | jq -r .id)
json POST /auth/register '{"email":"bob@x.io","password":"bench password","display_name":"Bob"}'
json POST /auth/login '{"email":"alice@x.io","password":"bench password"}'
token=$(printf '%s' "$BODY" | jq -r .access_token)
jti=$(printf '%s' "$token" | cut -d. -f2 | tr -- '-_' '+/' |
	{ s=$(cat); while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done; printf '%s' "$s"; } |
	openssl base64 -A -d | jq -r .jti)
json POST /chat/conversations '{"title":"bench","members":["bob@x.io"]}' -H "Authorization: Bearer $token"
cid=$(printf '%s' "$BODY" | jq -r .id)
stack_psql chat -q -c "INSERT INTO chat.messages (conversation_id, sender_id, body)
	SELECT $cid, $alice_id, 'seeded message ' || g FROM generate_series(1, 10000) g" >/dev/null
stack_psql chat -q -c "VACUUM ANALYZE" >/dev/null

# --- helpers ---------------------------------------------------------------------
# wrk's latency figures carry units (us, ms, s): in milliseconds.
to_ms() { awk '{ v = $1; if (v ~ /us$/) v = v / 1000; else if (v ~ /ms$/) v = v + 0; else if (v ~ /s$/) v = v * 1000; printf "%.2f", v }'; }
# The workers' own view: p99 of duration_ms in their log lines of the run
# (request in to response out), which leaves out lighttpd, wrk and the
# scheduler of a busy machine.
run_wrk() { # ROUTE wrk-args...: sets RPS, P99, ERRS, WP99
	local out route=$1 from
	shift
	from=$(wc -l <"$STACK_DIR/lighttpd.log")
	out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$@")
	WP99=$(tail -n +"$((from + 1))" "$STACK_DIR/lighttpd.log" | grep "\"route\":\"$route\"" |
		sed -E 's/.*"duration_ms":([0-9.]+).*/\1/' | sort -n |
		awk '{ a[NR] = $1 } END { if (NR) printf "%.2f", a[int(NR * 0.99 + 0.5)] }')
	RPS=$(echo "$out" | awk '/Requests\/sec/ { printf "%.0f", $2 }')
	P99=$(echo "$out" | awk '$1 == "99%" { print $2 }' | to_ms)
	ERRS=$(echo "$out" | awk '/Non-2xx/ { print $NF }')
	ERRS=${ERRS:-0}
}
# pgbench against the database as the worker role, over TLS (verify-full),
# with the workers' search_path.  pgbench reads ":name" as a variable even
# inside string literals, so the ':' separators of the timestamp format
# become '.' (the same work for to_char) and $N become :pN.
run_pgbench() { # SCRIPT-TEXT pgbench-args...: sets TPS, PGP99
	local script=$STACK_DIR/pgbench.sql sqltext=$1 out
	shift
	printf '%s;\n' "$(printf '%s' "$sqltext" | sed -e 's/HH24:MI:SS/HH24.MI.SS/g' -e 's/\$\([0-9]\)/:p\1/g')" >"$script"
	rm -f "$STACK_DIR"/pgb_log*
	out=$(cd "$STACK_DIR" && PGHOST=localhost PGPORT=$PG_PORT PGDATABASE=chat PGUSER=chat_app \
		PGPASSWORD=$(cat "$STACK_DIR/secrets/pg_app_password") PGSSLMODE=verify-full \
		PGSSLROOTCERT=$STACK_DIR/pg/ca.crt PGOPTIONS="-c search_path=chat" \
		"$PGBIN/pgbench" -n -M prepared -c "$conns" -j 2 -T "$secs" -l --log-prefix=pgb_log \
		-f "$script" "$@" 2>&1)
	TPS=$(echo "$out" | awk '/^tps = / { printf "%.0f", $3; exit }')
	PGFAIL=$(echo "$out" | awk '/number of failed transactions/ { print $5 }')
	PGP99=$(cat "$STACK_DIR"/pgb_log* | awk '{ print $3 }' | sort -n |
		awk '{ a[NR] = $1 } END { if (NR) printf "%.2f", a[int(NR * 0.99 + 0.5)] / 1000 }')
	[ -n "$TPS" ] || echo "$out" | tail -n 5 | sed 's/^/# pgbench: /'
}
report() { # LABEL
	printf '%-36s %10s %9s %10s %10s %9s %8s\n' "$1" "$RPS" "$P99" "$WP99" "$TPS" "$PGP99" \
		"$(awk -v a="$RPS" -v b="$TPS" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
	[ "$ERRS" = 0 ] || echo "#   wrk: $ERRS non-2xx answers"
	[ "${PGFAIL:-0}" = 0 ] || echo "#   pgbench: $PGFAIL failed transactions"
}
params=(-D "p1=$jti" -D "p2=$alice_id" -D "p3=$cid")

echo "chat bench: lighttpd with $workers workers, wrk -t2 -c$conns -d${secs}s; pgbench -M prepared -c$conns -j2 -T$secs"
echo "machine: $(nproc) cores; PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }') over TLS, fsync on; 10 000 seeded messages"
printf '%-36s %10s %9s %10s %10s %9s %8s\n' "" "HTTP r/s" "p99 ms" "worker p99" "SQL tx/s" "p99 ms" "ratio"

run_wrk chat_message_list -H "Authorization: Bearer $token" "$BASE/chat/conversations/$cid/messages?limit=50"
run_pgbench "$("$STACK_DIR/chat_sql" chat_messages_before)" "${params[@]}" \
	-D p4=9223372036854775807 -D p5=50
report "GET messages?limit=50"

export CHAT_TOKEN=$token CHAT_KEYED=0
run_wrk chat_message_post -s "$top/bench/chat_post.lua" "$BASE/chat/conversations/$cid/messages"
run_pgbench "$("$STACK_DIR/chat_sql" chat_message_post)" "${params[@]}" -D "p4=bench message"
report "POST messages"

CHAT_KEYED=1
run_wrk chat_message_post -s "$top/bench/chat_post.lua" "$BASE/chat/conversations/$cid/messages"
run_pgbench "\\set p5 random(1, 1000000000000)
$("$STACK_DIR/chat_sql" chat_message_post_keyed)" "${params[@]}" -D "p4=bench message"
report "POST messages with Idempotency-Key"

echo "p99 ms: as wrk sees it; worker p99: duration_ms in the workers' log lines; SQL: pgbench's per-transaction log"
echo "ratio = HTTP requests/s through lighttpd + workers / pgbench transactions/s of the same statement"
E2E_PASSED=1
e2e_finish >/dev/null
