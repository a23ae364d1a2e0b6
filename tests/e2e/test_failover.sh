#!/usr/bin/env bash
# PostgreSQL failover under load (issue 13, point 3): a primary on
# 127.0.0.1 and a streaming standby on 127.0.0.2 (pg_basebackup, TLS on
# both, one certificate valid for both addresses, verify-full), synchronous
# replication (synchronous_commit = on with the standby named in
# synchronous_standby_names: a commit is acknowledged once the standby has
# flushed its WAL, which promotion replays; remote_apply would only matter
# for reads on the standby, which the workers never do).  The workers get
# both hosts, the standby FIRST: target_session_attrs=read-write has to skip
# it.  Four clients post messages in a loop (two retry a 503 with the same
# Idempotency-Key, two send a new body each time), the primary is stopped
# in immediate mode and the standby promoted.  Asserted:
#   - only 201/200/503 answers, every 503 with Retry-After, none slower
#     than DB_TIMEOUT_MS plus slack; some 503 in the gap;
#   - the same workers (no restart) connect to the new primary, and every
#     client is served again within a measured time (printed);
#   - every acknowledged message is on the new primary exactly once, with
#     its body; no body twice;
#   - a server that turns read-only under a connected worker (25006) gets
#     503 and a reconnect, never 500, and writes resume once it is writable;
#   - a first host that never answers costs only its share of
#     DB_TIMEOUT_MS: the next host is tried in time.
. "$(dirname "$0")/lib.sh"
export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
export DB_TIMEOUT_MS=2000
WORKERS=4
CLIENTS=4

