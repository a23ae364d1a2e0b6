#!/usr/bin/env bash
# Chat API (SPEC §2 "Chat"), end to end through lighttpd with 4 workers and
# PostgreSQL over TLS: conversations and members with owner-only adds,
# member-only access (404 for everyone else, the same body as a missing id),
# keyset paging walked both ways over 250 messages, the query-parameter
# table, Idempotency-Key sequential and concurrent, the text rules byte for
# byte, 2000 concurrent sends with no acknowledged write lost, and the
# query plans on 100k messages (auto_explain: one statement per request,
# index scans, no sequential scan on messages or members).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/chat_lib.sh"

# Limits have their own test (test_ratelimit.sh); here they would only get
# in the way of the thousands of requests from one user.
export RATE_LIMIT_AUTH=off RATE_LIMIT_CHAT=off RATE_LIMIT_READ=off
# auto_explain in every session, silent until the plan section turns it on.
STACK_PG_EXTRA="$STACK_PG_EXTRA
session_preload_libraries = 'auto_explain'
auto_explain.log_min_duration = -1"
e2e_start 4
T0=$SECONDS

unauthorized() { is_error 401 unauthorized && has_header WWW-Authenticate Bearer; }
rep() { local s="" i; for ((i = 0; i < $1; i++)); do s+=$2; done; printf '%s' "$s"; }

user alice@x.io Alice; A=$TOKEN; alice_id=$UID_
user bob@x.io Bob; B=$TOKEN; bob_id=$UID_
user carol@x.io Carol; C=$TOKEN
user dave@x.io Dave; D=$TOKEN; dave_id=$UID_
user erin@x.io Erin; erin_id=$UID_

# --- 1. conversations, members, access ------------------------------------------
section "Alice, Bob and Carol"
post "$A" /chat/conversations '{"title":"  Lunch  ","members":["BOB@x.io"," bob@x.io ","alice@x.io"]}'
check "create: 201" is_status 201
c1=$(jv .id)
check "create: the conversation's fields, title trimmed" bash -c '[ "$(printf "%s" "$0" | jq -r "[keys[]]|join(\",\")")" = created_at,id,last_message_at,members,owner_id,title ] &&
	[ "$(printf "%s" "$0" | jq -r .title)" = Lunch ] && [ "$(printf "%s" "$0" | jq -r .owner_id)" = "$1" ] &&
	[ "$(printf "%s" "$0" | jq -r .last_message_at)" = null ] && [ "$(printf "%s" "$0" | jq -r "(.id|type)")" = number ]' "$BODY" "$alice_id"
check "create: created_at is RFC 3339 UTC with ms" bash -c '[[ "$0" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$ ]]' "$(jv .created_at)"
check "create: members are the owner and Bob, once each (duplicates and the owner's own email folded)" \
	is_json '[.members[]|"\(.id):\(.display_name):\(.role)"]|join(",")' "$alice_id:Alice:owner,$bob_id:Bob:member"

post "$A" /chat/conversations '{"title":"Solo"}'
check "create without members: 201, the owner alone" bash -c '[ "$0" = 201 ] && [ "$(printf "%s" "$1" | jq -r ".members|length")" = 1 ]' "$STATUS" "$BODY"
c2=$(jv .id)

convs_before=$(sql "SELECT count(*) FROM chat.conversations")
members_before=$(sql "SELECT count(*) FROM chat.members")
post "$A" /chat/conversations '{"title":"Nope","members":["bob@x.io","nobody@x.io","dave@x.io"]}'
check "create with an unknown member email: 422 field members" field_is members
check "... naming its position" is_json .detail "members[1] is not a registered email"
check "... and nothing was created" [ "$(sql "SELECT count(*) FROM chat.conversations")/$(sql "SELECT count(*) FROM chat.members")" = "$convs_before/$members_before" ]
post "$A" /chat/conversations "{\"title\":\"$(rep 200 é)\"}"
check "title of 200 code points (400 bytes): 201" is_status 201
post "$A" /chat/conversations "{\"title\":\"$(rep 201 é)\"}"
check "title of 201 code points: 422" field_is title
post "$A" /chat/conversations '{"title":"   "}'
check "title of spaces only: 422" field_is title
post "$A" /chat/conversations '{"members":[]}'
check "title missing: 422" field_is title
post "$A" /chat/conversations '{"title":7}'
check "title of the wrong JSON type: 400" bad_request_is title
post "$A" /chat/conversations '{"title":"t","members":"bob@x.io"}'
check "members not an array: 400" bad_request_is members
post "$A" /chat/conversations '{"title":"t","members":["bob@x.io",3]}'
check "a member that is not a string: 400" bad_request_is members
post "$A" /chat/conversations '{"title":"t","members":["not-an-email"]}'
check "a malformed member email: 422" field_is members
post "$A" /chat/conversations "{\"title\":\"t\",\"members\":$(jq -cn '[range(101)|"bob@x.io"]')}"
check "101 member emails: 422" field_is members
post "$A" /chat/conversations "{\"title\":\"t\",\"members\":$(jq -cn '[range(100)|"bob@x.io"]')}"
check "100 member emails: 201" is_status 201
c100=$(jv .id)
check "nothing was created by the rejected ones" [ "$(sql "SELECT count(*) FROM chat.conversations")" = $((convs_before + 2)) ]

