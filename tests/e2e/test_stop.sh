#!/usr/bin/env bash
# A clean stop behind lighttpd 1.4.69 (README, "Stopping"; src/stop.h):
#   - SIGINT to lighttpd (its graceful stop): a slow request started
#     before the signal gets its whole answer, then every worker leaves;
#   - SIGTERM to lighttpd (its immediate stop): idle workers leave at once,
#     the busy one finishes its request (the send is stored) and leaves;
#   - lighttpd killed with SIGKILL: its workers leave by themselves;
#   - Ctrl-C as a terminal sends it, SIGINT to the whole process group
#     (lighttpd and its workers), 20 times in a row, at varied moments
#     (workers still starting, idle, one busy while lighttpd finishes and
#     respawns the others): no chat-fcgi process is ever left behind.
# "No process left" is checked by /proc/PID/exe (this stack's own copy of
# the binary), whoever the parent, not by name.  The slow request is a
# message send held up by a table lock, as in test_timeouts.sh.
. "$(dirname "$0")/lib.sh"
export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
# Long enough that a send waits for the lock instead of timing out.
export DB_TIMEOUT_MS=20000
e2e_start 4

now_ms() { echo $(($(date +%s%N) / 1000000)); }
sql() { stack_psql chat -At -c "$1"; }

json POST /auth/register '{"email":"s@x.io","password":"pass word 1","display_name":"S"}'
json POST /auth/login '{"email":"s@x.io","password":"pass word 1"}'
token=$(printf '%s' "$BODY" | jq -r .access_token)
json POST /chat/conversations '{"title":"stop","members":[]}' -H "Authorization: Bearer $token"
cid=$(printf '%s' "$BODY" | jq -r .id)
check "setup: a conversation" is_status 201

# hold_lock SECONDS: an ACCESS EXCLUSIVE lock on conversations (a send
# waits for it), in the background; returns once it is granted.
hold_lock() {
	stack_psql chat -q -c "BEGIN; LOCK TABLE chat.conversations IN ACCESS EXCLUSIVE MODE;
		SELECT pg_sleep($1); COMMIT;" >/dev/null 2>&1 &
	LOCKER=$!
	for _ in $(seq 1 100); do
		[ "$(sql "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'chat.conversations'::regclass AND granted")" = 1 ] && return 0
		sleep 0.05
	done
	return 1
}
# Until a statement waits for that lock: the request is inside a worker.
wait_blocked() {
	for _ in $(seq 1 100); do
		[ "$(sql "SELECT count(*) FROM pg_locks WHERE relation = 'chat.conversations'::regclass AND NOT granted")" -ge 1 ] && return 0
		sleep 0.05
	done
	return 1
}
# slow_send NAME: a send in the background; its answer in $STACK_DIR/NAME.*
slow_send() {
	curl -s -o "$STACK_DIR/$1.body" -D "$STACK_DIR/$1.hdrs" -w '%{http_code}' --max-time 30 \
		-H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
		--data-binary "{\"body\":\"$1\"}" "$BASE/chat/conversations/$cid/messages" \
		>"$STACK_DIR/$1.status" 2>/dev/null &
	SENDER=$!
}
# slow_answer NAME: the answer slow_send got, as STATUS/BODY/HDRS, recorded.
slow_answer() {
	STATUS=$(cat "$STACK_DIR/$1.status")
	BODY=$(cat "$STACK_DIR/$1.body" 2>/dev/null)
	cp "$STACK_DIR/$1.hdrs" "$HDRS" 2>/dev/null || : >"$HDRS"
	[ "$STATUS" = 000 ] || e2e_record POST "/chat/conversations/$cid/messages"
}
stored() { sql "SELECT count(*) FROM chat.messages WHERE body = '$1'"; }
# gone_after T0 SECONDS: until no process runs this stack's chat-fcgi;
# prints the milliseconds since T0, or "never" (and fails) after SECONDS.
gone_after() {
	local end=$(($(now_ms) + $2 * 1000))
	while [ "$(now_ms)" -lt "$end" ]; do
		[ -z "$(stack_chat_pids)" ] && { echo $(($(now_ms) - $1)); return 0; }
		sleep 0.05
	done
	echo never
	return 1
}
count_pids() { stack_chat_pids | wc -l; }

# --- SIGINT to lighttpd: graceful, the request in flight is answered ------------
check "4 workers run this stack's binary (by /proc/PID/exe)" [ "$(count_pids)" = 4 ]
hold_lock 2
slow_send graceful
wait_blocked
t0=$(now_ms)
kill -INT "$LIGHTTPD_PID"
wait "$SENDER"
answered=$(($(now_ms) - t0))
slow_answer graceful
check "SIGINT: the send in flight gets its answer, 201 (after ${answered} ms)" is_status 201
check "... with its whole body" is_json .body graceful
wait "$LIGHTTPD_PID"
lighttpd_ms=$(($(now_ms) - t0))
LIGHTTPD_PID=
ms=$(gone_after "$t0" 5)
check "... lighttpd exits after it (${lighttpd_ms} ms), every worker within 3 s of the signal (${ms} ms)" \
	bash -c '[ "$0" != never ] && [ "$0" -lt 3000 ]' "$ms"
