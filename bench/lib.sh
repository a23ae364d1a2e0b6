# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # sets and reads the calling script's variables
# Shared helpers of the HTTP benchmarks (bench/bench_chat.sh, bench/run.sh):
# the stack (tests/e2e/lib.sh with durable commits), the seeded
# conversation, wrk and pgbench runs reduced to a few figures, the table row
# and the workers' memory.  Source it after setting top (the source tree);
# the caller sets secs and conns (wrk's and pgbench's duration and
# concurrency) before calling run_wrk / run_pgbench.

export CHAT_SRCDIR=${top:?set top before sourcing bench/lib.sh} CHAT_BUILDDIR=${CHAT_BUILDDIR:-$top/_build}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
[ -x "$CHAT_BUILDDIR/chat-fcgi" ] || { echo "no build in $CHAT_BUILDDIR (set CHAT_BUILDDIR)"; exit 1; }
# shellcheck source=tests/e2e/lib.sh
. "$top/tests/e2e/lib.sh"
# Durable commits, as in production (the tests turn fsync off).
# shellcheck disable=SC2034 # read by scripts/stack.sh
STACK_PG_EXTRA="synchronous_commit = on"

# bench_chat_sql: build bench/chat_sql.c into $STACK_DIR/chat_sql, which
# prints the statements' text from the same table the workers prepare.
bench_chat_sql() {
	# shellcheck disable=SC2046
	cc -I"$top/src" $(pkg-config --cflags libpq json-c) -o "$STACK_DIR/chat_sql" \
		"$top/bench/chat_sql.c" "$CHAT_BUILDDIR/libchat.a" \
		$(pkg-config --libs libpq json-c libcrypto) -lfcgi -lscrypt ||
		{ echo "cannot build bench/chat_sql.c"; exit 1; }
}

# bench_seed: two users (alice, bob; password "bench password"), alice's
# token and its jti, one conversation with 10 000 messages among 2 000 of
# 10.  Sets alice_id, bob_id, token, jti, cid.  Needs the stack up (e2e_start).
bench_seed() {
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
	stack_psql chat -q -c "INSERT INTO chat.messages (conversation_id, sender_id, body, seq)
		SELECT $cid, $alice_id, 'seeded message ' || g, g FROM generate_series(1, 10000) g;
		UPDATE chat.conversations SET message_count = 10000,
			last_message_id = (SELECT max(id) FROM chat.messages WHERE conversation_id = $cid) WHERE id = $cid" >/dev/null
	# Around it, 2 000 of Bob's conversations of 10 messages each: a
	# database holds many conversations, and PostgreSQL's plan cache judges
	# its generic plan by the average one (docs/PERFORMANCE.md, "Plans").
	bob_id=$(stack_psql chat -At -c "SELECT id FROM chat.users WHERE email = 'bob@x.io'")
	stack_psql chat -q -c "INSERT INTO chat.conversations (title, owner_id)
			SELECT 'background ' || g, $bob_id FROM generate_series(1, 2000) g;
		INSERT INTO chat.members (conversation_id, user_id, role)
			SELECT id, owner_id, 'owner' FROM chat.conversations WHERE title LIKE 'background %';
		INSERT INTO chat.messages (conversation_id, sender_id, body, seq)
			SELECT c.id, c.owner_id, 'background message ' || g, g
			FROM chat.conversations c, generate_series(1, 10) g WHERE c.title LIKE 'background %';
		UPDATE chat.conversations c SET message_count = 10,
			last_message_id = (SELECT max(id) FROM chat.messages m WHERE m.conversation_id = c.id)
			WHERE c.title LIKE 'background %'" >/dev/null
	stack_psql chat -q -c "VACUUM ANALYZE" >/dev/null
}

