#!/usr/bin/env bash
# DB_TIMEOUT_MS bounds every wait on the database (SPEC §4), end to end:
#   - a statement held up by a lock is cancelled by statement_timeout: the
#     client gets 503 database_unavailable after about DB_TIMEOUT_MS, nothing
#     is stored, and the same connection serves the next request;
#   - a database host that accepts TCP but never answers (a listener that
#     never speaks: libpq waits for the reply to its SSLRequest) costs a
#     request DB_TIMEOUT_MS, not libpq's whole-second connect_timeout, and
#     then the back-off answers at once while /healthz stays up.
. "$(dirname "$0")/lib.sh"
export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
export DB_TIMEOUT_MS=1000
e2e_start 2

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
sql() { stack_psql chat -At -c "$1"; }

json POST /auth/register '{"email":"t@x.io","password":"timeouts pass 1","display_name":"T"}'
json POST /auth/login '{"email":"t@x.io","password":"timeouts pass 1"}'
token=$(printf '%s' "$BODY" | jq -r .access_token)
json POST /chat/conversations '{"title":"t","members":[]}' -H "Authorization: Bearer $token"
cid=$(printf '%s' "$BODY" | jq -r .id)
check "setup: a conversation" is_status 201

# --- a statement that waits on a lock ----------------------------------
# An ACCESS EXCLUSIVE lock on conversations for 6 s: a send waits for it.
stack_psql chat -q -c "BEGIN; LOCK TABLE chat.conversations IN ACCESS EXCLUSIVE MODE;
	SELECT pg_sleep(6); COMMIT;" >/dev/null 2>&1 &
locker=$!
for _ in $(seq 1 50); do
	[ "$(sql "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'chat.conversations'::regclass AND granted")" = 1 ] && break
	sleep 0.1
done
before=$(sql "SELECT count(*) FROM chat.messages")
for i in 1 2; do
	start=$(date +%s%N)
	json POST "/chat/conversations/$cid/messages" '{"body":"blocked"}' -H "Authorization: Bearer $token"
	ms=$(ms_since "$start")
	check "send $i behind the lock: 503 database_unavailable" is_error 503 database_unavailable
	check "... with Retry-After" bash -c '[ -n "$0" ]' "$(header Retry-After)"
	check "... after DB_TIMEOUT_MS, not the lock's 6 s (${ms} ms, 900..3000)" \
		bash -c '[ "$0" -ge 900 ] && [ "$0" -le 3000 ]' "$ms"
done
check "the log names the statement timeout" \
	grep -q '"event":"db_error".*canceling statement due to statement timeout' "$STACK_DIR/lighttpd.log"
req GET /healthz
check "healthz meanwhile: 200" is_status 200
wait "$locker"
check "nothing stored by the cancelled sends" [ "$(sql "SELECT count(*) FROM chat.messages")" = "$before" ]
connects_before=$(grep -c '"event":"db_connect","msg":"connected' "$STACK_DIR/lighttpd.log")
ok=0
for _ in 1 2 3 4; do
	json POST "/chat/conversations/$cid/messages" '{"body":"after the lock"}' -H "Authorization: Bearer $token"
	is_status 201 && ok=$((ok + 1))
done
check "lock released: 4 sends over both workers 201" [ "$ok" = 4 ]
check "... on the same connections (no reconnect after a timeout)" \
	[ "$(grep -c '"event":"db_connect","msg":"connected' "$STACK_DIR/lighttpd.log")" = "$connects_before" ]

# --- a host that never answers ----------------------------------------
# A listener whose queue completes the TCP handshake but which never
# accepts: libpq's SSLRequest gets no reply.
mute_port=$(stack_free_port)
python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
time.sleep(120)' "$mute_port" &
mute=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$mute_port") 2>/dev/null && break; sleep 0.1; done
export POSTGRES_HOST=127.0.0.1 POSTGRES_PORT=$mute_port POSTGRES_SSLMODE=require
unset POSTGRES_SSLROOTCERT
e2e_lighttpd 2
start=$(date +%s%N)
json POST /auth/login '{"email":"t@x.io","password":"timeouts pass 1"}'
ms=$(ms_since "$start")
check "mute database: login 503 database_unavailable" is_error 503 database_unavailable
check "... after DB_TIMEOUT_MS, not libpq's 2 s minimum (${ms} ms, 900..1900)" \
	bash -c '[ "$0" -ge 900 ] && [ "$0" -le 1900 ]' "$ms"
check "the log says the connect timed out after 1000 ms" \
	grep -q '"event":"db_connect","msg":"connect timed out after 1000 ms"' "$STACK_DIR/lighttpd.log"
start=$(date +%s%N)
req GET /healthz
ms=$(ms_since "$start")
check "healthz does not wait on the database (${ms} ms < 500)" bash -c '[ "$0" = 200 ] && [ "$1" -lt 500 ]' "$STATUS" "$ms"
kill "$mute" 2>/dev/null
wait "$mute" 2>/dev/null

e2e_finish
