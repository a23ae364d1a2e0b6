#!/usr/bin/env bash
# Database connections against worker count, and max_connections reached
# (issue 13, point 4; figures in docs/DEPLOY.md, "Database connections").
#   1. For N workers (one lighttpd; K hosts of N workers each are K·N
#      workers to PostgreSQL, nothing else differs), load enough to wake
#      every worker, then count the workers' backends in pg_stat_activity
#      and their memory (/proc/PID/smaps_rollup: Rss, Pss, private).
#   2. max_connections 12 (9 slots once superuser_reserved_connections'
#      3 are set aside) under 12 workers: the answers and the log lines.
# Usage: CHAT_BUILDDIR=_build/dev bench/connections.sh [N...]   (as root for
# the memory figures: the backends belong to the postgres user)
top=$(cd "$(dirname "$0")/.." && pwd)
export CHAT_SRCDIR=$top CHAT_BUILDDIR=${CHAT_BUILDDIR:-$top/_build}
# shellcheck source=tests/e2e/lib.sh
. "$top/tests/e2e/lib.sh"
export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
counts=${*:-4 8 16 24}

e2e_start 2
json POST /auth/register '{"email":"c@x.io","password":"connections pass","display_name":"C"}'
json POST /auth/login '{"email":"c@x.io","password":"connections pass"}'
token=$(printf '%s' "$BODY" | jq -r .access_token)
json POST /chat/conversations '{"title":"c","members":[]}' -H "Authorization: Bearer $token"
cid=$(printf '%s' "$BODY" | jq -r .id)

# load CONCURRENCY REQUESTS: POST messages, one status per line on stdout.
load() {
	seq 1 "$2" | xargs -P "$1" -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 20 \
		-H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
		--data-binary '{"body":"connections {}"}' "$BASE/chat/conversations/$cid/messages"
}
backends() {
	stack_psql postgres -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'chat-fcgi'"
}
# Mean Rss, Pss and private (clean + dirty) memory of the given pids, in kB.
memory() {
	for p in "$@"; do cat "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '
		/^Rss:/ { r += $2; n++ } /^Pss:/ { s += $2 } /^Private_(Clean|Dirty):/ { v += $2 }
		END { if (n) printf "%d %d %d", r / n, s / n, v / n; else printf "- - -" }'
}

echo "| workers | backends | mean Rss kB | mean Pss kB | mean private kB | statuses |"
echo "|---|---|---|---|---|---|"
for n in $counts; do
	e2e_lighttpd "$n"
	# A lock holds every send for 2 s, so lighttpd has to hand the
	# requests to every worker (fast requests may leave some idle).
	stack_psql chat -q -c "BEGIN; LOCK TABLE chat.conversations IN ACCESS EXCLUSIVE MODE;
		SELECT pg_sleep(2); COMMIT;" >/dev/null 2>&1 &
	locker=$!
	sleep 0.3
	st=$(load $((n * 2)) $((n * 4)) | sort | uniq -c | awk '{ printf "%s×%s ", $2, $1 }')
	wait "$locker"
	sleep 0.5
	mapfile -t pids < <(backends)
	echo "| $n | ${#pids[@]} | $(memory "${pids[@]}" | sed 's/ / | /g') | $st|"
done

echo
echo "max_connections = 12 (superuser_reserved_connections = 3), 12 workers:"
stack_lighttpd_stop
stack_psql postgres -c "ALTER SYSTEM SET max_connections = 12" >/dev/null
stack_pg_stop && stack_pg_start || exit 1
log_lines=$(wc -l <"$STACK_DIR/lighttpd.log" 2>/dev/null || echo 0)
e2e_lighttpd 12
start=$(date +%s%N)
st=$(load 24 480 | sort | uniq -c | awk '{ printf "%s×%s ", $2, $1 }')
ms=$((($(date +%s%N) - start) / 1000000))
mapfile -t pids < <(backends)
echo "  answers: $st(480 requests, 24 at a time, in $ms ms); worker backends: ${#pids[@]}"
echo "  worker log lines (db_*), counted:"
tail -n +$((log_lines + 1)) "$STACK_DIR/lighttpd.log" | grep '"event":"db_' |
	sed -E 's/.*("event":"db_[a-z]*","msg":"([^"\\]|\\.)*).*/\1/' |
	sed -E 's/[0-9]{4,5}/N/g; s/retry in [0-9]+ ms/retry in N ms/' | sort | uniq -c | sort -rn | sed 's/^/    /'
e2e_finish >/dev/null 2>&1
