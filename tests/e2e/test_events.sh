#!/usr/bin/env bash
# Security events (audit.h) end to end through lighttpd with 4 workers: each
# request below is tagged with its own X-Request-ID, and the security lines
# the workers log for it must be exactly the expected ones (type, reason,
# client address resolved through TRUSTED_PROXIES, user id), no more, no
# fewer; requests that are no event log none.  /metrics counts what the log
# shows, and no line carries a password, token, secret or email.
. "$(dirname "$0")/lib.sh"

# lighttpd is the trusted proxy here: X-Forwarded-For names the client, so
# each step below can come from an address of its own.
export TRUSTED_PROXIES=127.0.0.1/32 METRICS_ALLOW=127.0.0.1/32
export RATE_LIMIT_AUTH=3/minute RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
e2e_start 4
LOG=$STACK_DIR/lighttpd.log

rid_n=0
# ask FROM METHOD PATH [curl args...]: one request from client address FROM
# (X-Forwarded-For; "-" for none) with a fresh request id in RID.
ask() {
	local from=$1
	shift
	rid_n=$((rid_n + 1))
	RID=ev-$$-$rid_n
	if [ "$from" = - ]; then
		req "$@" -H "X-Request-ID: $RID"
	else
		req "$@" -H "X-Request-ID: $RID" -H "X-Forwarded-For: $from"
	fi
}
ask_json() { # FROM METHOD PATH JSON [curl args...]
	local from=$1 method=$2 path=$3 data=$4
	shift 4
	ask "$from" "$method" "$path" -H 'Content-Type: application/json' --data-binary "$data" "$@"
}