wait "$LOCKER"
check "... the message was stored once" [ "$(stored graceful)" = 1 ]
check "... each worker logged why it left" \
	[ "$(grep -c '"event":"stop","msg":"worker stopping' "$STACK_DIR/lighttpd.log")" -ge 4 ]

# --- SIGTERM to lighttpd: immediate; the busy worker finishes, then leaves -------
e2e_lighttpd 4
hold_lock 2
slow_send immediate
wait_blocked
t0=$(now_ms)
kill -TERM "$LIGHTTPD_PID"
wait "$LIGHTTPD_PID"
lighttpd_ms=$(($(now_ms) - t0))
LIGHTTPD_PID=
sleep 0.5
left=$(count_pids)
check "SIGTERM: lighttpd exits at once (${lighttpd_ms} ms); 0.5 s later only the busy worker is left ($left)" \
	[ "$lighttpd_ms" -lt 1000 -a "$left" = 1 ]
wait "$SENDER"
slow_answer immediate
echo "# SIGTERM: the client of the request in flight got HTTP $STATUS (lighttpd closes its connections at once)"
ms=$(gone_after "$t0" 6)
check "... the busy worker leaves once its request is done (${ms} ms after SIGTERM, lock held 2 s)" \
	bash -c '[ "$0" != never ] && [ "$0" -lt 4500 ]' "$ms"
wait "$LOCKER"
check "... and its send was carried out, once" [ "$(stored immediate)" = 1 ]

# --- lighttpd killed: the orphans leave by themselves ---------------------------
e2e_lighttpd 4
pids=$(stack_worker_pids | tr '\n' ' ')
t0=$(now_ms)
{ kill -KILL "$LIGHTTPD_PID"; wait "$LIGHTTPD_PID"; } 2>/dev/null
LIGHTTPD_PID=
ms=$(gone_after "$t0" 5)
check "SIGKILL to lighttpd: its 4 workers ($pids) leave by themselves (${ms} ms)" \
	bash -c '[ "$0" != never ] && [ "$0" -lt 3000 ]' "$ms"
missing=$(logged_by_each "$STACK_DIR/lighttpd.log" '"event":"stop","msg":"worker stopping \(SIGTERM, parent gone\)"' $pids | tr '\n' ' ')
check "... each saying its parent is gone${missing:+ (not: $missing)}" [ -z "$missing" ]

# --- Ctrl-C: SIGINT to the whole process group, 20 times ------------------------
# lighttpd in a session and process group of its own, as a terminal's
# foreground job would be; then kill -INT -- -PGID.  The moment varies:
#   start:  as soon as the port is open (workers may still be starting);
#   idle:   once every worker answers;
#   busy:   with a send in flight, so lighttpd finishes it gracefully for
#           about a second and respawns the workers that left meanwhile.
group_start() {
	HTTP_PORT=$(stack_free_port)
	BASE=http://127.0.0.1:$HTTP_PORT
	stack_lighttpd_conf "$E2E_BUILDDIR" "$HTTP_PORT" 4 || return 1
	setsid lighttpd -D -f "$STACK_DIR/lighttpd.conf" 2>>"$STACK_DIR/lighttpd.log" &
	LIGHTTPD_PID=$!
	stack_wait_port "$HTTP_PORT" 10
}
orphans=0 slowest=0 bad_group=0 unanswered=0 respawned=0 tries=""
for i in $(seq 1 20); do
	case $((i % 3)) in 1) moment=start ;; 2) moment=idle ;; 0) moment=busy ;; esac
	group_start || { fail "try $i: lighttpd did not start"; break; }
	[ "$(ps -o pgid= -p "$LIGHTTPD_PID" | tr -d ' ')" = "$LIGHTTPD_PID" ] || bad_group=$((bad_group + 1))
	case $moment in
	idle)
		for _ in $(seq 1 50); do
			[ "$(count_pids)" = 4 ] && curl -s -o /dev/null "$BASE/healthz" && break
			sleep 0.05
		done
		;;
	busy)
		for _ in $(seq 1 50); do [ "$(count_pids)" = 4 ] && break; sleep 0.05; done
		hold_lock 1.2
		slow_send "group$i"
		wait_blocked
		;;
	esac
	before=$(grep -c '"event":"start","msg":"worker ready' "$STACK_DIR/lighttpd.log")
	t0=$(now_ms)
	kill -INT -- "-$LIGHTTPD_PID"
	wait "$LIGHTTPD_PID" 2>/dev/null
	LIGHTTPD_PID=
	ms=$(gone_after "$t0" 5)
	if [ "$ms" = never ]; then
		orphans=$((orphans + 1))
		echo "# try $i ($moment): left behind: $(stack_chat_pids | while read -r p; do
			echo "$p(ppid $(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null))"
		done | tr '\n' ' ')"
		stack_workers_gone 2>/dev/null
	else
		[ "$ms" -gt "$slowest" ] && slowest=$ms
	fi
	respawned=$((respawned + $(grep -c '"event":"start","msg":"worker ready' "$STACK_DIR/lighttpd.log") - before))
	if [ "$moment" = busy ]; then
		wait "$SENDER"
		slow_answer "group$i"
		{ is_status 201 && is_json .body "group$i"; } || unanswered=$((unanswered + 1))
		wait "$LOCKER"
	fi
	tries="$tries $moment:${ms}"
done
echo "# tries (moment:ms until no worker was left):$tries"
echo "# workers lighttpd respawned while it was stopping: $respawned"
check "SIGINT to the process group, 20 tries: lighttpd led its own group each time" [ "$bad_group" = 0 ]
check "... no chat-fcgi process left behind, ever ($orphans tries left some; slowest ${slowest} ms)" \
	[ "$orphans" = 0 ]
check "... every send in flight got its 201 and body ($unanswered did not)" [ "$unanswered" = 0 ]

e2e_finish
