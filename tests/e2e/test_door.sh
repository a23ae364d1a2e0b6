#!/usr/bin/env bash
# The door: lighttpd's own answers (lighttpd.conf + deploy/lighttpd/door.lua)
# are the API's error envelope with the API's headers; slow clients do not
# stop others; one address is capped at var.chat_per_addr requests at once
# while another is still served; a body-less POST gets what lighttpd 1.4.69
# allows (its 411, in the envelope).  Clients: tests/e2e/door_clients.py.
. "$(dirname "$0")/lib.sh"

CLIENTS=$E2E_SRCDIR/tests/e2e/door_clients.py
CAP=$(sed -n 's/^var.chat_per_addr *= *\([0-9]*\).*/\1/p' "$E2E_SRCDIR/lighttpd.conf")
RID_RE='^[A-Za-z0-9._-]{1,128}$'
e2e_start 2

# door_error STATUS CODE [RID]: the answer is the envelope: exactly
# {"error","detail"} (plus max_bytes on 413), the three headers, Retry-After
# on 503, and the client's X-Request-ID RID echoed, or (RID "fresh") a new
# one of 32 hex digits.
door_error() {
	local status=$1 code=$2 rid=${3:-} keys='["detail","error"]'
	[ "$status" = 413 ] && keys='["detail","error","max_bytes"]'
	[ "$STATUS" = "$status" ] || { echo "# status $STATUS, not $status" >&2; return 1; }
	printf '%s' "$BODY" | jq -e --arg code "$code" --argjson keys "$keys" \
		'(keys == $keys) and .error == $code and (.detail | type == "string" and length > 0)' >/dev/null ||
		{ echo "# body: $BODY" >&2; return 1; }
	has_header Content-Type application/json && has_header X-Content-Type-Options nosniff &&
		has_header Cache-Control no-store || { echo "# headers: $(tr -d '\r' <"$HDRS" | tr '\n' '|')" >&2; return 1; }
	if [ "$status" = 503 ]; then [[ "$(header Retry-After)" =~ ^[1-9][0-9]*$ ]] || return 1; fi
	case $rid in
	"") [[ "$(header X-Request-ID)" =~ $RID_RE ]] ;;
	fresh) [[ "$(header X-Request-ID)" =~ ^[0-9a-f]{32}$ ]] ;;
	*) [ "$(header X-Request-ID)" = "$rid" ] ;;
	esac
}

# raw METHOD PATH BYTES...: sends the bytes (printf format) on one
# connection, records the answer like req() (waiting RAW_WAIT seconds, 3 by
# default, for more after the last byte).
raw() {
	local method=$1 path=$2
	shift 2
	# shellcheck disable=SC2059
	BODY=$(python3 "$CLIENTS" raw "$HTTP_PORT" "$(printf "$@" | od -An -tx1 -v | tr -d ' \n')" "$HDRS" "${RAW_WAIT:-3}")
	STATUS=$(head -n 1 "$HDRS" | cut -d' ' -f2)
	STATUS=${STATUS:-0}
	e2e_record "$method" "$path"
}

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# --- (c) every error lighttpd gives on its own ------------------------------------
raw GET /healthz 'GET /healthz HTTP/1.1\r\nHost: door\r\nBad Header: x\r\nX-Request-ID: door-400\r\n\r\n'
check "400 (white space in a header name): bad_request, a fresh X-Request-ID (lighttpd stopped before it)" \
	door_error 400 bad_request fresh
raw GET /healthz 'GET /healthz HTTP/1.1\r\nHost: door\r\nX-Request-ID: door-400\r\nBad Header: x\r\n\r\n'
check "... the client's id when it came before the bad header" door_error 400 bad_request door-400
req GET /healthz -H 'X-Request-ID: door-400b' -H "X-Junk: a$(printf '\x7f')b"
check "400 (DEL in a header value): bad_request" door_error 400 bad_request
req POST /auth/logout -H 'X-Request-ID: door-411' -H 'Authorization: Bearer x'
check "411 (POST with neither Content-Length nor Transfer-Encoding): length_required, the client's id" \
	door_error 411 length_required door-411
req POST /auth/register -H 'X-Request-ID: door-411b'
check "411 for a body-less register too: lighttpd refuses before any module (docs/NOTES.md)" \
	door_error 411 length_required door-411b
head -c 200000 /dev/zero | tr '\0' 'a' >"$STACK_DIR/big"
req POST /auth/register -H 'X-Request-ID: door-413' -H 'Content-Type: application/json' --data-binary @"$STACK_DIR/big"
check "413 (200 kB body): payload_too_large, the client's id" door_error 413 payload_too_large door-413
check "... states the workers' limit: max_bytes 65536, 'request body over 65536 bytes'" \
	is_json '[.max_bytes, .detail] | @json' '[65536,"request body over 65536 bytes"]'
