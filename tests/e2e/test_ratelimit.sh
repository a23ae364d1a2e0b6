#!/usr/bin/env bash
# Rate limits (SPEC §3) through lighttpd with several workers sharing one
# table in POSIX shared memory: the limit holds across workers, keys follow
# TRUSTED_PROXIES and IPv6 /64s, login is limited per email too, rejections
# cost no query, killed workers leave nothing locked, chat-admin sees it all.
. "$(dirname "$0")/lib.sh"

admin() { "$E2E_BUILDDIR/chat-admin" "$@"; }

# Accounts first, with limits off; then the policies under test.
export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
e2e_start 4
for u in alice bob carol; do
	json POST /auth/register "{\"email\":\"$u@x.io\",\"password\":\"password-$u\"}"
done
json POST /auth/login '{"email":"alice@x.io","password":"password-alice"}'
alice=$(printf '%s' "$BODY" | jq -r .access_token)
json POST /auth/login '{"email":"bob@x.io","password":"password-bob"}'
bob=$(printf '%s' "$BODY" | jq -r .access_token)

export RATE_LIMIT_AUTH=5/minute RATE_LIMIT_READ=5/minute RATE_LIMIT_CHAT=5/minute
fresh_table() { rm -f "/dev/shm$RATE_LIMIT_SHM"; export RATE_LIMIT_SHM=/chat-e2e-$$-$RANDOM; }
fresh_table
e2e_lighttpd 4

# burst N CURL-ARGS...: N concurrent requests; prints the status codes, and
# keeps each response's headers in $STACK_DIR/burst/N.
burst() {
	local n=$1
	shift
	rm -rf "$STACK_DIR/burst"
	mkdir -p "$STACK_DIR/burst"
	seq 1 "$n" | xargs -P "$n" -I{} curl -s -o /dev/null -D "$STACK_DIR/burst/{}" \
		-w '%{http_code}\n' --max-time 20 "$@"
}
count() { grep -c "^$1\$" || true; }

# --- one limit across 4 workers -----------------------------------------------
codes=$(burst 40 -H 'Content-Type: application/json' \
	--data-binary '{"email":"alice@x.io","password":"wrong password"}' "$BASE/auth/login")
check "40 concurrent logins from one address: exactly 5 admitted ($(echo "$codes" | count 401) x 401, $(echo "$codes" | count 429) x 429)" \
	[ "$(echo "$codes" | count 401)" = 5 -a "$(echo "$codes" | count 429)" = 35 ]