# Activity: the newest conversation first; a message moves its conversation up.
get "$A" "/chat/conversations"
first_before=$(jv '.items[0].id')
post "$B" "/chat/conversations/$c1/messages" '{"body":"hi Alice"}'
check "Bob (member) posts: 201" is_status 201
check "the message's fields" is_json '[keys[]]|join(",")' body,conversation_id,created_at,deleted,id,sender_id,sender_name
check "... conversation, sender, sender_name, body" is_json '"\(.conversation_id) \(.sender_id) \(.sender_name) \(.body)"' "$c1 $bob_id Bob hi Alice"
m1=$(jv .id)
post "$A" "/chat/conversations/$c1/messages" '{"body":"hi Bob"}'
check "Alice (owner) posts: 201" is_status 201
m2=$(jv .id); m2_at=$(jv .created_at)
get "$A" "/chat/conversations"
check "Alice's list: most recent activity first (Lunch, after a message, before newer ones)" \
	bash -c '[ "$0" != "$1" ] && [ "$(printf "%s" "$2" | jq -r ".items[0].id")" = "$1" ]' "$first_before" "$c1" "$BODY"
check "... with last_message_at of the newest message" is_json ".items[0].last_message_at" "$m2_at"
check "... and next_before null at the end" is_json .next_before null
get "$B" "/chat/conversations"
check "Bob's list: his two conversations, Lunch (newest activity) first" is_json '[.items[].id]|join(",")' "$c1,$c100"
get "$B" "/chat/conversations/$c1/messages"
check "Bob reads both messages in id order" is_json '[.items[]|"\(.id):\(.sender_name):\(.body)"]|join(",")' "$m1:Bob:hi Alice,$m2:Alice:hi Bob"
get "$A" "/chat/conversations/$c1"
check "GET conversation: fields and members with roles" bash -c '[ "$0" = 200 ] &&
	[ "$(printf "%s" "$1" | jq -r "[.members[]|\"\(.id):\(.display_name):\(.role)\"]|join(\",\")")" = "$2:Alice:owner,$3:Bob:member" ] &&
	[ "$(printf "%s" "$1" | jq -r .last_message_at)" = "$4" ]' "$STATUS" "$BODY" "$alice_id" "$bob_id" "$m2_at"

# next_before: Alice walks her 5 conversations 2 at a time.
post "$A" /chat/conversations '{"title":"Fifth"}'
get "$A" "/chat/conversations?limit=200"
all_convs=$(jv '[.items[].id]|join(",")')
walked="" cursor="" pages=0
while [ "$pages" -lt 10 ]; do
	get "$A" "/chat/conversations?limit=2${cursor:+&before=$cursor}"
	[ "$STATUS" = 200 ] || break
	walked+="$(jv '[.items[].id|tostring]|join(",")'),"
	pages=$((pages + 1))
	cursor=$(jv .next_before)
	[ "$cursor" = null ] && break
	[ "$(jv '.items|length')" = 2 ] || break
done
check "walking the list with limit=2 and next_before: 5 conversations once each, in order, 3 pages" \
	[ "${walked%,}/$pages/$(echo "$all_convs" | tr ',' '\n' | wc -l)" = "$all_convs/3/5" ]
get "$A" "/chat/conversations?limit=5"
check "a page that ends exactly at the last conversation: next_before null" is_json '"\(.items|length) \(.next_before)"' "5 null"
get "$A" "/chat/conversations?limit=4"
check "a page with more to come: next_before is a number" is_json '"\(.items|length) \(.next_before|type)"' "4 number"

# Carol is no member: every route of the conversation, and of ids that do
# not exist, answers the very same 404.
get "$C" "/chat/conversations"
check "Carol's list is empty" is_json '"\(.items|length) \(.next_before)"' "0 null"
not_found_body=""
same404=1
carol() {
	"$@"
	not_found || { echo "#   $STATUS $BODY"; same404=0; }
	[ -z "$not_found_body" ] && not_found_body=$BODY
	[ "$BODY" = "$not_found_body" ] || same404=0
}
for id in "$c1" "$c2" 999999 9223372036854775807; do
	carol get "$C" "/chat/conversations/$id"
	carol get "$C" "/chat/conversations/$id/messages"
	carol get "$C" "/chat/conversations/$id/messages?after=1&limit=5"
	carol post "$C" "/chat/conversations/$id/messages" '{"body":"let me in"}'
	carol post "$C" "/chat/conversations/$id/messages" '{"body":"let me in"}' -H 'Idempotency-Key: carol'
	carol post "$C" "/chat/conversations/$id/members" '{"email":"carol@x.io"}'
done
check "Carol: 404 on all 4 routes of 2 conversations and 2 missing ids, one identical body" [ "$same404" = 1 ]
check "... and she stored nothing" [ "$(sql "SELECT count(*) FROM chat.members m JOIN chat.users u ON u.id = m.user_id WHERE u.email = 'carol@x.io'")/$(sql "SELECT count(*) FROM chat.messages")" = "0/2" ]

# Only the owner adds members.
post "$B" "/chat/conversations/$c1/members" '{"email":"dave@x.io"}'
check "Bob (member) adds Dave: 403 forbidden" is_error 403 forbidden
check "... and Dave is not a member" [ "$(sql "SELECT count(*) FROM chat.members WHERE user_id = $dave_id")" = 0 ]
post "$A" "/chat/conversations/$c1/members" '{"email":"bob@x.io"}'
check "Alice adds Bob again: 200, the member" bash -c '[ "$0" = 200 ] && [ "$(printf "%s" "$1" | jq -c .)" = "{\"id\":$2,\"display_name\":\"Bob\",\"role\":\"member\"}" ]' "$STATUS" "$BODY" "$bob_id"
post "$A" "/chat/conversations/$c1/members" '{"email":"alice@x.io"}'
check "Alice adds herself: 200, role owner" bash -c '[ "$0" = 200 ] && [ "$(printf "%s" "$1" | jq -r .role)" = owner ]' "$STATUS" "$BODY"
members_before=$(sql "SELECT count(*) FROM chat.members")
post "$A" "/chat/conversations/$c1/members" '{"email":"nobody@x.io"}'
check "Alice adds an unknown email: 422 field email" field_is email
check "... and nothing changed" [ "$(sql "SELECT count(*) FROM chat.members")" = "$members_before" ]
post "$A" "/chat/conversations/$c1/members" '{"email":"no at sign"}'
check "a malformed email: 422" field_is email
post "$A" "/chat/conversations/$c1/members" '{"email":["dave@x.io"]}'
check "email of the wrong JSON type: 400" bad_request_is email
post "$A" "/chat/conversations/$c1/members" '{"email":" DAVE@x.io "}'
check "Alice adds Dave (trimmed, case-insensitive): 201, the member" bash -c '[ "$0" = 201 ] && [ "$(printf "%s" "$1" | jq -c .)" = "{\"id\":$2,\"display_name\":\"Dave\",\"role\":\"member\"}" ]' "$STATUS" "$BODY" "$dave_id"
get "$D" "/chat/conversations/$c1/messages"
check "Dave reads the history from before he joined" is_json '.items|length' 2
get "$A" "/chat/conversations/$c1"
check "the members in the order they joined" is_json '[.members[].display_name]|join(",")' "Alice,Bob,Dave"

# Revoked and missing tokens: 401 on every chat route.
json POST /auth/login '{"email":"bob@x.io","password":"password-Bob"}'
B2=$(jv .access_token)
req POST /auth/logout -H "Authorization: Bearer $B2" -H 'Content-Length: 0'
check "Bob's second session logged out: 204" is_status 204
all401=1
for t in "$B2" ""; do
	h=(-H "Authorization: Bearer $t")
	[ -z "$t" ] && h=()
	req GET /chat/conversations "${h[@]}"; unauthorized || all401=0
	json POST /chat/conversations '{"title":"x"}' "${h[@]}"; unauthorized || all401=0
	req GET "/chat/conversations/$c1" "${h[@]}"; unauthorized || all401=0
	json POST "/chat/conversations/$c1/members" '{"email":"erin@x.io"}' "${h[@]}"; unauthorized || all401=0
	json POST "/chat/conversations/$c1/messages" '{"body":"x"}' "${h[@]}"; unauthorized || all401=0
	req GET "/chat/conversations/$c1/messages" "${h[@]}"; unauthorized || all401=0
	req GET "/chat/conversations/999999/messages" "${h[@]}"; unauthorized || all401=0
done
check "logged-out token and no token: 401 with WWW-Authenticate on all 6 routes" [ "$all401" = 1 ]
check "... and nothing was stored" [ "$(sql "SELECT count(*) FROM chat.messages")/$(sql "SELECT count(*) FROM chat.members WHERE user_id = $erin_id")" = 2/0 ]
req DELETE "/chat/conversations/$c1" -H "Authorization: Bearer $A"
check "DELETE on a conversation: 405 with Allow: GET" bash -c '[ "$0" = 405 ] && [ "$1" = GET ]' "$STATUS" "$(header Allow)"

# --- 2. paging ---------------------------------------------------------------------
section "paging over 250 messages"
# bulk_post TOKEN CID PREFIX N OUT: N sends over one keep-alive connection;
# OUT gets one "<response body>\t<status>" line each.
post "$A" /chat/conversations '{"title":"History","members":["bob@x.io"]}'
cp=$(jv .id)
bulk_post "$A" "$cp" pa 125 "$STACK_DIR/pa.out" &
p1=$!
bulk_post "$B" "$cp" pb 125 "$STACK_DIR/pb.out" &
wait $p1 $!
check "250 messages sent by Alice and Bob at once: 250 x 201" [ "$(cat "$STACK_DIR/pa.out" "$STACK_DIR/pb.out" | grep -c $'\t201$')" = 250 ]
mapfile -t ALL < <(sql "SELECT id FROM chat.messages WHERE conversation_id = $cp ORDER BY id")
check "250 rows stored" [ "${#ALL[@]}" = 250 ]
ids() { jv '[.items[].id|tostring]|join(" ")'; }
slice() { echo "${ALL[@]:$1:$2}"; }
msgs() { get "$A" "/chat/conversations/$cp/messages$1"; }

msgs ""
check "no parameters: the last 50, ascending" [ "$(ids)" = "$(slice 200 50)" ]
msgs "?limit=200"
check "limit=200: the last 200" [ "$(ids)" = "$(slice 50 200)" ]
msgs "?limit=1"
check "limit=1: the last one" [ "$(ids)" = "${ALL[249]}" ]
msgs "?after=${ALL[9]}&limit=5"
check "after=ALL[9]&limit=5: ALL[10..14]" [ "$(ids)" = "$(slice 10 5)" ]
msgs "?after=${ALL[9]}"
check "after=ALL[9]: the first 50 after it" [ "$(ids)" = "$(slice 10 50)" ]
msgs "?before=${ALL[100]}&limit=5"
check "before=ALL[100]&limit=5: ALL[95..99]" [ "$(ids)" = "$(slice 95 5)" ]
msgs "?before=${ALL[3]}"
check "before=ALL[3]: only the 3 below it" [ "$(ids)" = "$(slice 0 3)" ]
msgs "?before=${ALL[0]}"
check "before the first: empty" is_json '.items|length' 0
msgs "?after=${ALL[249]}"
check "after the last: empty" is_json '.items|length' 0
msgs "?after=0&limit=5"
check "after=0 (seen nothing yet): the first 5" [ "$(ids)" = "$(slice 0 5)" ]
msgs "?after=${ALL[10]}&before=${ALL[20]}"
check "after and before together: the window between them (ALL[11..19])" [ "$(ids)" = "$(slice 11 9)" ]
msgs "?after=${ALL[10]}&before=${ALL[20]}&limit=3"
check "... limited from its start (ALL[11..13])" [ "$(ids)" = "$(slice 11 3)" ]
msgs "?after=${ALL[20]}&before=${ALL[10]}"
check "... and empty when after >= before" is_json '.items|length' 0
msgs "?limit=%33"
check "a percent-encoded limit is decoded (limit=%33: 3 items)" is_json '.items|length' 3
check "messages of another conversation never appear" [ "$(sql "SELECT count(*) FROM chat.messages WHERE conversation_id <> $cp AND id BETWEEN ${ALL[0]} AND ${ALL[249]}")" = 0 ]

# Walk the whole history forwards and backwards, 7 at a time.
walk_ok=1 got=() after=$((ALL[0] - 1)) pages=0
while [ "$pages" -lt 100 ]; do
	msgs "?after=$after&limit=7"
	read -ra page <<<"$(ids)"
	[ "${#page[@]}" -eq 0 ] && break
	[ "${#page[@]}" -eq 7 ] || [ "$(( ${#got[@]} + ${#page[@]} ))" -eq 250 ] || walk_ok=0
	got+=("${page[@]}")
	after=${page[-1]}
	pages=$((pages + 1))
done
check "forward walk (after, limit=7): $pages pages of exactly 7, all 250 once, in order" \
	[ "$walk_ok" = 1 -a "${got[*]}" = "${ALL[*]}" -a "$pages" = 36 ]
walk_ok=1 got=() q="?limit=7" pages=0
while [ "$pages" -lt 100 ]; do
	msgs "$q"
	read -ra page <<<"$(ids)"
	[ "${#page[@]}" -eq 0 ] && break
	[ "${#page[@]}" -eq 7 ] || [ "$(( ${#got[@]} + ${#page[@]} ))" -eq 250 ] || walk_ok=0
	got=("${page[@]}" "${got[@]}")
	q="?before=${page[0]}&limit=7"
	pages=$((pages + 1))
done
check "backward walk (before, limit=7): $pages pages, all 250 once, each page ascending" \
	[ "$walk_ok" = 1 -a "${got[*]}" = "${ALL[*]}" -a "$pages" = 36 ]

# The parameter table: out of range or malformed is 422 naming the parameter.
bad_table=1
for v in 0 201 -1 abc "" 1e3 5.0 "+5" "05" "%205" "%2B5" 99999999999999999999 "50&limit=60"; do
	msgs "?limit=$v"
	field_is limit || { echo "#   limit='$v': $STATUS $BODY"; bad_table=0; }
	get "$A" "/chat/conversations?limit=$v"
	field_is limit || { echo "#   list limit='$v': $STATUS $BODY"; bad_table=0; }
done
for p in after before; do
	for v in -5 1e3 abc "" "+1" "01" "00" "-0" 1.5 0x10 99999999999999999999 9223372036854775808 "5&$p=6"; do
		msgs "?$p=$v"
		field_is "$p" || { echo "#   $p='$v': $STATUS $BODY"; bad_table=0; }
	done
done
msgs "?before=0"
field_is before || { echo "#   before='0': $STATUS $BODY"; bad_table=0; }
for v in 0 -5 abc 99999999999999999999; do
	get "$A" "/chat/conversations?before=$v"
	field_is before || { echo "#   list before='$v': $STATUS $BODY"; bad_table=0; }
done
check "limit 0, 201, -1, abc, 1e3, ...; after/before -5, 1e3, abc, 00, 99999999999999999999, ...; before 0: 422 with the parameter as field" \
	[ "$bad_table" = 1 ]
msgs "?before=9223372036854775807&limit=2"
check "before=INT64_MAX is valid" [ "$(ids)" = "$(slice 248 2)" ]
msgs "?unknown=1&limit=2"
check "unknown parameters are ignored" [ "$(ids)" = "$(slice 248 2)" ]
bad_ids=1
for id in 0 -5 1e3 abc 99999999999999999999 9223372036854775808 01 "$cp.0" "$cp%20"; do
	get "$A" "/chat/conversations/$id"; not_found || bad_ids=0
	get "$A" "/chat/conversations/$id/messages"; not_found || bad_ids=0
	post "$A" "/chat/conversations/$id/messages" '{"body":"x"}'; not_found || bad_ids=0
	post "$A" "/chat/conversations/$id/members" '{"email":"erin@x.io"}'; not_found || bad_ids=0
done
check "path ids 0, -5, 1e3, abc, 99999999999999999999, 2^63, 01: 404 on all 4 routes" [ "$bad_ids" = 1 ]

# --- 3. idempotency ------------------------------------------------------------------
section "idempotency"
post "$A" "/chat/conversations/$c1/messages" '{"body":"once"}' -H 'Idempotency-Key: key-1'
check "a send with Idempotency-Key: 201" is_status 201
k1=$(jv .id); k1_body=$BODY
post "$A" "/chat/conversations/$c1/messages" '{"body":"twice?"}' -H 'Idempotency-Key: key-1'
check "the same key again: 200 with the original message" bash -c '[ "$0" = 200 ] && [ "$1" = "$2" ]' "$STATUS" "$BODY" "$k1_body"
check "... stored once" [ "$(sql "SELECT count(*) FROM chat.messages WHERE idempotency_key = 'key-1'")" = 1 ]
post "$B" "/chat/conversations/$c1/messages" '{"body":"mine"}' -H 'Idempotency-Key: key-1'
check "the same key from another sender: a new message (201)" bash -c '[ "$0" = 201 ] && [ "$1" != "$2" ]' "$STATUS" "$(jv .id)" "$k1"
post "$A" "/chat/conversations/$c2/messages" '{"body":"elsewhere"}' -H 'Idempotency-Key: key-1'
check "the same key in another conversation: a new message (201)" is_status 201
post "$A" "/chat/conversations/$c1/messages" '{"body":"no key"}'
post "$A" "/chat/conversations/$c1/messages" '{"body":"no key"}'
check "without a key, a repeat is a new message" is_status 201
post "$A" "/chat/conversations/$c1/messages" '{"body":"k"}' -H "Idempotency-Key: $(rep 128 k)"
check "a 128-character key: 201" is_status 201
# SPEC: 0x20-0x7E, so a space inside a key is part of it.
post "$A" "/chat/conversations/$c1/messages" '{"body":"spaced"}' -H 'Idempotency-Key: a b'
ks=$(jv .id)
check "a key with a space inside: 201" is_status 201
post "$A" "/chat/conversations/$c1/messages" '{"body":"spaced"}' -H 'Idempotency-Key: a b'
check "... and its retry: 200, the same message" bash -c '[ "$0" = 200 ] && [ "$1" = "$2" ]' "$STATUS" "$(jv .id)" "$ks"
key_bad=1
for k in "$(rep 129 k)" "clé" "$(rep 64 é)" "a$(printf '\t')b"; do
	post "$A" "/chat/conversations/$c1/messages" '{"body":"k"}' -H "Idempotency-Key: $k"
	field_is Idempotency-Key || { echo "#   key '$k': $STATUS $BODY"; key_bad=0; }
done
check "keys of 129 characters, non-ASCII or with a tab: 422 field Idempotency-Key" [ "$key_bad" = 1 ]
post "$A" "/chat/conversations/$c1/messages" '{"body":"k"}' -H "Idempotency-Key: k$(printf '\x7f')"
check "a key with DEL: refused (lighttpd's 400 or our 422: $STATUS)" bash -c '[ "$0" = 400 ] || [ "$0" = 422 ]' "$STATUS"

# Concurrent duplicates: rounds of 10 connections sending one key at once.
# In the last round the conversation row is held locked while they arrive,
# so every statement in a worker takes its snapshot before the winner
# commits: the losers find nothing in it and must re-read the winner.
conc_ok=1
for round in 1 2 3; do
	rm -rf "$STACK_DIR/idem"
	mkdir -p "$STACK_DIR/idem"
	pids=()
	if [ "$round" = 3 ]; then
		sql "BEGIN; SELECT 1 FROM chat.conversations WHERE id = $c1 FOR NO KEY UPDATE; SELECT pg_sleep(1.5); COMMIT" >/dev/null &
		pids+=($!)
		sleep 0.3
	fi
	for i in $(seq 1 10); do
		curl -s -o "$STACK_DIR/idem/$i.body" -w '%{http_code}\n' --max-time 20 \
			-H "Authorization: Bearer $A" -H 'Content-Type: application/json' \
			-H "Idempotency-Key: race-$round" --data-binary "{\"body\":\"race $round from $i\"}" \
			"$BASE/chat/conversations/$c1/messages" >"$STACK_DIR/idem/$i.status" &
		pids+=($!)
	done
	wait "${pids[@]}"
	codes=$(cat "$STACK_DIR"/idem/*.status | sort | uniq -c | tr -s ' ' | tr '\n' ';')
	distinct=$(cat "$STACK_DIR"/idem/*.body | jq -r .id | sort -u | wc -l)
	rows=$(sql "SELECT count(*) FROM chat.messages WHERE idempotency_key = 'race-$round'")
	echo "#   round $round: statuses $codes distinct ids $distinct, rows $rows"
	[ "$codes" = " 9 200; 1 201;" ] && [ "$distinct" = 1 ] && [ "$rows" = 1 ] || conc_ok=0
done
check "10 concurrent sends with one key (3 rounds, the last behind a held lock): one 201, nine 200 with the same id, one row" [ "$conc_ok" = 1 ]

# --- 4. text rules ---------------------------------------------------------------------
section "text rules"
body_of() { jq -cn --arg b "$1" '{body: $b}'; }
post "$A" "/chat/conversations/$c1/messages" "$(body_of "$(rep 4000 é)")"
check "4000 × é (2 bytes each): 201" is_status 201
check "... stored as 4000 characters, 8000 bytes" [ "$(sql "SELECT length(body) || '/' || octet_length(body) FROM chat.messages WHERE id = $(jv .id)")" = 4000/8000 ]
post "$A" "/chat/conversations/$c1/messages" "$(body_of "$(rep 4000 😀)")"
check "4000 × 😀 (4 bytes each, 16000 bytes): 201" is_status 201
post "$A" "/chat/conversations/$c1/messages" "$(body_of "$(rep 4001 é)")"
check "4001 × é: 422 field body" field_is body
post "$A" "/chat/conversations/$c1/messages" "$(body_of "$(rep 4001 a)")"
check "4001 × a: 422" field_is body
post "$A" "/chat/conversations/$c1/messages" '{"body":""}'
check "empty body: 422" field_is body
post "$A" "/chat/conversations/$c1/messages" '{"body":" \n\t\r "}'
check "white space only: 422" field_is body
post "$A" "/chat/conversations/$c1/messages" '{"body":"\u00a0\u3000\u2003\u2028"}'
check "Unicode white space only (NBSP, ideographic space, em space, line separator): 422" field_is body
post "$A" "/chat/conversations/$c1/messages" '{"body":"a\u0000b"}'
check "NUL (\\u0000): 422" field_is body
post "$A" "/chat/conversations/$c1/messages" '{}'
check "body missing: 422" field_is body
post "$A" "/chat/conversations/$c1/messages" '{"body":null}'
check "body null: 400" bad_request_is body
post "$A" "/chat/conversations/$c1/messages" '{"body":["x"]}'
check "body an array: 400" bad_request_is body
post "$A" "/chat/conversations/$c1/messages" "$(printf '{"body":"\xff\xfe"}')"
check "invalid UTF-8 bytes: 400" is_error 400 bad_request
post "$A" "/chat/conversations/$c1/messages" "$(printf '{"body":"\xc0\xaf"}')"
check "overlong UTF-8: 400" is_error 400 bad_request
post "$A" "/chat/conversations/$c1/messages" "$(printf '{"body":"\xed\xa0\x80"}')"
check "an encoded surrogate: 400" is_error 400 bad_request
# json-c would turn a lone surrogate escape into U+FFFD, changing the text:
# the JSON pre-scan in http.c refuses it; a proper pair is an emoji.
post "$A" "/chat/conversations/$c1/messages" '{"body":"\ud800"}'
check "a lone surrogate escape: 400" is_error 400 bad_request
post "$A" "/chat/conversations/$c1/messages" '{"body":"\ud83d\ude00"}'
check "an escaped surrogate pair is one emoji (201, stored as U+1F600)" \
	bash -c '[ "$0" = 201 ] && [ "$1" = "😀" ]' "$STATUS" "$(jv .body)"
req POST "/chat/conversations/$c1/messages" -H "Authorization: Bearer $A" -H 'Content-Type: text/plain' --data-binary '{"body":"hi"}'
check "another media type: 415" is_error 415 unsupported_media_type
check "none of the rejected bodies was stored" [ "$(sql "SELECT count(*) FROM chat.messages WHERE length(body) > 4000 OR btrim(body) = ''")" = 0 ]

tricky=$(printf '  "quoted" \\back\\slash\\ \\n not a newline\nreal newline\r\n\ttab 😀 é 漢字 \u2028 </script> %%s $1 \x27; DROP TABLE messages; --  ')
post "$A" "/chat/conversations/$c1/messages" "$(body_of "$tricky")"
check "quotes, backslashes, emoji, newlines and SQL: 201" is_status 201
tid=$(jv .id)
printf '%s' "$tricky" >"$STACK_DIR/tricky.sent"
printf '%s' "$BODY" | jq -j .body >"$STACK_DIR/tricky.echo"
check "... the 201 echoes it byte for byte (leading/trailing space kept)" cmp -s "$STACK_DIR/tricky.sent" "$STACK_DIR/tricky.echo"
get "$B" "/chat/conversations/$c1/messages?after=$((tid - 1))&limit=1"
printf '%s' "$BODY" | jq -j '.items[0].body' >"$STACK_DIR/tricky.read"
check "... Bob reads it back byte for byte" cmp -s "$STACK_DIR/tricky.sent" "$STACK_DIR/tricky.read"
check "... the database holds exactly those bytes" [ "$(sql "SELECT encode(convert_to(body, 'UTF8'), 'hex') FROM chat.messages WHERE id = $tid")" = "$(od -An -tx1 -v "$STACK_DIR/tricky.sent" | tr -d ' \n')" ]
check "... and the messages table is still there" [ "$(sql "SELECT to_regclass('chat.messages') IS NOT NULL")" = t ]

# --- 5. no lost writes ---------------------------------------------------------------------
section "2000 concurrent sends"
post "$A" /chat/conversations '{"title":"Busy","members":["bob@x.io","dave@x.io"]}'
cb=$(jv .id)
toks=("$A" "$B" "$D" "$A" "$B" "$D" "$A" "$B")
pids=()
for i in 0 1 2 3 4 5 6 7; do
	bulk_post "${toks[$i]}" "$cb" "w$i" 250 "$STACK_DIR/w$i.out" &
	pids+=($!)
done
wait "${pids[@]}"
cat "$STACK_DIR"/w?.out >"$STACK_DIR/acked.all"
grep $'\t201$' "$STACK_DIR/acked.all" | cut -f1 | jq -r .id | sort -n >"$STACK_DIR/acked.ids"
acked=$(wc -l <"$STACK_DIR/acked.ids")
echo "#   $acked of 2000 acknowledged with 201; other statuses: $(grep -vc $'\t201$' "$STACK_DIR/acked.all")"
check "8 clients × 250 sends: all 2000 acknowledged (201)" [ "$acked" = 2000 ]
: >"$STACK_DIR/history.ids"
# From Bob's first message in Lunch: every id here is above it.
after=$m1 pages=0
while [ "$pages" -lt 50 ]; do
	get "$A" "/chat/conversations/$cb/messages?after=$after&limit=200"
	[ "$STATUS" = 200 ] || break
	n=$(jv '.items|length')
	[ "$n" = 0 ] && break
	jv '.items[].id' >>"$STACK_DIR/history.ids"
	after=$(jv '.items[-1].id')
	pages=$((pages + 1))
done
check "walking the history finds every acknowledged id exactly once (and nothing else)" \
	bash -c '[ "$(sort -n "$0" | uniq -d | wc -l)" = 0 ] && [ "$(sort -n "$0")" = "$(cat "$1")" ]' "$STACK_DIR/history.ids" "$STACK_DIR/acked.ids"
check "... in ascending id order over $pages pages" bash -c '[ "$(cat "$0")" = "$(sort -n "$0")" ]' "$STACK_DIR/history.ids"
check "every body was stored once, by its sender" [ "$(sql "SELECT count(DISTINCT body) || '/' || count(*) FROM chat.messages WHERE conversation_id = $cb")" = 2000/2000 ]
get "$A" "/chat/conversations/$cb"
check "last_message_at is the newest message's time" [ "$(jv .last_message_at)" = "$(sql "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM chat.messages WHERE conversation_id = $cb ORDER BY id DESC LIMIT 1")" ]

# --- 6. plans on 100k messages ---------------------------------------------------------------
section "plans"
sql "INSERT INTO chat.conversations (title, owner_id) SELECT 'bulk ' || g, $erin_id FROM generate_series(1, 5000) g;
INSERT INTO chat.members (conversation_id, user_id, role) SELECT id, owner_id, 'owner' FROM chat.conversations WHERE owner_id = $erin_id;
INSERT INTO chat.members (conversation_id, user_id, role) SELECT id, $dave_id, 'member' FROM chat.conversations WHERE owner_id = $erin_id AND id % 2 = 0;
INSERT INTO chat.messages (conversation_id, sender_id, body, seq) SELECT c.id, c.owner_id, 'bulk ' || g, g FROM chat.conversations c, generate_series(1, 20) g WHERE c.owner_id = $erin_id;
UPDATE chat.conversations c SET message_count = 20, last_message_id = (SELECT max(id) FROM chat.messages m WHERE m.conversation_id = c.id) WHERE c.owner_id = $erin_id;" >/dev/null
sql "VACUUM ANALYZE" >/dev/null
check "seeded: over 100k messages, 5000 more conversations, Dave in 2500" [ "$(sql "SELECT count(*) > 100000 FROM chat.messages")" = t ]

# Every statement the workers run now is logged with its plan.
stack_pg_set auto_explain.log_min_duration 0
sleep 1
log_start=$(wc -l <"$STACK_DIR/pg/server.log")
get "$A" "/chat/conversations/$cb/messages?limit=50"; s1=$STATUS
get "$A" "/chat/conversations/$cb/messages?after=${ALL[0]}&limit=50"; s2=$STATUS
get "$A" "/chat/conversations?limit=50"; s3=$STATUS
get "$D" "/chat/conversations?limit=50"; s4=$STATUS
get "$A" "/chat/conversations/$cb"; s5=$STATUS
post "$A" "/chat/conversations/$cb/messages" '{"body":"planned"}' -H 'Idempotency-Key: plan-1'; s6=$STATUS
post "$A" "/chat/conversations/$cb/members" '{"email":"erin@x.io"}'; s7=$STATUS
get "$C" "/chat/conversations/$cb/messages"; s8=$STATUS
post "$A" "/chat/conversations/$cb/messages" '{"body":"planned, no key"}'; s9=$STATUS
sleep 0.5
stack_pg_set auto_explain.log_min_duration -1
check "9 requests during the plan log: $s1 $s2 $s3 $s4 $s5 $s6 $s7 $s8 $s9" [ "$s1 $s2 $s3 $s4 $s5 $s6 $s7 $s8 $s9" = "200 200 200 200 200 201 201 404 201" ]
# One log record per plan: records start with a timestamp.
tail -n +"$((log_start + 1))" "$STACK_DIR/pg/server.log" | awk '
	/^[0-9][0-9][0-9][0-9]-/ { n++ }
	{ print > (dir "/plan." n) }' dir="$STACK_DIR"
mapfile -t PLANS < <(grep -l "Query Text: .*sessions s WHERE s.id = \$1" "$STACK_DIR"/plan.* 2>/dev/null)
check "one statement per request: 9 requests, ${#PLANS[@]} chat statements executed" [ "${#PLANS[@]}" = 9 ]
p_before=$(plan_of "ORDER BY m.id DESC")
p_after=$(plan_of "m.id > \$4::bigint")
p_list=$(plan_of "ORDER BY c.activity DESC")
p_post=$(plan_of "ON CONFLICT")
p_plain=$(plan_of "INSERT INTO messages AS m (conversation_id, sender_id, body, seq) ")
for p in "$p_before" "$p_after" "$p_list" "$p_post" "$p_plain"; do echo "#   $(grep -o 'Query Text: .\{0,60\}' "$p")"; show_plan "$p"; done
uses_msg_index() { grep -Eq "Index (Only )?Scan( Backward)? using messages_pkey on messages" "$1" && ! grep -q "Seq Scan on messages" "$1"; }
check "messages?limit=50 (the last page): index scan on messages_pkey, no Seq Scan on messages" uses_msg_index "$p_before"
check "messages?after=: index scan on messages_pkey, no Seq Scan on messages" uses_msg_index "$p_after"
check "conversation list: members through members_user, no Seq Scan on members or conversations" \
	bash -c 'grep -Eq "Index (Only )?Scan using members_user on members" "$0" && ! grep -Eq "Seq Scan on (members|conversations)" "$0"' "$p_list"
check "send with a key: the key through messages_idempotency, no Seq Scan on messages, members or conversations" \
	bash -c 'grep -q "using messages_idempotency on messages" "$0" && ! grep -Eq "Seq Scan on (messages|members|conversations)" "$0"' "$p_post"
check "send without a key: no Seq Scan on messages, members or conversations" \
	bash -c '[ -n "$0" ] && ! grep -Eq "Seq Scan on (messages|members|conversations)" "$0"' "$p_plain"
check "no plan of the window scans messages or members sequentially" bash -c '! grep -Eq "Seq Scan on (messages|members)" "$@"' "${PLANS[@]}"

# The same statements' SQL with literal values, through EXPLAIN in psql.
jti=$(jti "$A")
explain() { stack_psql chat -tA -c "SET search_path = chat; EXPLAIN $1"; }
explain "$(literal_sql "$p_before" "$jti" "$alice_id" "$cb" 9223372036854775807 50)" >"$STACK_DIR/explain.before"
explain "$(literal_sql "$p_after" "$jti" "$alice_id" "$cb" "${ALL[0]}" 9223372036854775807 50)" >"$STACK_DIR/explain.after"
explain "$(literal_sql "$p_list" "$jti" "$dave_id" 9223372036854775807 51)" >"$STACK_DIR/explain.list"
for f in before after list; do echo "#   EXPLAIN ($f, literal values):"; show_plan "$STACK_DIR/explain.$f"; done
check "EXPLAIN with literals, last page: index scan on messages_pkey, no Seq Scan on messages" uses_msg_index "$STACK_DIR/explain.before"
check "EXPLAIN with literals, after=: index scan on messages_pkey, no Seq Scan on messages" uses_msg_index "$STACK_DIR/explain.after"
check "EXPLAIN with literals, the list of a user in 2500 conversations: no Seq Scan on members" \
	bash -c 'grep -Eq "Index (Only )?Scan using members_user on members" "$0" && ! grep -q "Seq Scan on members" "$0"' "$STACK_DIR/explain.list"

section "done"
e2e_finish
