#!/usr/bin/env bash
# Auth API (SPEC §2 "Auth"), end to end through lighttpd with 4 workers and
# PostgreSQL over TLS: the whole account life cycle, every validation
# boundary, forged and broken tokens, key rotation, hash upgrade, timing of
# unknown emails, and no secret in any log line or error body.
. "$(dirname "$0")/lib.sh"

# Limits have their own test (test_ratelimit.sh); here they would only get
# in the way of the many requests from one address.
export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
e2e_start 4

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
b64url_decode() {
	local s=$1
	s=$(printf '%s' "$s" | tr -- '-_' '+/')
	while [ $(( ${#s} % 4 )) -ne 0 ]; do s="$s="; done
	printf '%s' "$s" | openssl base64 -A -d
}
hs256() { # KEY SIGNING_INPUT
	printf '%s' "$2" | openssl dgst -sha256 -hmac "$1" -binary | b64url
}
sign() { # KEY HEADER_JSON PAYLOAD_JSON
	local input
	input="$(printf '%s' "$2" | b64url).$(printf '%s' "$3" | b64url)"
	printf '%s.%s' "$input" "$(hs256 "$1" "$input")"
}
KEY=$(cat "$SECRET_KEY_FILE")
ALL_BODIES=$STACK_DIR/bodies
: >"$ALL_BODIES"
remember() { printf '%s\n' "$BODY" >>"$ALL_BODIES"; }

register() { json POST /auth/register "$1"; remember; }
login() { json POST /auth/login "{\"email\":\"$1\",\"password\":\"$2\"}"; remember; }
me() { req GET /auth/me -H "Authorization: Bearer $1"; remember; }
unauthorized() { is_error 401 unauthorized && has_header WWW-Authenticate Bearer; }
# Every worker: 8 requests over 4 workers.
me_everywhere_is() {
	local code=$2
	for _ in 1 2 3 4 5 6 7 8; do me "$1"; [ "$STATUS" = "$code" ] || return 1; done
}

# --- life cycle ---------------------------------------------------------------
register '{"email":"  Alice@Example.IO ","password":"correct horse 1","display_name":" Alice "}'
check "register: 201" is_status 201
check "register: email trimmed and lower-cased" is_json .email alice@example.io
check "register: display name trimmed" is_json .display_name Alice
check "register: id is a positive number" bash -c '[ "$0" -gt 0 ]' "$(printf '%s' "$BODY" | jq -r .id)"
check "register: created_at is RFC 3339 UTC with ms" bash -c '[[ "$0" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$ ]]' "$(printf '%s' "$BODY" | jq -r .created_at)"
check "register: never returns a hash" bash -c '[ "$(printf "%s" "$0" | jq -r "keys|join(\",\")")" = created_at,display_name,email,id ]' "$BODY"
alice_id=$(printf '%s' "$BODY" | jq -r .id)

login alice@example.io 'correct horse 1'
check "login (JSON): 200 bearer token" bash -c '[ "$0" = 200 ] && [ "$(printf "%s" "$1" | jq -r .token_type)" = bearer ] && [ "$(printf "%s" "$1" | jq -r .expires_in)" = 3600 ]' "$STATUS" "$BODY"
t1=$(printf '%s' "$BODY" | jq -r .access_token)
me "$t1"
check "me: the user" bash -c '[ "$0" = 200 ] && [ "$(printf "%s" "$1" | jq -r .id)" = "$2" ]' "$STATUS" "$BODY" "$alice_id"

req POST /auth/login --data-urlencode 'username=ALICE@example.io' --data-urlencode 'password=correct horse 1' \
	-d grant_type=password -d scope= -d client_id=x
remember
check "login with the OAuth2 form (extra fields ignored): 200" is_status 200
t2=$(printf '%s' "$BODY" | jq -r .access_token)
req POST /auth/login --data-urlencode 'username=alice@example.io' -d 'password=a&password=b'
check "form with a field given twice: 400" is_error 400 bad_request
req POST /auth/login -d 'username=alice@example.io'
check "form without password: 422" bash -c '[ "$0" = 422 ] && [ "$(printf "%s" "$1" | jq -r .field)" = password ]' "$STATUS" "$BODY"

logout() { req POST /auth/logout -H "Authorization: Bearer $1" -H 'Content-Length: 0'; remember; }
logout "$t1"
check "logout: 204" is_status 204
check "logged-out token: 401 from every worker" me_everywhere_is "$t1" 401
me "$t1"
check "... with WWW-Authenticate: Bearer" unauthorized
logout "$t1"
check "logout twice: 401" unauthorized
check "the other session still works everywhere" me_everywhere_is "$t2" 200

# --- password change -------------------------------------------------------------
login alice@example.io 'correct horse 1'; t3=$(printf '%s' "$BODY" | jq -r .access_token)
json POST /auth/password '{"current_password":"wrong one!","new_password":"battery staple 2"}' -H "Authorization: Bearer $t2"
check "password change with a wrong current password: 401 invalid_credentials" is_error 401 invalid_credentials
json POST /auth/password '{"current_password":"correct horse 1","new_password":"short"}' -H "Authorization: Bearer $t2"
check "password change to a 5-byte password: 422 new_password" bash -c '[ "$0" = 422 ] && [ "$(printf "%s" "$1" | jq -r .field)" = new_password ]' "$STATUS" "$BODY"
json POST /auth/password '{"current_password":"correct horse 1","new_password":"battery staple 2"}' -H "Authorization: Bearer $t2"
check "password change: 204" is_status 204
check "the token used is revoked everywhere" me_everywhere_is "$t2" 401
check "every other token of the user too" me_everywhere_is "$t3" 401
login alice@example.io 'correct horse 1'
check "the old password no longer works" is_error 401 invalid_credentials
login alice@example.io 'battery staple 2'
check "the new password works" is_status 200
t4=$(printf '%s' "$BODY" | jq -r .access_token)

# --- uniqueness and validation boundaries ----------------------------------------
register '{"email":"A@x.io","password":"pass word 8"}'
check "register A@x.io" is_status 201
check "display name defaults to the local part" is_json .display_name a
register '{"email":"a@x.io","password":"pass word 8"}'
check "a@x.io after A@x.io: 409 email_taken" is_error 409 email_taken

field_is() { bash -c '[ "$0" = 422 ] && [ "$(printf "%s" "$1" | jq -r .field)" = "$2" ] && [ "$(printf "%s" "$1" | jq -r .error)" = validation_failed ]' "$STATUS" "$BODY" "$1"; }
fresh() { echo "u$RANDOM$RANDOM@b.io"; }
rep() { local s="" i; for ((i = 0; i < $1; i++)); do s+=$2; done; printf '%s' "$s"; }

register "{\"email\":\"$(fresh)\",\"password\":\"$(rep 7 p)\"}"
check "password of 7 bytes: 422" field_is password
register "{\"email\":\"$(fresh)\",\"password\":\"$(rep 8 p)\"}"
check "password of 8 bytes: 201" is_status 201
register "{\"email\":\"$(fresh)\",\"password\":\"$(rep 1024 p)\"}"
check "password of 1024 bytes: 201" is_status 201
register "{\"email\":\"$(fresh)\",\"password\":\"$(rep 1025 p)\"}"
check "password of 1025 bytes: 422" field_is password
register "{\"email\":\"$(fresh)\",\"password\":\"$(rep 3 é)xx\"}"
check "password counted in bytes (3 é + 2 = 8 bytes): 201" is_status 201

e254="$(rep 249 e)@x.io"
register "{\"email\":\"$e254\",\"password\":\"pass word 8\"}"
check "email of 254 chars: 201" is_status 201
register "{\"email\":\"e$e254\",\"password\":\"pass word 8\"}"
check "email of 255 chars: 422" field_is email
register "{\"email\":\"$(rep 4 é)@x.io\",\"password\":\"pass word 8\",\"display_name\":\"$(rep 64 é)\"}"
check "display name of 64 chars (128 bytes): 201" is_status 201
register "{\"email\":\"$(fresh)\",\"password\":\"pass word 8\",\"display_name\":\"$(rep 65 n)\"}"
check "display name of 65 chars: 422" field_is display_name
register "{\"email\":\"$(fresh)\",\"password\":\"pass word 8\",\"display_name\":\"   \"}"
check "display name of only spaces: 422" field_is display_name
for bad in 'nobody.x.io' 'a@b@x.io' '@x.io' 'a@' 'a b@x.io' 'a\t@x.io' 'a\u0001@x.io' 'a\u00a0@x.io' 'a\u3000b@x.io' 'a@'; do
	register "{\"email\":\"$bad\",\"password\":\"pass word 8\"}"
	check "email '$bad': 422" field_is email
done
register '{"email":"ab","password":"pass word 8"}'
check "email of 2 chars: 422" field_is email
register '{"password":"pass word 8"}'
check "email missing: 422" field_is email
register '{"email":["a@x.io"],"password":"pass word 8"}'
check "email of the wrong JSON type: 400" is_error 400 bad_request
count=$(stack_psql chat -tA -c "SELECT count(*) FROM chat.users")
check "only the accepted registrations are stored ($count of 7)" [ "$count" = 7 ]

# --- tokens ------------------------------------------------------------------------
payload=$(b64url_decode "$(printf '%s' "$t4" | cut -d. -f2)")
jti=$(printf '%s' "$payload" | jq -r .jti)
now=$(date +%s)
good_payload="{\"sub\":\"$alice_id\",\"iat\":$now,\"exp\":$((now + 600)),\"jti\":\"$jti\"}"
forged=$(sign "$KEY" '{"alg":"HS256","typ":"JWT"}' "$good_payload")
me "$forged"
check "control: a token we sign the server's way is accepted" is_status 200

hdr_none=$(printf '%s' '{"alg":"none","typ":"JWT"}' | b64url)
pl=$(printf '%s' "$good_payload" | b64url)
me "$hdr_none.$pl."
check "alg none: 401" unauthorized
me "$hdr_none.$pl.$(hs256 "$KEY" "$hdr_none.$pl")"
check "alg none with a valid MAC: 401" unauthorized
hdr512=$(printf '%s' '{"alg":"HS512","typ":"JWT"}' | b64url)
me "$hdr512.$pl.$(printf '%s' "$hdr512.$pl" | openssl dgst -sha512 -hmac "$KEY" -binary | b64url)"
check "alg HS512: 401" unauthorized
other_payload=$(printf '%s' "{\"sub\":\"$((alice_id + 1000))\",\"iat\":$now,\"exp\":$((now + 600)),\"jti\":\"$jti\"}" | b64url)
me "$(printf '%s' "$forged" | cut -d. -f1).$other_payload.$(printf '%s' "$forged" | cut -d. -f3)"
check "changed payload: 401" unauthorized
sig=$(printf '%s' "$forged" | cut -d. -f3)
flipped=$( [ "${sig:0:1}" = A ] && echo B || echo A )${sig:1}
me "$(printf '%s' "$forged" | cut -d. -f1,2).$flipped"
check "changed signature: 401" unauthorized
me "$(sign "not-the-key-$KEY" '{"alg":"HS256","typ":"JWT"}' "$good_payload")"
check "wrong key: 401" unauthorized
me "$(sign "$KEY" '{"alg":"HS256","typ":"JWT"}' "{\"sub\":\"$alice_id\",\"iat\":$((now - 7200)),\"exp\":$((now - 3600)),\"jti\":\"$jti\"}")"
check "expired: 401" unauthorized
me "$(sign "$KEY" '{"alg":"HS256","typ":"JWT"}' "{\"sub\":\"$alice_id\",\"iat\":$now,\"jti\":\"$jti\"}")"
check "no exp: 401" unauthorized
me "garbage.garbage"
check "garbage: 401" unauthorized
req GET /auth/me -H "Authorization: Bearer "
check "empty Bearer: 401" unauthorized
req GET /auth/me
check "no Authorization header: 401" unauthorized
req GET /auth/me -H "Authorization: Basic $(printf 'a:b' | base64)"
check "Basic instead of Bearer: 401" unauthorized
me "$(head -c 5000 /dev/zero | tr '\0' 'A')"
check "5 KB token (over TOKEN_MAX_LEN): 401 before any decoding" unauthorized
# lighttpd refuses a header block this large itself (its cap; the door's
# envelope, tests/e2e/test_door.sh); the worker's answer to it (401) is
# proven by tests/unit/test_worker.c.
me "$(head -c 100000 /dev/zero | tr '\0' 'A')"
check "100 KB header: refused with a 4xx ($STATUS), never served" [ "$STATUS" -ge 400 -a "$STATUS" -lt 500 ]
check "the worker serves after all of it" still_serving

# --- key rotation and hash upgrade (restart with new settings) ------------------
hash_before=$(stack_psql chat -tA -c "SELECT password_hash FROM chat.users WHERE id = $alice_id")
cp "$SECRET_KEY_FILE" "$STACK_DIR/secrets/secret_key_old"
openssl rand -hex 32 >"$STACK_DIR/secrets/secret_key_new"
export SECRET_KEY_FILE=$STACK_DIR/secrets/secret_key_new
export SECRET_KEY_PREVIOUS_FILE=$STACK_DIR/secrets/secret_key_old
export SCRYPT_N=11
e2e_lighttpd 4
check "after rotation, a token of the previous key still works everywhere" me_everywhere_is "$t4" 200
login alice@example.io 'battery staple 2'
t5=$(printf '%s' "$BODY" | jq -r .access_token)
NEWKEY=$(cat "$SECRET_KEY_FILE")
check "new tokens are signed with the new key" [ "$(hs256 "$NEWKEY" "$(printf '%s' "$t5" | cut -d. -f1,2)")" = "$(printf '%s' "$t5" | cut -d. -f3)" ]
hash_after=$(stack_psql chat -tA -c "SELECT password_hash FROM chat.users WHERE id = $alice_id")
check "login under new SCRYPT_N re-hashed the password (\$s1\$0a0801 → \$s1\$0b0801)" \
	bash -c '[[ "$0" == "\$s1\$0a0801\$"* ]] && [[ "$1" == "\$s1\$0b0801\$"* ]]' "$hash_before" "$hash_after"
login alice@example.io 'battery staple 2'
check "the upgraded hash verifies" is_status 200
unset SECRET_KEY_PREVIOUS_FILE
e2e_lighttpd 4
me "$t4"
check "without SECRET_KEY_PREVIOUS the old key's token is refused" unauthorized

# --- unknown email vs wrong password ------------------------------------------------
export SCRYPT_N=14
e2e_lighttpd 2
register '{"email":"timing@x.io","password":"right password"}'
login timing@x.io 'wrong password'
wrong_body=$BODY; wrong_status=$STATUS
login nobody@x.io 'wrong password'
check "unknown email and wrong password: byte-identical 401 bodies" \
	[ "$wrong_status$wrong_body" = "$STATUS$BODY" ]
check "... invalid_credentials" is_error 401 invalid_credentials
login_ms() { # EMAIL PASSWORD: total time of one login in ms
	curl -s -o /dev/null -w '%{time_total}' -H 'Content-Type: application/json' \
		--data-binary "{\"email\":\"$1\",\"password\":\"$2\"}" "$BASE/auth/login" |
		awk '{printf "%d\n", $1 * 1000}'
}
# Interleaved, so that whatever else the machine does weighs on all three.
for _ in 1 2 3 4 5 6 7; do
	login_ms timing@x.io 'right password' >>"$STACK_DIR/t_ok"
	login_ms timing@x.io 'wrong password' >>"$STACK_DIR/t_wrong"
	login_ms nobody@x.io 'wrong password' >>"$STACK_DIR/t_unknown"
done
# The fastest successful login bounds the cost of one hash from above
# (noise only adds); wrong-password and unknown-email medians must each be
# at least half of it.  Without the dummy hash an unknown email costs ~1 ms.
t_hash=$(sort -n "$STACK_DIR/t_ok" | head -n 1)
t_wrong=$(sort -n "$STACK_DIR/t_wrong" | sed -n 4p)
t_unknown=$(sort -n "$STACK_DIR/t_unknown" | sed -n 4p)
echo "# SCRYPT_N=14: fastest successful login ${t_hash} ms; medians: wrong password ${t_wrong} ms, unknown email ${t_unknown} ms"
check "wrong password costs at least half a hash (${t_wrong} ms vs ${t_hash} ms)" [ $((t_wrong * 2)) -gt "$t_hash" ]
check "unknown email costs at least half a hash too (${t_unknown} ms vs ${t_hash} ms)" [ $((t_unknown * 2)) -gt "$t_hash" ]

# --- nothing secret leaks ---------------------------------------------------------------
sleep 0.3
secrets=$STACK_DIR/secrets.txt
{
	printf '%s\n' 'correct horse 1' 'battery staple 2' 'right password' "$(rep 1024 p)"
	for t in "$t1" "$t2" "$t3" "$t4" "$t5"; do printf '%s\n' "${t##*.}"; done
	stack_psql chat -tA -c "SELECT substr(password_hash, 5) FROM chat.users"
	cat "$STACK_DIR/secrets/secret_key_old" "$STACK_DIR/secrets/secret_key_new"; echo
	cat "$STACK_DIR/secrets/pg_app_password"; echo
} | grep -v '^$' >"$secrets"
check "no password, hash, token or key in the log" bash -c '! grep -F -f "$0" "$1"' "$secrets" "$STACK_DIR/lighttpd.log"
grep -v '"access_token"' "$ALL_BODIES" >"$STACK_DIR/error_bodies"
check "no password, hash, token or key in any other answer" bash -c '! grep -F -f "$0" "$1"' "$secrets" "$STACK_DIR/error_bodies"

e2e_finish