PG2=$STACK_DIR/pg2
PG2_PORT=
MUTE_PID=
failover_cleanup() {
	[ -n "$MUTE_PID" ] && kill "$MUTE_PID" 2>/dev/null
	if [ -d "$PG2/data" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$PG2/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	fi
	e2e_cleanup
}
trap failover_cleanup EXIT

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
sql1() { stack_psql chat -At -c "$1"; }
psql2() {
	as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$PG2/sock" -p "$PG2_PORT" -U postgres "$@"
}
sql2() { psql2 -d chat -At -c "$1"; }

# --- two clusters --------------------------------------------------------
for tool in curl jq lighttpd openssl python3; do
	command -v "$tool" >/dev/null || { echo "Bail out! $tool is missing (scripts/install-deps.sh)"; exit 99; }
done
python3 -c 'import socket; socket.socket().bind(("127.0.0.2", 0))' 2>/dev/null ||
	{ echo "Bail out! 127.0.0.2 is not a loopback address here"; exit 99; }
stack_pg_init || { echo "Bail out! PostgreSQL did not start"; exit 99; }
stack_migrate "$E2E_BUILDDIR" >/dev/null || { echo "Bail out! migrations failed"; exit 99; }

# One server certificate, valid for both addresses (the standby's copy of
# postgresql.conf points at the same files), signed by the stack's CA.
d=$STACK_DIR/pg
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2\n' >"$d/san.ext"
openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
	-days 30 -extfile "$d/san.ext" -out "$d/server.crt" 2>/dev/null
chmod 644 "$d/server.crt"
[ "$(id -u)" -eq 0 ] && chown postgres: "$d/server.crt"
REPL_PASSWORD=$(stack_random)
stack_psql postgres -v pw="$REPL_PASSWORD" <<'SQL' >/dev/null
CREATE ROLE replicator REPLICATION LOGIN PASSWORD :'pw';
SQL
as_pg tee -a "$d/data/pg_hba.conf" >/dev/null <<HBA
hostssl replication replicator 127.0.0.1/32 scram-sha-256
hostssl all all 127.0.0.0/8 scram-sha-256
HBA
sql1 "SELECT pg_reload_conf()" >/dev/null

PG2_PORT=$(stack_free_port)
mkdir -p "$PG2/sock" && chmod 755 "$PG2"
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$PG2"
as_pg "$PGBIN/pg_basebackup" -D "$PG2/data" -X stream -c fast \
	-d "host=127.0.0.1 port=$PG_PORT user=replicator password=$REPL_PASSWORD sslmode=verify-full sslrootcert=$d/ca.crt" \
	>"$STACK_DIR/basebackup.log" 2>&1 || { cat "$STACK_DIR/basebackup.log"; echo "Bail out! pg_basebackup failed"; exit 99; }
# The standby's own address, port and socket; it streams over TLS
# (verify-full) under the name the primary waits for.  Once promoted it is
# alone: it must not wait for a standby of its own, hence no
# synchronous_standby_names here (DEPLOY.md, failover steps).
as_pg tee -a "$PG2/data/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.2'
port = $PG2_PORT
unix_socket_directories = '$PG2/sock'
synchronous_standby_names = ''
primary_conninfo = 'host=127.0.0.1 port=$PG_PORT user=replicator password=$REPL_PASSWORD sslmode=verify-full sslrootcert=$d/ca.crt application_name=standby1'
CONF
as_pg touch "$PG2/data/standby.signal"
as_pg "$PGBIN/pg_ctl" -D "$PG2/data" -l "$PG2/server.log" -w -t 30 start >/dev/null ||
	{ tail -n 20 "$PG2/server.log"; echo "Bail out! the standby did not start"; exit 99; }
sql1 "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" >/dev/null
sql1 "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 1 100); do
	[ "$(sql1 "SELECT sync_state || ' ' || (ssl::text) FROM pg_stat_replication JOIN pg_stat_ssl USING (pid) WHERE application_name = 'standby1'")" = "sync true" ] && break
	sleep 0.1
done
check "the standby streams over TLS and is the synchronous one" \
	[ "$(sql1 "SELECT sync_state || ' ' || (ssl::text) FROM pg_stat_replication JOIN pg_stat_ssl USING (pid) WHERE application_name = 'standby1'")" = "sync true" ]
check "synchronous_commit is on on the primary" [ "$(sql1 "SHOW synchronous_commit")" = on ]

# --- workers given both hosts, the standby first ----------------------------
stack_env chat_app
export POSTGRES_HOST=127.0.0.2,127.0.0.1 POSTGRES_PORT=$PG2_PORT,$PG_PORT
export SCRYPT_N=10 SCRYPT_R=8 SCRYPT_P=1
e2e_lighttpd "$WORKERS"
workers_before=$(stack_worker_pids | sort | tr '\n' ' ')

json POST /auth/register '{"email":"f@x.io","password":"failover pass 1","display_name":"F"}'
json POST /auth/login '{"email":"f@x.io","password":"failover pass 1"}'
token=$(printf '%s' "$BODY" | jq -r .access_token)
check "setup: logged in through the multi-host connection" is_status 200
cids=()
for k in $(seq 1 "$CLIENTS"); do
	json POST /chat/conversations "{\"title\":\"failover $k\",\"members\":[]}" -H "Authorization: Bearer $token"
	cids[k]=$(printf '%s' "$BODY" | jq -r .id)
done
check "setup: $CLIENTS conversations" is_status 201
check "the workers skipped the standby (listed first) for the primary" \
	bash -c '! grep -q "\"msg\":\"connected to 127.0.0.2" "$0" && grep -q "\"msg\":\"connected to 127.0.0.1:$1 (tls on" "$0"' \
	"$STACK_DIR/lighttpd.log" "$PG_PORT"

# --- clients -------------------------------------------------------------
# Each client records its answers for openapi.yaml in a file of its own
# (req() keeps state in files), and one line per request:
#   client n start_ms end_ms status id retry_after body
STOP=$STACK_DIR/clients.stop
client() { # K KEYED
	local k=$1 keyed=$2 i=0 body start end id ra
	local dir=$STACK_DIR/client$k
	trap - EXIT
	mkdir -p "$dir"
	# shellcheck disable=SC2034 # read by req() in lib.sh
	STACK_DIR=$dir HDRS=$dir/headers E2E_RESPONSES=$dir/responses.jsonl
	while [ ! -e "$STOP" ]; do
		i=$((i + 1))
		body="failover $k-$i"
		while :; do
			start=$(now_ms)
			if [ "$keyed" = 1 ]; then
				json POST "/chat/conversations/${cids[k]}/messages" "{\"body\":\"$body\"}" \
					-H "Authorization: Bearer $token" -H "Idempotency-Key: key-$k-$i"
			else
				json POST "/chat/conversations/${cids[k]}/messages" "{\"body\":\"$body\"}" \
					-H "Authorization: Bearer $token"
			fi
			end=$(now_ms)
			id=-
			case $STATUS in 200 | 201) id=$(printf '%s' "$BODY" | jq -r .id) ;; esac
			ra=$(header Retry-After)
			echo "$k $i $start $end $STATUS $id ${ra:--} $body" >>"$dir/log"
			# A keyed client sends the same message again until it is
			# acknowledged; the other one moves on to a new body.
			if [ "$keyed" = 1 ] && [ "$STATUS" != 200 ] && [ "$STATUS" != 201 ] && [ ! -e "$STOP" ]; then
				sleep 0.2
				continue
			fi
			break
		done
		sleep 0.05
	done
}
pids=()
for k in $(seq 1 "$CLIENTS"); do
	client "$k" $((k % 2)) &
	pids+=($!)
