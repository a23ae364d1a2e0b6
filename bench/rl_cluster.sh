#!/usr/bin/env bash
# The cluster rate-limit tier (RATE_LIMIT_SCOPE=cluster, sql/004) with 1 M
# distinct keys: the table's size, the cost of the very statements the
# workers prepare (rl_check, rl_sweep; text from src/limit_cluster.c via
# bench/chat_sql.c) under pgbench -M prepared over TLS as the worker role,
# and the cost of sweeping idle rows.  PostgreSQL with fsync on, as in
# bench/run.sh.  Prints figures; asserts nothing.  See docs/RATELIMIT.md.
#   bench/rl_cluster.sh [SECONDS] [CLIENTS]     (default 10 s, 4 clients)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
conns=${2:-4}
keys=1000000
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
bench_chat_sql
stack_pg_init || exit 1
stack_migrate "$CHAT_BUILDDIR" >/dev/null || exit 1

ms() { awk '/^Time: / { v = $2 } END { printf "%.0f", v }'; } # the last statement's
size() {
	stack_psql chat -At -c "SELECT pg_size_pretty(pg_relation_size('chat.rate_limits')) || ' heap + ' ||
		pg_size_pretty(pg_indexes_size('chat.rate_limits')) || ' index = ' ||
		pg_size_pretty(pg_total_relation_size('chat.rate_limits')) || ' (' ||
		round(pg_total_relation_size('chat.rate_limits')::numeric / greatest(count(*), 1)) || ' bytes a row, ' ||
		count(*) || ' rows)' FROM chat.rate_limits"
}
now_ms="floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
echo "bench/rl_cluster.sh: $keys keys; pgbench -M prepared -T$secs -c$conns; PostgreSQL" \
	"$("$PGBIN/postgres" --version | awk '{ print $3 }') over TLS, fsync on; $(nproc) cores"

# 1 M keys, all still limited (TAT up to a minute ahead), spread over the
# four classes, keys as the workers store them: 16 bytes.
t=$(stack_psql chat -c '\timing on' -c "INSERT INTO chat.rate_limits (class, key, tat)
	SELECT g % 4, decode(md5('k' || g), 'hex'), $now_ms + (g % 60000)
	FROM generate_series(1, $keys) g" | ms)
stack_psql chat -c "VACUUM ANALYZE chat.rate_limits" >/dev/null
echo "fill:                 $keys rows in $t ms; $(size)"

check_sql=$("$STACK_DIR/chat_sql" rl_check)
# Random keys among the million (class 0, auth at 5/minute: T 12 s, tau
# 48 s): each request finds its row and is admitted (an UPDATE).
PGB_CONNS=$conns run_pgbench "\\set k random(1, $((keys / 4)))
${check_sql//\$2::bytea/decode(md5(\'k\' || (4 * :k)), \'hex\')}" -D p1=0 -D p3=12000 -D p4=48000
echo "rl_check, random key: $TPS tps, p50 $PGP50 ms, p99 $PGP99 ms (an UPDATE of an existing row each)"
echo "after it:             $(size); HOT updates $(stack_psql chat -At -c "SELECT n_tup_hot_upd || ' of ' || n_tup_upd FROM pg_stat_user_tables WHERE relname = 'rate_limits'")"
# New keys only: each request INSERTs a row.
PGB_CONNS=$conns run_pgbench "\\set k random(1, 1000000000)
${check_sql//\$2::bytea/decode(md5(\'new\' || :k), \'hex\')}" -D p1=1 -D p3=12000 -D p4=48000
echo "rl_check, new keys:   $TPS tps, p50 $PGP50 ms, p99 $PGP99 ms (an INSERT each); $(size)"
# One hot key over its limit: every request refused (no write).
PGB_CONNS=$conns run_pgbench "${check_sql//\$2::bytea/decode(md5(\'hot\'), \'hex\')}" -D p1=2 -D p3=12000 -D p4=48000
echo "rl_check, refused:    $TPS tps, p50 $PGP50 ms, p99 $PGP99 ms (one key over its limit: no write)"

# Sweeps: the turn not due (every worker's offer but one: a probe), then
# one batch of idle rows, then every idle row.
sweep_sql=$("$STACK_DIR/chat_sql" rl_sweep)
stack_psql chat -c "INSERT INTO chat.rate_limits VALUES (-1, '\\x00000000000000000000000000000000', $now_ms + 3600000)
	ON CONFLICT (class, key) DO UPDATE SET tat = excluded.tat" >/dev/null
PGB_CONNS=$conns run_pgbench "$sweep_sql" -D p1=10000 -D p2=660000 -D p3=20000
echo "rl_sweep, not due:    $TPS tps, p50 $PGP50 ms, p99 $PGP99 ms (the turn is another worker's: no scan)"
stack_psql chat -c "UPDATE chat.rate_limits SET tat = 0 WHERE class >= 0" -c "VACUUM chat.rate_limits" >/dev/null
stack_psql chat -c "UPDATE chat.rate_limits SET tat = 0 WHERE class = -1" >/dev/null
psql_sweep=${sweep_sql//\$1::bigint/10000}
psql_sweep=${psql_sweep//\$2::bigint/660000}
psql_sweep=${psql_sweep//\$3::bigint/20000}
t=$(stack_psql chat -c '\timing on' -c "SET search_path = chat" -c "$psql_sweep" | ms)
echo "rl_sweep, one batch:  20000 idle rows deleted in $t ms"
t=$(stack_psql chat -c '\timing on' -c "DELETE FROM chat.rate_limits WHERE class >= 0 AND tat < $now_ms - 660000" | ms)
n=$(stack_psql chat -At -c "SELECT count(*) FROM chat.rate_limits WHERE class >= 0")
echo "DELETE of the rest:   in $t ms ($n rows left); $(size)"
stack_psql chat -c "VACUUM chat.rate_limits" >/dev/null
echo "after VACUUM:         $(size)"
# shellcheck disable=SC2034 # read by e2e_finish
E2E_PASSED=1
e2e_finish >/dev/null 2>&1
