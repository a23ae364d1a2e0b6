#!/usr/bin/env bash
# The web client (web/) in a real browser: Debian's chromium driven by
# playwright-core (tests/web/browser.mjs), against lighttpd serving web/ with
# its Content-Security-Policy, 2 workers and PostgreSQL over TLS.  Two users
# in two browser contexts register, start a conversation and see each
# other's messages by polling; hostile bodies stay text; a 429 is shown and
# waited out; polling stays within the read limit; 401/422 are shown; log
# out, reload and tabs; "load older" over a seeded history.  docs/CLIENT.md
# describes the client; screenshots go to $SCREENSHOT_DIR (when run by hand
# with SCREENSHOT_DIR=docs/screenshots, the ones in the repository).
. "$(dirname "$0")/lib.sh"

NODE_DIR=${CHAT_NODE_DIR:-$E2E_SRCDIR/tests/web}
command -v node >/dev/null || { echo "Bail out! node is missing (scripts/install-deps.sh)"; exit 99; }
[ -d "$NODE_DIR/node_modules/playwright-core" ] ||
	{ echo "Bail out! node modules missing: run npm ci in tests/web"; exit 99; }
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "Bail out! $CHROMIUM is missing (scripts/install-deps.sh)"; exit 99; }

# The read limit (60/minute per user) and the chat limit (5/minute per user)
# stay at their defaults: the test shows the client lives within them.  The
# auth limit counts per client address, and every browser here is
# 127.0.0.1: 10 registrations and logins (three users, a 422, a wrong
# password, signing in again) within a minute would meet 5/minute, which is
# not what this test is about (test_ratelimit.sh is).
export RATE_LIMIT_AUTH=50/minute
unset RATE_LIMIT_CHAT RATE_LIMIT_READ
e2e_start 2
T0=$SECONDS

# A user with a conversation longer than the client's page (50), for "load
# older": created through the API, the messages inserted with SQL, since the
# chat limit admits 5 sends a minute (ids from the sequence in order, one a
# minute apart, like real history).
SEED_EMAIL=olga@example.test SEED_PASSWORD=password-olga SEED_TITLE=History SEED_COUNT=120
json POST /auth/register "{\"email\":\"$SEED_EMAIL\",\"password\":\"$SEED_PASSWORD\",\"display_name\":\"Olga\"}"
check "seed: register the user with a long history" is_status 201
seed_uid=$(printf '%s' "$BODY" | jq -r .id)
json POST /auth/login "{\"email\":\"$SEED_EMAIL\",\"password\":\"$SEED_PASSWORD\"}"
token=$(printf '%s' "$BODY" | jq -r .access_token)
json POST /chat/conversations "{\"title\":\"$SEED_TITLE\"}" -H "Authorization: Bearer $token"
check "seed: create the conversation" is_status 201
seed_cid=$(printf '%s' "$BODY" | jq -r .id)
stack_psql chat -c "
	INSERT INTO chat.messages (conversation_id, sender_id, body, created_at, seq)
	SELECT $seed_cid, $seed_uid, 'seed ' || lpad(g::text, 3, '0'),
	       now() - ($SEED_COUNT - g) * interval '1 minute', g
	FROM generate_series(1, $SEED_COUNT) AS g ORDER BY g;
	UPDATE chat.conversations SET last_message_at = now(), message_count = $SEED_COUNT,
	       last_message_id = (SELECT max(id) FROM chat.messages WHERE conversation_id = $seed_cid),
	       activity = nextval('chat.conversation_activity') WHERE id = $seed_cid;" >/dev/null
req GET "/chat/conversations/$seed_cid/messages?limit=200" -H "Authorization: Bearer $token"
check "seed: $SEED_COUNT messages in order" is_json '[.items[].body]|(length|tostring) + " " + .[0] + " " + .[-1]' \
	"$SEED_COUNT seed 001 seed $SEED_COUNT"

SCREENSHOT_DIR=${SCREENSHOT_DIR:-$STACK_DIR/screenshots}
echo "# browser test against $BASE, screenshots in $SCREENSHOT_DIR"
node_rc=0
while IFS= read -r line; do
	case $line in
	"ok - "*) pass "${line#ok - }" ;;
	"not ok - "*) fail "${line#not ok - }" ;;
	"node exit "*) node_rc=${line#node exit } ;;
	*) echo "$line" ;;
	esac
done < <(BASE=$BASE CHAT_SRCDIR=$E2E_SRCDIR CHAT_NODE_DIR=$NODE_DIR CHROMIUM=$CHROMIUM \
	SEED_EMAIL=$SEED_EMAIL SEED_PASSWORD=$SEED_PASSWORD SEED_TITLE=$SEED_TITLE SEED_COUNT=$SEED_COUNT \
	SCREENSHOT_DIR=$SCREENSHOT_DIR node "$E2E_SRCDIR/tests/web/browser.mjs" 2>&1; echo "node exit $?")
[ "$node_rc" = 99 ] && exit 99
[ "$node_rc" = 0 ] || [ "$E2E_FAILED" -gt 0 ] || fail "browser.mjs exited with status $node_rc"
echo "# browser part took $((SECONDS - T0)) s"
e2e_finish