done

sleep 3
t_stop=$(now_ms)
as_pg "$PGBIN/pg_ctl" -D "$STACK_DIR/pg/data" -m immediate -w -t 30 stop >/dev/null
sleep 1.5
t_promote=$(now_ms)
as_pg "$PGBIN/pg_ctl" -D "$PG2/data" -w -t 30 promote >/dev/null
t_promoted=$(now_ms)
# Long enough for every client to get through again (or show it does not).
for _ in $(seq 1 100); do
	resumed=0
	for k in $(seq 1 "$CLIENTS"); do
		awk -v t="$t_promote" '$3 >= t && ($5 == 201 || $5 == 200) { f = 1 } END { exit !f }' \
			"$STACK_DIR/client$k/log" 2>/dev/null && resumed=$((resumed + 1))
	done
	[ "$resumed" = "$CLIENTS" ] && break
	sleep 0.1
done
sleep 2
touch "$STOP"
wait "${pids[@]}"
cat "$STACK_DIR"/client*/responses.jsonl >>"$E2E_RESPONSES"
cat "$STACK_DIR"/client*/log >"$STACK_DIR/requests.log"
LOG=$STACK_DIR/requests.log

total=$(wc -l <"$LOG")
before=$(awk -v t="$t_stop" '$4 < t' "$LOG" | wc -l)
statuses=$(awk '{ print $5 }' "$LOG" | sort | uniq -c | awk '{ printf "%s×%s ", $2, $1 }')
echo "# $total requests: $statuses; promotion took $((t_promoted - t_promote)) ms"
check "before the stop: $before requests, every one acknowledged" \
	bash -c '[ "$1" -gt 10 ] && awk -v t="$2" '"'"'$4 < t && $5 != 201 && $5 != 200 { bad = 1 } END { exit bad }'"'"' "$0"' \
	"$LOG" "$before" "$t_stop"
check "only 201, 200 (a keyed retry) and 503 answers: no 500, no timeout" \
	bash -c '! awk '"'"'$5 != 201 && $5 != 200 && $5 != 503'"'"' "$0" | grep -q .' "$LOG"
n503=$(awk '$5 == 503' "$LOG" | wc -l)
check "requests in the gap got 503 ($n503)" [ "$n503" -gt 0 ]
check "every 503 carries Retry-After" bash -c '! awk '"'"'$5 == 503 && $7 == "-"'"'"' "$0" | grep -q .' "$LOG"
slowest=$(awk '{ d = $4 - $3; if (d > m) m = d } END { printf "%d\n", m }' "$LOG")
check "no request waited beyond DB_TIMEOUT_MS plus slack (slowest ${slowest} ms <= $((DB_TIMEOUT_MS + 2000)))" \
	[ "$slowest" -le $((DB_TIMEOUT_MS + 2000)) ]