req POST /auth/register -H 'X-Request-ID: not valid!' -H 'Content-Type: application/json' --data-binary @"$STACK_DIR/big"
check "413 with an invalid X-Request-ID: a fresh one" door_error 413 payload_too_large fresh
req GET "/healthz?$(head -c 20000 /dev/zero | tr '\0' 'q')" -H 'X-Request-ID: door-414'
check "a 20 kB URL: 431 header_fields_too_large (lighttpd has no 414; the line counts in the 16 KiB)" \
	door_error 431 header_fields_too_large fresh
req GET /healthz -H 'X-Request-ID: door-431' -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' 'h')"
check "431 (20 kB header): header_fields_too_large" door_error 431 header_fields_too_large fresh
req BREW /healthz -H 'X-Request-ID: door-501'
check "501 (BREW): not_implemented, a fresh id (lighttpd stops at the request line)" door_error 501 not_implemented fresh
raw GET /healthz 'GET /healthz HTTP/1.7\r\nHost: door\r\n\r\n'
check "505 (HTTP/1.7): http_version_not_supported" door_error 505 http_version_not_supported fresh
req GET /assets/no-such-file.js -H 'X-Request-ID: door-404'
check "a missing static file: 404 not_found in the envelope" door_error 404 not_found door-404

# What still reaches the workers, untouched.
req GET /healthz -H 'X-Request-ID: door-ok'
check "an ordinary request still reaches a worker, its X-Request-ID echoed" \
	bash -c '[ "$0" = 200 ] && [ "$1" = door-ok ]' "$STATUS" "$(header X-Request-ID)"
req GET /no/such/path -H 'X-Request-ID: door-w404'
check "the worker's own 404 is the worker's (its log line has the id)" \
	bash -c '[ "$0" = 404 ] && grep -q "\"request_id\":\"door-w404\"" "$1"' "$STATUS" "$STACK_DIR/lighttpd.log"
json POST /auth/register '{"email":"door@example.io","password":"door-pass-1"}'
check "register with a body: 201" is_status 201
json POST /auth/login '{"email":"door@example.io","password":"door-pass-1"}'
token=$(printf '%s' "$BODY" | jq -r .access_token)
req POST /auth/logout -H "Authorization: Bearer $token" -H 'Content-Length: 0'
check "logout with Content-Length: 0 (what a client must send through lighttpd): 204" is_status 204
check "the door's answers never reach a worker (no worker logged door-404, door-411, door-413)" \
	bash -c '! grep -qE "\"request_id\":\"door-(404|411|413)\"" "$0"' "$STACK_DIR/lighttpd.log"