served_by=$(grep -l '" 401 \|^HTTP/1.1 401' "$STACK_DIR"/burst/* | wc -l)
limited_headers_ok=1
for f in $(grep -l '^HTTP/1.1 429' "$STACK_DIR"/burst/*); do
	grep -qi '^Retry-After: [1-9]' "$f" && grep -qi '^RateLimit-Limit: 5' "$f" &&
		grep -qi '^RateLimit-Remaining: 0' "$f" && grep -qi '^RateLimit-Reset: [1-9]' "$f" ||
		limited_headers_ok=0
done
check "every 429 carries Retry-After and RateLimit-* headers" [ "$limited_headers_ok" = 1 ]
json POST /auth/login '{"email":"bob@x.io","password":"password-bob"}'
check "the 429 envelope: rate_limited with retry_after" bash -c '[ "$0" = 429 ] && [ "$(printf "%s" "$1" | jq -r .error)" = rate_limited ] && [ "$(printf "%s" "$1" | jq -r .retry_after)" -ge 1 ]' "$STATUS" "$BODY"
check "... and Retry-After equals retry_after" [ "$(header Retry-After)" = "$(printf '%s' "$BODY" | jq -r .retry_after)" ]
json POST /auth/register '{"email":"dave@x.io","password":"password-dave"}'
check "register shares the auth class of the address: 429" is_error 429 rate_limited
check "... and stored nothing" [ "$(stack_psql chat -tA -c "SELECT count(*) FROM chat.users WHERE email = 'dave@x.io'")" = 0 ]

# --- read (per user) -------------------------------------------------------------
codes=$(burst 40 -H "Authorization: Bearer $alice" "$BASE/auth/me")
check "40 concurrent reads by one user: exactly 5 admitted" \
	[ "$(echo "$codes" | count 200)" = 5 -a "$(echo "$codes" | count 429)" = 35 ]
req GET /auth/me -H "Authorization: Bearer $bob"
check "another user has a limit of his own" is_status 200
check "admitted answers carry RateLimit-Limit and Remaining" \
	[ "$(header RateLimit-Limit)" = 5 -a "$(header RateLimit-Remaining)" = 4 ]
for i in 3 2 1 0; do req GET /auth/me -H "Authorization: Bearer $bob"; done
check "RateLimit-Remaining counts down to 0" [ "$STATUS" = 200 -a "$(header RateLimit-Remaining)" = 0 ]
req GET /auth/me -H "Authorization: Bearer $bob"
check "the sixth is refused" is_error 429 rate_limited

# --- chat (per user): every POST under /chat/ ---------------------------------------
json POST /chat/conversations '{"title":"limits"}' -H "Authorization: Bearer $bob"
check "bob's first chat write is admitted" is_status 201
conv=$(printf '%s' "$BODY" | jq -r .id)
codes=$(burst 40 -H "Authorization: Bearer $bob" -H 'Content-Type: application/json' \
	--data-binary '{"body":"hello"}' "$BASE/chat/conversations/$conv/messages")
check "40 concurrent chat writes by one user: exactly 4 more admitted (5 with the create)" \
	[ "$(echo "$codes" | count 201)" = 4 -a "$(echo "$codes" | count 429)" = 36 ]
check "... and exactly 4 messages stored" \
	[ "$(stack_psql chat -tA -c "SELECT count(*) FROM chat.messages WHERE conversation_id = $conv")" = 4 ]
json POST /chat/conversations '{"title":"mine"}' -H "Authorization: Bearer $alice"
check "another user's chat writes are not limited by bob's" is_status 201

# --- keys: X-Forwarded-For, trusted proxies, IPv6 /64 ------------------------------
fresh_table
e2e_lighttpd 4
login_as() { # XFF EMAIL
	json POST /auth/login "{\"email\":\"$2\",\"password\":\"wrong password\"}" -H "X-Forwarded-For: $1"
}
spoof_ok=1
for i in $(seq 1 6); do
	login_as "198.51.100.$i" "nobody$i@x.io"
	if [ "$i" -le 5 ]; then [ "$STATUS" = 401 ] || spoof_ok=0; else [ "$STATUS" = 429 ] || spoof_ok=0; fi
done
check "untrusted peer: a spoofed X-Forwarded-For changes nothing (6th is 429)" [ "$spoof_ok" = 1 ]

export TRUSTED_PROXIES=127.0.0.1/32
fresh_table
e2e_lighttpd 4
ok=1
for i in $(seq 1 10); do login_as "198.51.100.$i" "nobody$i@x.io"; [ "$STATUS" = 401 ] || ok=0; done
check "behind a trusted proxy each forwarded client has its own limit" [ "$ok" = 1 ]
for i in 1 2 3 4; do login_as "203.0.113.7" "other$i@x.io"; done
login_as "6.6.6.6, 203.0.113.7" "other5@x.io"
check "a client's own X-Forwarded-For entry cannot reset its count (5th)" is_status 401
login_as "7.7.7.7, 203.0.113.7" "other6@x.io"
check "... the 6th from that client is 429 whatever it prepends" is_error 429 rate_limited
for i in 1 2 3 4 5; do login_as "2001:db8:aa:bb::$i" "v6-$i@x.io"; done
login_as "2001:db8:aa:bb:ffff:1:2:3" "v6-6@x.io"
check "IPv6: the 6th address of one /64 is limited with the others" is_error 429 rate_limited
login_as "2001:db8:aa:bc::1" "v6-7@x.io"
check "IPv6: the next /64 is another client" is_status 401
ok=1
for i in $(seq 1 6); do
	login_as "192.0.2.$((100 + i))" "alice@x.io"
	if [ "$i" -le 5 ]; then [ "$STATUS" = 401 ] || ok=0; else [ "$STATUS" = 429 ] || ok=0; fi
done
check "login is limited per email too: 6 addresses, one account, 6th is 429" [ "$ok" = 1 ]
unset TRUSTED_PROXIES

# --- rejected requests cost no query -------------------------------------------------
fresh_table
e2e_lighttpd 4
for i in 1 2 3 4 5; do req GET /auth/me -H "Authorization: Bearer $alice"; done
stack_pg_stop
req GET /auth/me -H "Authorization: Bearer $alice"
check "database stopped: an over-limit request is still 429, not 503" is_error 429 rate_limited
json POST /auth/login '{"email":"carol@x.io","password":"x"}'
check "database stopped: an admitted one is 503" is_error 503 database_unavailable
stack_pg_start

# --- chat-admin ------------------------------------------------------------------------
out=$(admin ratelimit stats)
check "ratelimit stats prints occupancy and rejections" \
	bash -c '[[ "$0" == *"slots"* && "$0" == *"in use"* ]] && printf "%s\n" "$0" | grep -Eq "^read +[0-9]+ +[1-9][0-9]* "' "$out"
echo "$out" | sed 's/^/# /'
# The ratelimit commands need the segment's name only: no secret, no database.
out2=$(env -i PATH="$PATH" RATE_LIMIT_SHM="$RATE_LIMIT_SHM" "$E2E_BUILDDIR/chat-admin" ratelimit stats 2>&1); rc=$?
check "ratelimit stats with RATE_LIMIT_SHM alone in the environment: the same table" \
	bash -c '[ "$0" = 0 ] && [[ "$1" == *"$2"* ]]' "$rc" "$out2" "$(printf '%s\n' "$out" | grep -m1 slots)"
req GET /auth/me -H "Authorization: Bearer $alice"
check "before reset: alice's reads are limited" is_error 429 rate_limited
alice_id=$(stack_psql chat -tA -c "SELECT id FROM chat.users WHERE email = 'alice@x.io'")
out=$(admin ratelimit reset "read:$alice_id")
check "ratelimit reset read:$alice_id clears one entry ($out)" bash -c '[[ "$0" == *"1 entry"* ]]' "$out"
req GET /auth/me -H "Authorization: Bearer $alice"
check "after reset: admitted again" is_status 200
out=$(admin ratelimit reset auth:127.0.0.1)
check "ratelimit reset auth:127.0.0.1 names the worker's key" bash -c '[[ "$0" == *"4:127.0.0.1"* ]]' "$out"
# carol's login above was counted under her lower-cased email.
out=$(admin ratelimit reset login:Carol@X.IO)
check "ratelimit reset login:Carol@X.IO lower-cases like the worker ($out)" \
	bash -c '[[ "$0" == *"login:carol@x.io (1 entry"* ]]' "$out"
out=$(admin ratelimit reset nonsense:1 2>&1); rc=$?
check "an unknown class is refused" [ "$rc" = 64 ]

# --- workers killed with SIGKILL under load ------------------------------------------------
fresh_table
e2e_lighttpd 4
export -f json req 2>/dev/null
(
	end=$((SECONDS + 6))
	while [ $SECONDS -lt $end ]; do
		seq 1 50 | xargs -P 8 -I{} curl -s -o /dev/null --max-time 5 -H "Authorization: Bearer $bob" "$BASE/auth/me"
	done
) &
load=$!
for _ in 1 2 3 4 5 6; do
	sleep 0.7
	pkill -9 -P "$LIGHTTPD_PID" -f chat-fcgi || true
done
wait "$load"
check "all 4 workers respawned and serving after the kills" wait_workers 4
codes=$(burst 20 -H "Authorization: Bearer $alice" "$BASE/auth/me")
check "after 6 rounds of kill -9 under load: a fresh key still gets exactly 5 of 20" \
	[ "$(echo "$codes" | count 200)" = 5 -a "$(echo "$codes" | count 429)" = 15 ]
req GET /auth/me -H "Authorization: Bearer $bob"
check "... and the hammered key is still limited" is_error 429 rate_limited
# Those kills were ours: keep their log apart from the crash check.
mv "$STACK_DIR/lighttpd.log" "$STACK_DIR/lighttpd.log.kill-9"

# --- 8 workers starting at once on a new segment; a mismatched segment ----------------
fresh_table
e2e_lighttpd 8
codes=$(burst 40 -H "Authorization: Bearer $alice" "$BASE/auth/me")
check "8 workers created one segment between them: still exactly 5 of 40" \
	[ "$(echo "$codes" | count 200)" = 5 ]
stack_lighttpd_stop
export RATE_LIMIT_SLOTS=2048
: >"$STACK_DIR/lighttpd.log.mismatch"
stack_lighttpd_conf "$E2E_BUILDDIR" "$HTTP_PORT" 2 >/dev/null
lighttpd -D -f "$STACK_DIR/lighttpd.conf" 2>"$STACK_DIR/lighttpd.log.mismatch" &
LIGHTTPD_PID=$!
stack_wait_port "$HTTP_PORT" 10
sleep 1
req GET /healthz
check "a segment of another size: workers refuse to start (no 200: $STATUS)" [ "$STATUS" != 200 ]
check "... with a clear error naming the segment" grep -q "rate-limit table: .*$RATE_LIMIT_SHM" "$STACK_DIR/lighttpd.log.mismatch"
grep -m1 "rate-limit table" "$STACK_DIR/lighttpd.log.mismatch" | sed 's/^/# /'
stack_lighttpd_stop
unset RATE_LIMIT_SLOTS

e2e_finish
