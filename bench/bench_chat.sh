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
secs=${1:-10}
conns=${2:-4}
workers=4
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
bench_chat_sql

export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
e2e_start "$workers"
# Two users, one conversation with 10 000 messages among 2 000 of 10.
bench_seed

params=(-D "p1=$jti" -D "p2=$alice_id" -D "p3=$cid")

echo "chat bench: lighttpd with $workers workers, wrk -t2 -c$conns -d${secs}s; pgbench -M prepared -c$conns -j2 -T$secs"
echo "machine: $(nproc) cores; PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }') over TLS, fsync on; 10 000 seeded messages in one conversation, 2 000 conversations of 10 around it"
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
# shellcheck disable=SC2034 # read by e2e_finish
E2E_PASSED=1
e2e_finish >/dev/null