# The security lines of request RID, one per line as
# "event reason client user_id count class key", once its request line is
# in the log (the worker writes the events right after it).
events_of() {
	local rid=$1
	for _ in $(seq 1 50); do
		grep -q "\"request_id\":\"$rid\",\"method\"" "$LOG" && break
		sleep 0.05
	done
	sleep 0.1
	grep -F "\"request_id\":\"$rid\"" "$LOG" | jq -r 'select(.security == true) |
		[.event, (.reason // "-"), .client, (.user_id // "-" | tostring),
		 (.count // "-" | tostring), (.class // "-"), (.key // "-")] | join(" ")'
}
# expect_events NAME EXPECTED: the lines of events_of $RID, exactly.
expect_events() {
	local got
	got=$(events_of "$RID")
	if [ "$got" = "$2" ]; then pass "$1"; else fail "$1" "expected [$2], got [$got]"; fi
}

# --- accounts -----------------------------------------------------------------
ask_json 198.51.100.1 POST /auth/register '{"email":"alice@example.io","password":"alice has a long one"}'
check "register: 201" is_status 201
alice=$(printf '%s' "$BODY" | jq -r .id)
expect_events "register: user_registered, client from X-Forwarded-For" "user_registered - 198.51.100.1 $alice - - -"

users_before=$(stack_psql chat -At -c "SELECT count(*) FROM users")
ask_json 198.51.100.2 POST /auth/register '{"email":"carol@example.io","password":"PassWord1"}'
check "common password: 422 on field password" bash -c '[ "$0" = 422 ] && [ "$(jq -r .field <<<"$1")" = password ] && [ "$(jq -r .error <<<"$1")" = validation_failed ]' "$STATUS" "$BODY"
check "common password: detail says why" bash -c '[[ "$(jq -r .detail <<<"$0")" == *common* ]]' "$BODY"
expect_events "common password: password_rejected" "password_rejected common 198.51.100.2 - - - -"
check "common password: nothing stored" [ "$(stack_psql chat -At -c "SELECT count(*) FROM users")" = "$users_before" ]

# --- logins -------------------------------------------------------------------
ask_json 198.51.100.3 POST /auth/login '{"email":"alice@example.io","password":"wrong guess 123"}'
check "wrong password: 401" is_error 401 invalid_credentials
expect_events "wrong password: login_failed naming the account" "login_failed wrong_password 198.51.100.3 $alice - - -"
ask_json 198.51.100.3 POST /auth/login '{"email":"nobody@example.io","password":"wrong guess 123"}'
check "unknown email: 401" is_error 401 invalid_credentials
expect_events "unknown email: login_failed without an account" "login_failed unknown_email 198.51.100.3 - - - -"
ask_json 198.51.100.4 POST /auth/login '{"email":"alice@example.io","password":"alice has a long one"}'
check "login: 200" is_status 200
t1=$(printf '%s' "$BODY" | jq -r .access_token)
expect_events "login: login_succeeded" "login_succeeded - 198.51.100.4 $alice - - -"
# Alice's third and last login this minute (3/minute per email too).
ask_json 198.51.100.4 POST /auth/login '{"email":"alice@example.io","password":"alice has a long one"}'
ta=$(printf '%s' "$BODY" | jq -r .access_token)

# --- tokens -------------------------------------------------------------------
ask 198.51.100.5 GET /auth/me -H "Authorization: Bearer $t1"
check "me: 200" is_status 200
expect_events "a good token is no event" ""
ask 198.51.100.5 GET /auth/me
expect_events "no token: token_rejected missing" "token_rejected missing 198.51.100.5 - - - -"
ask 198.51.100.5 GET /auth/me -H "Authorization: Bearer not-a-token"
expect_events "garbage: token_rejected malformed" "token_rejected malformed 198.51.100.5 - - - -"
# The MAC's first character changed: it carries 6 whole bits, so the
# base64url stays canonical (a last character has spare bits that must be 0).
sig=${t1##*.}
ask 198.51.100.5 GET /auth/me -H "Authorization: Bearer ${t1%.*}.$([ "${sig:0:1}" = A ] && echo B || echo A)${sig:1}"
expect_events "forged MAC: token_rejected bad_signature" "token_rejected bad_signature 198.51.100.5 - - - -"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
KEY=$(cat "$SECRET_KEY_FILE")
now=$(date +%s)
input="$(printf '{"alg":"HS256","typ":"JWT"}' | b64url).$(printf '{"sub":"%s","iat":%d,"exp":%d,"jti":"%s"}' "$alice" $((now - 100)) $((now - 10)) "$(openssl rand -hex 16)" | b64url)"
expired="$input.$(printf '%s' "$input" | openssl dgst -sha256 -hmac "$KEY" -binary | b64url)"
ask 198.51.100.5 GET /auth/me -H "Authorization: Bearer $expired"
expect_events "expired: token_rejected expired" "token_rejected expired 198.51.100.5 - - - -"
none="$(printf '{"alg":"none"}' | b64url).$(printf '{"sub":"%s"}' "$alice" | b64url)."
ask 198.51.100.5 GET /auth/me -H "Authorization: Bearer $none"
expect_events "alg none: token_rejected algorithm" "token_rejected algorithm 198.51.100.5 - - - -"

ask 198.51.100.6 POST /auth/logout -H "Authorization: Bearer $t1" -H 'Content-Length: 0'
check "logout: 204" is_status 204
expect_events "logout: sessions_revoked, one" "sessions_revoked logout 198.51.100.6 $alice 1 - -"
ask 198.51.100.6 GET /auth/me -H "Authorization: Bearer $t1"
expect_events "revoked token: token_rejected revoked, with its user" "token_rejected revoked 198.51.100.6 $alice - - -"

# --- password change ----------------------------------------------------------
ask_json 198.51.100.7 POST /auth/register '{"email":"dave@example.io","password":"dave has a long one"}'
dave=$(printf '%s' "$BODY" | jq -r .id)
ask_json 198.51.100.7 POST /auth/login '{"email":"dave@example.io","password":"dave has a long one"}'
t2=$(printf '%s' "$BODY" | jq -r .access_token)
ask_json 198.51.100.7 POST /auth/login '{"email":"dave@example.io","password":"dave has a long one"}'
check "dave has two sessions" is_status 200
ask_json 198.51.100.8 POST /auth/password '{"current_password":"not it at all","new_password":"a new long one"}' -H "Authorization: Bearer $t2"
check "wrong current password: 401" is_error 401 invalid_credentials
expect_events "wrong current password: login_failed" "login_failed wrong_current_password 198.51.100.8 $dave - - -"
ask_json 198.51.100.8 POST /auth/password '{"current_password":"dave has a long one","new_password":"iloveyou!"}' -H "Authorization: Bearer $t2"
check "common new password: 422 on new_password" bash -c '[ "$0" = 422 ] && [ "$(jq -r .field <<<"$1")" = new_password ]' "$STATUS" "$BODY"
expect_events "common new password: password_rejected" "password_rejected common 198.51.100.8 $dave - - -"
ask_json 198.51.100.9 POST /auth/password '{"current_password":"dave has a long one","new_password":"a new long one"}' -H "Authorization: Bearer $t2"
check "password change: 204" is_status 204
expect_events "password change: password_changed, then both sessions revoked" "password_changed - 198.51.100.9 $dave - - -
sessions_revoked password_changed 198.51.100.9 $dave 2 - -"

# --- rate limits --------------------------------------------------------------
# auth: 3 per minute per address; the 4th from one address is refused.
for i in 1 2 3; do
	ask_json 198.51.100.10 POST /auth/login "{\"email\":\"x$i@example.io\",\"password\":\"wrong guess 123\"}"
done
ask_json 198.51.100.10 POST /auth/login '{"email":"x4@example.io","password":"wrong guess 123"}'
check "4th from one address: 429" is_error 429 rate_limited
expect_events "address over its limit: rate_limited auth/address, no login_failed" "rate_limited - 198.51.100.10 - - auth address"
# login: 3 per minute per email, from three other addresses.
for i in 11 12 13; do
	ask_json "198.51.100.$i" POST /auth/login '{"email":"erin@example.io","password":"wrong guess 123"}'
done
ask_json 198.51.100.14 POST /auth/login '{"email":"ERIN@example.io","password":"wrong guess 123"}'
check "4th for one email: 429" is_error 429 rate_limited
expect_events "email over its limit: rate_limited login/email" "rate_limited - 198.51.100.14 - - login email"

# --- access -------------------------------------------------------------------
ask_json 198.51.100.20 POST /auth/register '{"email":"bob@example.io","password":"bob has a long one"}'
bob=$(printf '%s' "$BODY" | jq -r .id)
ask_json 198.51.100.20 POST /auth/login '{"email":"bob@example.io","password":"bob has a long one"}'
tb=$(printf '%s' "$BODY" | jq -r .access_token)
ask_json 198.51.100.21 POST /chat/conversations '{"title":"t","members":["bob@example.io"]}' -H "Authorization: Bearer $ta"
conv=$(printf '%s' "$BODY" | jq -r .id)
ask_json 198.51.100.22 POST "/chat/conversations/$conv/members" '{"email":"alice@example.io"}' -H "Authorization: Bearer $tb"
check "member adds a member: 403" is_error 403 forbidden
expect_events "owner-only action by a member: access_denied" "access_denied owner_only 198.51.100.22 $bob - - -"
ask_json 198.51.100.21 POST "/chat/conversations/$conv/messages" '{"body":"mine"}' -H "Authorization: Bearer $ta"
msg=$(printf '%s' "$BODY" | jq -r .id)
ask 198.51.100.23 DELETE "/chat/conversations/$conv/messages/$msg" -H "Authorization: Bearer $tb"
check "deleting another's message: 403" is_error 403 forbidden
expect_events "another's message: access_denied sender_only" "access_denied sender_only 198.51.100.23 $bob - - -"

ask 203.0.113.99 GET /metrics
check "metrics from outside METRICS_ALLOW: 404" is_error 404 not_found
expect_events "metrics from outside: metrics_denied, client behind the proxy" "metrics_denied - 203.0.113.99 - - - -"
ask - GET /metrics
check "metrics from loopback: 200" is_status 200
expect_events "an allowed scrape is no event" ""

# --- totals -------------------------------------------------------------------
# Every event line in the log, against the summed counters of the segment.
sleep 0.3
ask - GET /metrics
for ev in login_failed login_succeeded user_registered password_changed password_rejected \
	sessions_revoked token_rejected rate_limited access_denied metrics_denied; do
	in_log=$(grep -F '"security":true' "$LOG" | jq -r "select(.event == \"$ev\") | .event" | wc -l)
	in_metrics=$(printf '%s\n' "$BODY" | sed -n "s/^chat_security_events_total{event=\"$ev\"} //p")
	check "metrics: $ev counted as logged ($in_log)" [ "$in_metrics" = "$in_log" ]
done
# The requests outside expect_events too: 1 + 1 register, 4 + 5 + 2 logins
# and tokens, 7 for dave, 3 + 1 and 3 + 1 rate limits, 4 for bob, 1 scrape.
check "the log has exactly the 33 expected security lines" [ "$(grep -c -F '"security":true' "$LOG")" = 33 ]

secrets=("alice has a long one" "a new long one" "dave has a long one" "wrong guess 123"
	PassWord1 "iloveyou!" "$t1" "$t2" "$ta" "$tb" "$KEY" "$(cat "$STACK_DIR/secrets/pg_app_password")"
	alice@example.io bob@example.io nobody@example.io erin@example.io)
short= leaks=
for s in "${secrets[@]}"; do
	[ "${#s}" -ge 8 ] || short="$short [$s]"
	grep -F -q -- "$s" "$LOG" && leaks="$leaks [$s]"
done
check "the tokens looked for are real ones" [ -z "$short" ]
check "no password, token, secret or email in the log" [ -z "$leaks" ]

# --- start-up refusal ---------------------------------------------------------
out=$(env -i PATH="$PATH" APP_MODE=TEST SECRET_KEY=short-Secret-9 "$E2E_BUILDDIR/chat-fcgi" </dev/null 2>&1)
rc=$?
check "bad configuration: exit 78" [ "$rc" = 78 ]
check "bad configuration: one config_rejected line naming the variable, not its value" \
	bash -c '[ "$(wc -l <<<"$0")" = 1 ] && [ "$(jq -r .event <<<"$0")" = config_rejected ] && [ "$(jq -r .security <<<"$0")" = true ] && [[ "$(jq -r .msg <<<"$0")" == *SECRET_KEY* ]] && [[ "$0" != *short-Secret-9* ]]' "$out"

e2e_finish