# --- (a) slowloris from 127.0.0.2, others from 127.0.0.3 --------------------------
python3 "$CLIENTS" slowloris "$HTTP_PORT" 127.0.0.2 300 2 12 >"$STACK_DIR/slow.out" &
slow=$!
sleep 3
lat=()
ok=0
for _ in $(seq 1 20); do
	out=$(curl -s --interface 127.0.0.3 -o /dev/null -w '%{http_code} %{time_total}' --max-time 5 "$BASE/healthz")
	[ "${out% *}" = 200 ] && ok=$((ok + 1))
	lat+=("$(awk -v t="${out#* }" 'BEGIN { printf "%d", t * 1000000 }')") # µs
done
max=$(printf '%s\n' "${lat[@]}" | sort -n | tail -n 1)
med=$(printf '%s\n' "${lat[@]}" | sort -n | sed -n 10p)
echo "# 127.0.0.3 during 300 slowloris connections: median $((med / 1000)).$((med % 1000 / 100)) ms, max $((max / 1000)).$((max % 1000 / 100)) ms"
check "300 slowloris connections from 127.0.0.2: 127.0.0.3 gets 20 of 20 answers" [ "$ok" = 20 ]
check "... quickly (max $((max / 1000)) ms < 500)" [ "$max" -lt 500000 ]
wait "$slow"
check "... while the 300 were still open, unanswered: $(cat "$STACK_DIR/slow.out")" \
	grep -q '^open=300 answered=0 closed=0$' "$STACK_DIR/slow.out"

# --- (b) 200 partial bodies from 127.0.0.2: capped --------------------------------
sleep 0.5
python3 "$CLIENTS" partial "$HTTP_PORT" 127.0.0.2 200 30 >"$STACK_DIR/partial.out" 2>"$STACK_DIR/partial.err" \
	< <(sleep 30) &
part=$!
for _ in $(seq 1 100); do [ -s "$STACK_DIR/partial.out" ] && break; sleep 0.1; done
echo "# 200 POSTs with part of a body from 127.0.0.2: $(cat "$STACK_DIR/partial.out")"
check "200 partial bodies from one address: exactly $CAP held, $((200 - CAP)) got 503 too_many_connections" \
	grep -qx "refused=$((200 - CAP)) accepted=$CAP other=0" "$STACK_DIR/partial.out"
start=$(date +%s%N)
out=$(curl -s --interface 127.0.0.3 -o /dev/null -w '%{http_code}' --max-time 5 "$BASE/healthz")
ms=$(ms_since "$start")
check "... meanwhile 127.0.0.3 is served ($out in ${ms} ms)" bash -c '[ "$0" = 200 ] && [ "$1" -lt 1000 ]' "$out" "$ms"
req POST /auth/login --interface 127.0.0.2 -H 'X-Request-ID: door-cap' -H 'Content-Type: application/json' \
	--data-binary '{"email":"door@example.io","password":"door-pass-1"}'
check "... and 127.0.0.2's next request: 503 too_many_connections, Retry-After" door_error 503 too_many_connections door-cap
kill "$part" 2>/dev/null
wait "$part" 2>/dev/null
sleep 0.5
req GET /healthz --interface 127.0.0.2
check "once those connections close, 127.0.0.2 is served again" is_status 200

# --- a second lighttpd: 1 worker, 2 s read and worker timeouts --------------------
# (its own log: the worker killed here is logged as "child signalled")
stack_lighttpd_stop
stack_lighttpd_conf "$E2E_BUILDDIR" "$HTTP_PORT" 1 >/dev/null
sed -i -e 's/^server.max-read-idle .*/server.max-read-idle = 2/' \
	-e 's/"read-timeout" *=> *30/"read-timeout" => 2/' "$STACK_DIR/lighttpd.conf"
lighttpd -D -f "$STACK_DIR/lighttpd.conf" 2>"$STACK_DIR/lighttpd2.log" &
LIGHTTPD_PID=$!
stack_wait_port "$HTTP_PORT" 10
wait_workers 1 || echo "# the worker did not come up"

# lighttpd 1.4.69 sends no 408 over HTTP/1.1: a request that stalls past
# max-read-idle is dropped without an answer (docs/NOTES.md).  The client
# waits 12 s: a cut-off well before that is lighttpd's (the bound leaves
# room for a loaded machine: 4.7 s was seen with the build running).
start=$(date +%s%N)
RAW_WAIT=12 raw POST /auth/register 'POST /auth/register HTTP/1.1\r\nHost: door\r\nX-Request-ID: door-408\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"em'
ms=$(ms_since "$start")
check "a body that stalls: cut off after max-read-idle (2 s here, checked once a second; ${ms} ms), no answer (lighttpd has no 408)" \
	bash -c '[ "$0" = 0 ] && [ "$1" -ge 1500 ] && [ "$1" -lt 8000 ]' "$STATUS" "$ms"
start=$(date +%s%N)
RAW_WAIT=12 raw GET /healthz 'GET /healthz HTTP/1.1\r\nHost: door\r\nX-Req'
ms=$(ms_since "$start")
check "headers that stall: cut off the same way (${ms} ms)" \
	bash -c '[ "$0" = 0 ] && [ "$1" -ge 1500 ] && [ "$1" -lt 8000 ]' "$STATUS" "$ms"

worker=$(stack_worker_pids | head -n 1)
kill -STOP "$worker"
start=$(date +%s%N)
req GET /healthz -H 'X-Request-ID: door-504'
ms=$(ms_since "$start")
check "504 (the worker stopped; read-timeout 2 s here; ${ms} ms): gateway_timeout" door_error 504 gateway_timeout door-504
kill -CONT "$worker"
wait_workers 1 || echo "# the worker did not come back"

worker=$(stack_worker_pids | head -n 1)
kill -STOP "$worker"
req GET /healthz -H 'X-Request-ID: door-502' &
bg=$!
sleep 0.5
kill -KILL "$worker"
wait "$bg"
# (req ran in a subshell: read back what it recorded)
last=$(tail -n 1 "$E2E_RESPONSES")
BODY=$(jq -r .body <<<"$last")
STATUS=$(jq -r .status <<<"$last")
jq -r '.headers[] | "\(.[0]): \(.[1])"' <<<"$last" >"$HDRS"
# lighttpd 1.4.69 answers this with 500, not 502 ("response not received,
# request sent"): the door keeps lighttpd's status (docs/NOTES.md).
check "the worker killed mid-request: lighttpd's 500, internal, in the envelope" door_error 500 internal door-502
check "... lighttpd logged why" grep -q 'response not received, request sent' "$STACK_DIR/lighttpd2.log"
stack_lighttpd_stop

# --- a third: workers that cannot start -------------------------------------------
stack_lighttpd_conf "$E2E_BUILDDIR" "$HTTP_PORT" 1 >/dev/null
SECRET_KEY_FILE=/nonexistent lighttpd -D -f "$STACK_DIR/lighttpd.conf" 2>"$STACK_DIR/lighttpd3.log" &
LIGHTTPD_PID=$!
stack_wait_port "$HTTP_PORT" 10
seen=
for i in 1 2 3; do
	req GET /healthz -H "X-Request-ID: door-5xx-$i"
	seen="$seen $STATUS"
	case $STATUS in
	500) check "no worker can start (request $i): 500 internal" door_error 500 internal "door-5xx-$i" ;;
	503) check "no worker can start (request $i): 503 service_unavailable, Retry-After" \
		door_error 503 service_unavailable "door-5xx-$i" ;;
	*) fail "no worker can start (request $i): $STATUS" "$BODY" ;;
	esac
done
check "... lighttpd says 503 once the backend is marked down:$seen" bash -c '[[ "$0" == *503* ]]' "$seen"
stack_lighttpd_stop

e2e_finish