# Service back: per client, the end of its first acknowledged request sent
# after its first 503 (or after the promotion began, for a client that saw
# none): a send that started just before the stop took effect may end after
# it.  (Times relative to the stop: mawk's printf %d is 32-bit.)
first_ack=$(awk -v t="$t_stop" -v p="$t_promote" '$5 == 503 && !($1 in e) { e[$1] = $4 }
	($5 == 201 || $5 == 200) && !($1 in f) && $3 >= (($1 in e) ? e[$1] : p) { f[$1] = $4 - t }
	END { n = 0; mn = -1; for (k in f) { n++; if (f[k] > m) m = f[k]; if (mn < 0 || f[k] < mn) mn = f[k] }
	printf "%d %d %d\n", n, mn, m }' "$LOG")
read -r n_resumed first_resume last_resume <<<"$first_ack"
last_503=$(awk -v t="$t_stop" '$5 == 503 { if ($4 - t > m) m = $4 - t } END { printf "%d\n", m }' "$LOG")
promote_at=$((t_promote - t_stop))
echo "# primary stopped at +0 ms, promotion started at +$promote_at ms, done at +$((t_promoted - t_stop)) ms"
echo "# service back: first client at +$first_resume ms, all $n_resumed clients at +$last_resume ms ($((last_resume - promote_at)) ms after pg_ctl promote began); last 503 at +$last_503 ms"
check "every client served again after the promotion" [ "$n_resumed" = "$CLIENTS" ]
check "... within 8 s of pg_ctl promote ($((last_resume - promote_at)) ms)" \
	bash -c '[ "$0" -gt 0 ] && [ "$0" -le 8000 ]' $((last_resume - promote_at))
check "... and no 503 later than 4 s after it (last at +$last_503 ms)" \
	[ $((last_503 - promote_at)) -le 4000 ]
check "the same workers, not restarted" [ "$(stack_worker_pids | sort | tr '\n' ' ')" = "$workers_before" ]
check "the workers connected to the new primary by themselves" \
	grep -q "\"msg\":\"connected to 127.0.0.2:$PG2_PORT (tls on" "$STACK_DIR/lighttpd.log"

# Every acknowledged message is on the new primary exactly once, with its
# body; no body stored twice (an unacknowledged send may or may not be).
sql2 "SELECT id, body FROM chat.messages WHERE body LIKE 'failover %' ORDER BY id" | tr '|' ' ' >"$STACK_DIR/stored"
awk '($5 == 201 || $5 == 200) { print $6, $8, $9 }' "$LOG" | sort -u >"$STACK_DIR/acked"
n_acked=$(awk '{ print $1 }' "$STACK_DIR/acked" | sort -u | wc -l)
n_stored=$(wc -l <"$STACK_DIR/stored")
missing=$(awk 'NR == FNR { s[$0] = 1; next } !($0 in s)' "$STACK_DIR/stored" "$STACK_DIR/acked")
check "all $n_acked acknowledged messages are on the new primary, id and body ($n_stored stored)" \
	bash -c '[ -z "$0" ] && [ "$1" -gt 0 ]' "$missing" "$n_acked"
[ -n "$missing" ] && echo "#   missing: $(head -n 5 <<<"$missing" | tr '\n' ';')"
check "no message stored twice (bodies unique, ids unique)" \
	bash -c '[ -z "$(cut -d" " -f2- "$0" | sort | uniq -d)" ] && [ -z "$(cut -d" " -f1 "$0" | sort | uniq -d)" ]' \
	"$STACK_DIR/stored"
unacked=$(awk 'NR == FNR { a[$2 " " $3] = 1; next } !(($2 " " $3) in a)' "$STACK_DIR/acked" "$STACK_DIR/stored" | wc -l)
retried=$(awk '$5 == 200' "$LOG" | wc -l)
echo "# stored but never acknowledged (commit done, answer lost): $unacked; keyed retries answered 200: $retried"

# --- a server that stops taking writes under a connected worker ----------
# default_transaction_read_only on the new primary, as an operator fences
# an old primary: the open connections get 25006 on their next write.
log_lines=$(wc -l <"$STACK_DIR/lighttpd.log")
sql2 "ALTER SYSTEM SET default_transaction_read_only = on" >/dev/null
sql2 "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
count_before=$(sql2 "SELECT count(*) FROM chat.messages")
fenced_ok=1
for i in $(seq 1 6); do
	json POST "/chat/conversations/${cids[1]}/messages" "{\"body\":\"fenced $i\"}" -H "Authorization: Bearer $token"
	is_error 503 database_unavailable && [ -n "$(header Retry-After)" ] || { fenced_ok=0; echo "#   fenced send $i: $STATUS $BODY"; }
done
check "writes to a read-only server: 503 with Retry-After, never 500" [ "$fenced_ok" = 1 ]
check "... nothing stored" [ "$(sql2 "SELECT count(*) FROM chat.messages")" = "$count_before" ]
tail -n +$((log_lines + 1)) "$STACK_DIR/lighttpd.log" >"$STACK_DIR/fence.log"
check "... the worker logged 25006, dropped the connection and found the server read-only on reconnect" \
	bash -c 'grep -q "\"event\":\"db_error\".*read-only transaction" "$0" && grep -q "\"event\":\"db_connect\".*read-only" "$0"' \
	"$STACK_DIR/fence.log"
sql2 "ALTER SYSTEM RESET default_transaction_read_only" >/dev/null
sql2 "SELECT pg_reload_conf()" >/dev/null
ok=0
for _ in $(seq 1 60); do
	json POST "/chat/conversations/${cids[1]}/messages" '{"body":"unfenced"}' -H "Authorization: Bearer $token"
	if is_status 201; then ok=$((ok + 1)); [ "$ok" -ge "$WORKERS" ] && break; fi
	sleep 0.1
done
check "writable again: sends are acknowledged" [ "$ok" -ge "$WORKERS" ]

# --- a synchronous standby that is gone --------------------------------------
# The new primary told to wait for a standby it does not have: a commit
# waits for it, and statement_timeout does not end that wait.  The worker's
# own deadline (DB_TIMEOUT_MS + 1 s) answers 503 and cancels the statement,
# so no backend stays behind.  The row is committed locally all the same:
# not acknowledged, and the client's keyed retry finds it (200).
sql2 "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" >/dev/null
sql2 "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
start=$(now_ms)
json POST "/chat/conversations/${cids[3]}/messages" '{"body":"no standby"}' \
	-H "Authorization: Bearer $token" -H "Idempotency-Key: no-standby"
ms=$(($(now_ms) - start))
check "standby gone under synchronous replication: 503 with Retry-After after ${ms} ms (<= $((DB_TIMEOUT_MS + 1000 + 1500)))" \
	bash -c '[ "$0" = 503 ] && [ -n "$1" ] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ]' \
	"$STATUS" "$(header Retry-After)" "$ms" "$DB_TIMEOUT_MS" $((DB_TIMEOUT_MS + 2500))
for _ in $(seq 1 20); do
	[ "$(sql2 "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")" = 0 ] && break
	sleep 0.1
done
check "... the statement was cancelled: no backend left waiting for the standby" \
	[ "$(sql2 "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")" = 0 ]
check "... the log says so" grep -q '"event":"db_error".*no answer within .* cancelled, connection dropped' "$STACK_DIR/lighttpd.log"
sql2 "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null
sql2 "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
json POST "/chat/conversations/${cids[3]}/messages" '{"body":"no standby"}' \
	-H "Authorization: Bearer $token" -H "Idempotency-Key: no-standby"
check "... committed locally, unacknowledged: the keyed retry gets it back (200), stored once" \
	bash -c '[ "$0" = 200 ] && [ "$1" = 1 ]' "$STATUS" "$(sql2 "SELECT count(*) FROM chat.messages WHERE idempotency_key = 'no-standby'")"

# --- a first host that never answers ---------------------------------------
# The old primary's address now holds a listener that never speaks (the
# machine is gone, its port filtered): new workers must not spend all of
# DB_TIMEOUT_MS on it.
python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
time.sleep(120)' "$PG_PORT" &
MUTE_PID=$!
stack_wait_port "$PG_PORT" 5
export POSTGRES_HOST=127.0.0.1,127.0.0.2 POSTGRES_PORT=$PG_PORT,$PG2_PORT
e2e_lighttpd "$WORKERS"
ok=0 slow=0
for i in $(seq 1 $((WORKERS * 2))); do
	start=$(now_ms)
	json POST "/chat/conversations/${cids[2]}/messages" "{\"body\":\"mute $i\"}" -H "Authorization: Bearer $token"
	ms=$(($(now_ms) - start))
	is_status 201 && ok=$((ok + 1))
	[ "$ms" -gt "$slow" ] && slow=$ms
done
check "a mute first host: every send still acknowledged ($ok of $((WORKERS * 2)), slowest $slow ms)" \
	[ "$ok" = $((WORKERS * 2)) ]
check "... the log says the host overran its share" \
	grep -q "\"msg\":\"host 127.0.0.1:$PG_PORT: no answer within its share of $DB_TIMEOUT_MS ms" "$STACK_DIR/lighttpd.log"
kill "$MUTE_PID" 2>/dev/null
wait "$MUTE_PID" 2>/dev/null
MUTE_PID=

# --- verify-full checks each host's own name ------------------------------
# A certificate for 127.0.0.1 only, on the server at 127.0.0.2: refused.
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/san.ext"
openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
	-days 30 -extfile "$d/san.ext" -out "$d/server.crt" 2>/dev/null
sql2 "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
e2e_lighttpd "$WORKERS"
json POST "/chat/conversations/${cids[2]}/messages" '{"body":"wrong name"}' -H "Authorization: Bearer $token"
check "a certificate that does not name the host: 503, not connected" is_error 503 database_unavailable
check "... the log says the name does not match" \
	grep -q 'server certificate for .* does not match host name \\"127.0.0.2\\"' "$STACK_DIR/lighttpd.log"

e2e_finish