# wrk's latency figures carry units (us, ms, s): in milliseconds.
to_ms() { awk '{ v = $1; if (v ~ /us$/) v = v / 1000; else if (v ~ /ms$/) v = v + 0; else if (v ~ /s$/) v = v * 1000; printf "%.2f", v }'; }
# CPU time so far, in clock ticks: the workers, lighttpd, PostgreSQL
# (postmaster and its children), the whole machine busy, and idle.
bench_cpu() {
	local pm pid
	pm=$(head -n 1 "$STACK_DIR/pg/data/postmaster.pid" 2>/dev/null)
	{
		for pid in $(stack_worker_pids); do echo "w $pid"; done
		echo "l $LIGHTTPD_PID"
		[ -z "$pm" ] || for pid in "$pm" $(pgrep -P "$pm"); do echo "p $pid"; done
	} | while read -r k pid; do
		# comm (field 2) has no spaces for these processes
		awk -v k="$k" '{ print k, $14 + $15 }' "/proc/$pid/stat" 2>/dev/null
	done | awk -v sys="$(head -n 1 /proc/stat)" '{ t[$1] += $2 } END {
		split(sys, f, " ")
		print t["w"] + 0, t["l"] + 0, t["p"] + 0, f[2] + f[3] + f[4] + f[7] + f[8] + f[9], f[5] + f[6]
	}'
}
# The workers' own view: p99 of duration_ms in their log lines of the run
# (request in to response out), which leaves out lighttpd, wrk and the
# scheduler of a busy machine.  wrk's timeout is 30 s, not its default 2 s,
# so that queued logins are measured rather than dropped as timeouts.
run_wrk() { # ROUTE wrk-args...: sets RPS, P50, P99, ERRS, TIMEOUTS, WP99, CPU
	local out route=$1 from cpu0 cpu1 n
	shift
	from=$(wc -l <"$STACK_DIR/lighttpd.log")
	cpu0=$(bench_cpu)
	out=$(wrk -t2 -c"$conns" -d"${secs}s" --timeout 30s --latency "$@")
	cpu1=$(bench_cpu)
	# CPU per request in microseconds: worker, lighttpd, PostgreSQL, the
	# rest (wrk, mostly), and the machine's busy share during the run.
	n=$(echo "$out" | awk '/requests in/ { print $1; exit }')
	CPU=$(awk -v a="$cpu0" -v b="$cpu1" -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		for (i = 1; i <= 5; i++) d[i] = y[i] - x[i]
		if (n == 0 || d[4] + d[5] == 0) { print "- - - - -"; exit }
		u = 1e6 / hz / n
		printf "%.0f %.0f %.0f %.0f %.0f%%", d[1] * u, d[2] * u, d[3] * u, (d[4] - d[1] - d[2] - d[3]) * u, 100 * d[4] / (d[4] + d[5])
	}')
	WP99=$(tail -n +"$((from + 1))" "$STACK_DIR/lighttpd.log" | grep "\"route\":\"$route\"" |
		sed -E 's/.*"duration_ms":([0-9.]+).*/\1/' | sort -n |
		awk '{ a[NR] = $1 } END { if (NR) printf "%.2f", a[int(NR * 0.99 + 0.5)] }')
	# Below 10 requests/s, one decimal (logins).
	RPS=$(echo "$out" | awk '/Requests\/sec/ { if ($2 < 10) printf "%.1f", $2; else printf "%.0f", $2 }')
	P50=$(echo "$out" | awk '$1 == "50%" { print $2 }' | to_ms)
	P99=$(echo "$out" | awk '$1 == "99%" { print $2 }' | to_ms)
	ERRS=$(echo "$out" | awk '/Non-2xx/ { print $NF }')
	ERRS=${ERRS:-0}
	TIMEOUTS=$(echo "$out" | sed -nE 's/.*Socket errors:.*timeout ([0-9]+).*/\1/p')
	TIMEOUTS=${TIMEOUTS:-0}
}
# pgbench against the database as the worker role, over TLS (verify-full),
# with the workers' session settings (DB_SESSION_OPTIONS in src/db.h).
# pgbench reads ":name" as a variable even inside string literals, so the
# ':' separators of the timestamp format become '.' (the same work for
# to_char) and $N become :pN.  Clients: PGB_CONNS if set, else conns.
run_pgbench() { # SCRIPT-TEXT pgbench-args...: sets TPS, PGP50, PGP99, PGFAIL
	local script=$STACK_DIR/pgbench.sql sqltext=$1 out c=${PGB_CONNS:-$conns} j
	shift
	j=$((c < 2 ? c : 2))
	printf '%s;\n' "$(printf '%s' "$sqltext" | sed -e 's/HH24:MI:SS/HH24.MI.SS/g' -e 's/\$\([0-9]\)/:p\1/g')" >"$script"
	rm -f "$STACK_DIR"/pgb_log*
	out=$(cd "$STACK_DIR" && PGHOST=localhost PGPORT=$PG_PORT PGDATABASE=chat PGUSER=chat_app \
		PGPASSWORD=$(cat "$STACK_DIR/secrets/pg_app_password") PGSSLMODE=verify-full \
		PGSSLROOTCERT=$STACK_DIR/pg/ca.crt PGOPTIONS=$("$STACK_DIR/chat_sql" --session-options) \
		"$PGBIN/pgbench" -n -M prepared -c "$c" -j "$j" -T "$secs" -l --log-prefix=pgb_log \
		-f "$script" "$@" 2>&1)
	TPS=$(echo "$out" | awk '/^tps = / { printf "%.0f", $3; exit }')
	PGFAIL=$(echo "$out" | awk '/number of failed transactions/ { print $5 }')
	local lat
	lat=$(cat "$STACK_DIR"/pgb_log* | awk '{ print $3 }' | sort -n |
		awk '{ a[NR] = $1 } END { if (NR) printf "%.2f %.2f", a[int(NR * 0.5 + 0.5)] / 1000, a[int(NR * 0.99 + 0.5)] / 1000 }')
	PGP50=${lat% *} PGP99=${lat#* }
	[ -n "$TPS" ] || echo "$out" | tail -n 5 | sed 's/^/# pgbench: /'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
report() { # LABEL
	printf '%-36s %10s %9s %10s %10s %9s %8s\n' "$1" "$RPS" "$P99" "$WP99" "$TPS" "$PGP99" \
		"$(ratio "$RPS" "$TPS")"
	[ "$ERRS" = 0 ] || echo "#   wrk: $ERRS non-2xx answers"
	[ "${PGFAIL:-0}" = 0 ] || echo "#   pgbench: $PGFAIL failed transactions"
}

# bench_idle: wait (up to 30 s) until the workers have logged nothing for
# a second: when wrk stops, lighttpd may still hold queued requests (logins
# take a second each), and a worker caught in a hash would show its 32 MiB.
bench_idle() {
	local n m
	n=$(wc -l <"$STACK_DIR/lighttpd.log")
	for _ in $(seq 1 30); do
		sleep 1
		m=$(wc -l <"$STACK_DIR/lighttpd.log")
		[ "$m" = "$n" ] && return 0
		n=$m
	done
}

# bench_memory LABEL: min/max over the workers of RSS, PSS and private
# (Private_Clean + Private_Dirty) from /proc/PID/smaps_rollup, and the
# largest VmHWM (peak RSS, which shows a password hash), all in MiB.
bench_memory() {
	local pid n=0
	bench_idle
	for pid in $(stack_worker_pids); do
		[ -r "/proc/$pid/smaps_rollup" ] || continue
		n=$((n + 1))
		awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Private_(Clean|Dirty):/ { v += $2 }
			END { print r, p, v }' "/proc/$pid/smaps_rollup"
		awk '/^VmHWM:/ { print "hwm", $2 }' "/proc/$pid/status"
	done | awk -v label="$1" '
		$1 == "hwm" { if ($2 > hwm) hwm = $2; next }
		{ n++; for (i = 1; i <= 3; i++) { if (n == 1 || $i < lo[i]) lo[i] = $i; if ($i > hi[i]) hi[i] = $i } }
		END {
			if (!n) { printf "%-28s no worker found\n", label; exit }
			printf "%-28s %d workers: RSS %.1f-%.1f MiB, PSS %.1f-%.1f MiB, private %.1f-%.1f MiB; max VmHWM %.1f MiB\n",
				label, n, lo[1] / 1024, hi[1] / 1024, lo[2] / 1024, hi[2] / 1024, lo[3] / 1024, hi[3] / 1024, hwm / 1024
		}'
}
