#!/usr/bin/env bash
# Issue 16, end to end through lighttpd with 4 workers and PostgreSQL over
# TLS: one poll for every conversation (GET /chat/updates), read markers and
# unread counts, removing members and leaving (the owner's succession, 404
# at once in every worker, history kept), deleting one's own message (a
# tombstone, the text gone from the database, 403 for other members), and
# the concurrent cases: sends racing a removal (before it or 404, never
# after, proved in the database), a poller that never misses a change while
# four conversations are written at once, unread counts exact under
# concurrent sends and marks; then the plans on a conversation of 12 000
# messages (auto_explain: one statement per request, index scans only).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/chat_lib.sh"

export RATE_LIMIT_AUTH=off RATE_LIMIT_CHAT=off RATE_LIMIT_READ=off
STACK_PG_EXTRA="$STACK_PG_EXTRA
session_preload_libraries = 'auto_explain'
auto_explain.log_min_duration = -1"
e2e_start 4
T0=$SECONDS

forbidden() { is_error 403 forbidden; }
# updates TOKEN SINCE: GET /chat/updates?since=SINCE
updates() { get "$1" "/chat/updates?since=$2"; }
item() { jv ".items[]|select(.id == $1)|$2"; } # CONV FILTER: of the updates or list answer

user alice@x.io Alice; A=$TOKEN; alice_id=$UID_
user bob@x.io Bob; B=$TOKEN; bob_id=$UID_
user carol@x.io Carol; C=$TOKEN; carol_id=$UID_
user dave@x.io Dave; D=$TOKEN; dave_id=$UID_
user erin@x.io Erin; E=$TOKEN; erin_id=$UID_

# --- 1. one poll, read markers, unread counts ------------------------------------
section "updates and unread counts"
post "$A" /chat/conversations '{"title":"Lunch","members":["bob@x.io","carol@x.io"]}'
c1=$(jv .id)
updates "$B" 0
check "Bob's first poll (since=0): 200 with his conversation, nothing read, nothing unread" \
	bash -c '[ "$0" = 200 ] && [ "$(printf "%s" "$1" | jq -r "[.items[]|\"\(.id):\(.last_message_id):\(.last_read_id):\(.unread)\"]|join(\",\")")" = "$2:null:0:0" ]' "$STATUS" "$BODY" "$c1"
check "... the answer's fields" is_json '"\([keys[]]|join(",")) \(.items[0]|[keys[]]|join(",")) \(.removed|length) \(.cursor|type)"' \
	"cursor,items,removed created_at,id,last_message_at,last_message_id,last_read_id,owner_id,title,unread 0 number"
cb0=$(jv .cursor)
req GET /chat/updates -H "Authorization: Bearer $B"
check "no since is since=0" is_json '.items|length' 1
updates "$B" "$cb0"
check "polling again with the cursor: nothing changed, empty lists" is_json '"\(.items|length) \(.removed|length)"' "0 0"
check "... and the cursor does not go back" [ "$(jv .cursor)" -ge "$cb0" ]
cb1=$(jv .cursor)
# A conversation started after Bob's last poll reaches his next one (the
# creation stamps its members' activity).
post "$A" /chat/conversations '{"title":"Later","members":["bob@x.io"]}'
c_later=$(jv .id)
updates "$B" "$cb1"
check "a conversation created after a poll is in the next one" is_json "[.items[].id] == [$c_later]" true
cb1=$(jv .cursor)
updates "$A" 0; ca0=$(jv .cursor)
for i in 1 2 3; do
	post "$A" "/chat/conversations/$c1/messages" "{\"body\":\"m$i\"}"
	eval "m$i=\$(jv .id)"
done
updates "$B" "$cb1"
check "after 3 messages from Alice, Bob's poll: the conversation, newest id, 3 unread" \
	is_json "[.items[]|\"\(.id):\(.last_message_id):\(.last_read_id):\(.unread)\"]|join(\",\")" "$c1:$m3:0:3"
cb2=$(jv .cursor)
updates "$B" "$cb2"
check "... and the next poll is empty again" is_json '.items|length' 0
updates "$A" "$ca0"
check "Alice's poll: her own messages are read (marker on m3, 0 unread)" is_json "$(printf '[.items[]|"\\(.last_read_id):\\(.unread)"]|join(",")')" "$m3:0"
ca1=$(jv .cursor)
get "$C" /chat/conversations
check "Carol's conversation list carries the read state: 3 unread, last_message_id m3" is_json "$(printf '.items[]|select(.id == %s)|"\\(.last_message_id):\\(.last_read_id):\\(.unread)"' "$c1")" "$m3:0:3"

post "$B" "/chat/conversations/$c1/read" "{\"message_id\":$m2}"
check "Bob marks read up to m2: 200, marker m2, 1 unread" bash -c '[ "$0" = 200 ] && [ "$1" = "$2" ]' "$STATUS" "$(jv '"\(.conversation_id):\(.last_read_id):\(.unread)"')" "$c1:$m2:1"
post "$B" "/chat/conversations/$c1/read" "{\"message_id\":$m1}"
check "marking an older message: the marker never moves back" is_json '"\(.last_read_id):\(.unread)"' "$m2:1"
updates "$B" "$cb2"
check "Bob's poll reports his own marker move (for his other devices)" is_json "[.items[]|\"\(.id):\(.last_read_id):\(.unread)\"]|join(\",\")" "$c1:$m2:1"
cb3=$(jv .cursor)
post "$B" "/chat/conversations/$c1/read" '{"message_id":9223372036854775807}'
check "a mark beyond the newest message: everything read" is_json '"\(.last_read_id):\(.unread)"' "$m3:0"
updates "$A" "$ca1"
check "... which is Bob's alone: Alice's poll stays empty" is_json '.items|length' 0
post "$B" "/chat/conversations/$c1/read" "{\"message_id\":$m3}"
moved=$(sql "SELECT activity FROM chat.members WHERE conversation_id = $c1 AND user_id = $bob_id")
post "$B" "/chat/conversations/$c1/read" "{\"message_id\":$m3}"
check "a mark that moves nothing writes nothing (the member row keeps its stamp)" \
	[ "$(sql "SELECT activity FROM chat.members WHERE conversation_id = $c1 AND user_id = $bob_id")" = "$moved" ]
post "$B" "/chat/conversations/$c1/messages" '{"body":"b1"}'
b1=$(jv .id)
get "$B" /chat/conversations
check "Bob's own message: his marker moves to it, 0 unread" is_json "$(printf '.items[]|select(.id == %s)|"\\(.last_read_id):\\(.unread)"' "$c1")" "$b1:0"
get "$C" /chat/conversations
check "... Carol now has 4 unread" is_json "$(printf '.items[]|select(.id == %s)|.unread' "$c1")" 4

post "$B" "/chat/conversations/$c1/read" '{}'
check "read: message_id missing: 422" field_is message_id
post "$B" "/chat/conversations/$c1/read" '{"message_id":"5"}'
check "read: message_id a string: 400" bad_request_is message_id
post "$B" "/chat/conversations/$c1/read" '{"message_id":1.0}'
check "read: message_id 1.0 (not an integer): 400" bad_request_is message_id
post "$B" "/chat/conversations/$c1/read" '{"message_id":0}'
check "read: message_id 0: 422" field_is message_id
post "$D" "/chat/conversations/$c1/read" "{\"message_id\":$m1}"
check "read by a non-member (Dave): 404" not_found
post "$B" "/chat/conversations/99999999/read" "{\"message_id\":$m1}"
check "read on a conversation that does not exist: 404" not_found
for q in since=-1 since=abc since= since=01 'since=1&since=2' since=9223372036854775808; do
	get "$B" "/chat/updates?$q"
	check "updates?$q: 422 field since" field_is since
done
req GET /chat/updates
check "updates without a token: 401" is_error 401 unauthorized

post "$A" "/chat/conversations/$c1/members" '{"email":"dave@x.io"}'
updates "$D" 0
check "Dave, added late: the conversation appears in his poll, marker at the newest message, 0 unread" \
	is_json "[.items[]|\"\(.id):\(.last_message_id):\(.last_read_id):\(.unread)\"]|join(\",\")" "$c1:$b1:$b1:0"
get "$D" "/chat/conversations/$c1/messages?after=0"
check "... and he still reads the whole history" is_json '.items|length' 4

# --- 2. removing and leaving -------------------------------------------------------
section "removing and leaving"
post "$C" "/chat/conversations/$c1/messages" '{"body":"carol was here"}'
carol_msg=$(jv .id)
updates "$C" 0; cc0=$(jv .cursor)
del "$B" "/chat/conversations/$c1/members/$dave_id"
check "a member (Bob) removing another (Dave): 403" forbidden
del "$B" "/chat/conversations/$c1/members/$carol_id"
check "... and Carol: 403" forbidden
del "$E" "/chat/conversations/$c1/members/$carol_id"
check "a non-member (Erin) removing: 404" not_found
del "$A" "/chat/conversations/$c1/members/$erin_id"
check "the owner removing a user who is not a member: 404" not_found
del "$A" "/chat/conversations/$c1/members/999999"
check "... or a user who does not exist: 404" not_found
del "$A" "/chat/conversations/$c1/members/$carol_id"
check "the owner removes Carol: 204, no body" bash -c '[ "$0" = 204 ] && [ -z "$1" ]' "$STATUS" "$BODY"
all404=1
for i in $(seq 1 12); do
	get "$C" "/chat/conversations/$c1"; not_found || all404=0
	get "$C" "/chat/conversations/$c1/messages"; not_found || all404=0
done
post "$C" "/chat/conversations/$c1/messages" '{"body":"still here?"}'; not_found || all404=0
post "$C" "/chat/conversations/$c1/read" "{\"message_id\":$m1}"; not_found || all404=0
del "$C" "/chat/conversations/$c1/messages/$carol_msg"; not_found || all404=0
del "$C" "/chat/conversations/$c1/members/$carol_id"; not_found || all404=0
check "Carol at once gets 404 on all 28 requests (4 workers), send, read, delete and leave included" [ "$all404" = 1 ]
get "$C" /chat/conversations
check "... the conversation left her list" bash -c '! printf "%s" "$0" | jq -e ".items[]|select(.id == $1)" >/dev/null' "$BODY" "$c1"
updates "$C" "$cc0"
check "... her poll reports it under removed" is_json '"\(.items|length) \(.removed|join(","))"' "0 $c1"
get "$B" "/chat/conversations/$c1/messages?after=$((carol_msg - 1))&limit=1"
check "her message stays for the others" is_json '"\(.items[0].id) \(.items[0].sender_name) \(.items[0].body)"' "$carol_msg Carol carol was here"
get "$A" "/chat/conversations/$c1"
check "the members are Alice, Bob, Dave" is_json '[.members[].display_name]|join(",")' "Alice,Bob,Dave"
del "$A" "/chat/conversations/$c1/members/$carol_id"
check "removing her again: 404" not_found
del "$D" "/chat/conversations/$c1/members/$dave_id"
check "Dave leaves (removes himself): 204" is_status 204
get "$D" "/chat/conversations/$c1"
check "... and gets 404" not_found
post "$A" "/chat/conversations/$c1/members" '{"email":"carol@x.io"}'
check "the owner adds Carol back: 201" is_status 201
updates "$C" "$cc0"
check "... her poll shows the conversation again, no longer removed" is_json '"\([.items[].id]|join(",")) \(.removed|length)"' "$c1 0"

post "$A" /chat/conversations '{"title":"Succession","members":["bob@x.io","carol@x.io"]}'
c2=$(jv .id)
updates "$B" 0; cbs=$(jv .cursor)
del "$A" "/chat/conversations/$c2/members/$alice_id"
check "the owner leaves: 204" is_status 204
get "$B" "/chat/conversations/$c2"
check "... the member who joined first (Bob, then the lower id) is the owner" \
	is_json '"\(.owner_id) \([.members[]|"\(.display_name):\(.role)"]|join(","))"' "$bob_id Bob:owner,Carol:member"
updates "$B" "$cbs"
check "... Bob's poll reports it with the new owner" is_json "[.items[]|\"\(.id):\(.owner_id)\"]|join(\",\")" "$c2:$bob_id"
post "$B" "/chat/conversations/$c2/members" '{"email":"dave@x.io"}'
check "... and he can add members: 201" is_status 201
post "$C" "/chat/conversations/$c2/members" '{"email":"erin@x.io"}'
check "... Carol still cannot: 403" forbidden
get "$A" "/chat/conversations/$c2"
check "... Alice gets 404" not_found
for who in "$D:$dave_id" "$C:$carol_id" "$B:$bob_id"; do del "${who%%:*}" "/chat/conversations/$c2/members/${who#*:}"; done
check "everyone leaves: the conversation stays, memberless" \
	[ "$(sql "SELECT count(*) FROM chat.members WHERE conversation_id = $c2")/$(sql "SELECT count(*) FROM chat.conversations WHERE id = $c2")" = 0/1 ]

# --- 3. deleting one's own message ------------------------------------------------
section "deleting a message"
post "$B" "/chat/conversations/$c1/messages" '{"body":"a secret 7f3a9"}' -H 'Idempotency-Key: secret-1'
sm=$(jv .id)
post "$A" "/chat/conversations/$c1/messages" '{"body":"after the secret"}'
after_sm=$(jv .id)
updates "$A" 0; ca2=$(jv .cursor)
del "$A" "/chat/conversations/$c1/messages/$sm"
check "another member (the owner) deleting Bob's message: 403" forbidden
del "$E" "/chat/conversations/$c1/messages/$sm"
check "a non-member deleting it: 404" not_found
del "$B" "/chat/conversations/$c1/messages/$m1"
check "Bob deleting Alice's message: 403" forbidden
del "$B" "/chat/conversations/$c1/messages/999999999"
check "a message id that does not exist: 404" not_found
post "$B" /chat/conversations '{"title":"Other"}'
other=$(jv .id)
post "$B" "/chat/conversations/$other/messages" '{"body":"elsewhere"}'
elsewhere=$(jv .id)
del "$B" "/chat/conversations/$c1/messages/$elsewhere"
check "a message of another conversation: 404" not_found
del "$B" "/chat/conversations/$c1/messages/$sm"
check "the sender deletes it: 204" is_status 204
check "the text is gone from the database (body NULL, deleted_at set, no row holds it)" \
	[ "$(sql "SELECT (body IS NULL AND deleted_at IS NOT NULL)::text || '/' || (SELECT count(*) FROM chat.messages WHERE body LIKE '%7f3a9%') FROM chat.messages WHERE id = $sm")" = true/0 ]
get "$A" "/chat/conversations/$c1/messages?after=$((sm - 1))&limit=2"
check "pages show a tombstone with the same id, then the next message" \
	is_json '[.items[]|"\(.id):\(.deleted):\(.body)"]|join(",")' "$sm:true:null,$after_sm:false:after the secret"
get "$A" "/chat/conversations/$c1/messages?before=$after_sm&limit=1"
check "... paging backwards too" is_json '"\(.items[0].id):\(.items[0].deleted):\(.items[0].sender_name)"' "$sm:true:Bob"
updates "$A" "$ca2"
check "the deletion shows in the others' poll" is_json '[.items[].id]|join(",")' "$c1"
del "$B" "/chat/conversations/$c1/messages/$sm"
check "deleting it again: 204" is_status 204
post "$B" "/chat/conversations/$c1/messages" '{"body":"a secret 7f3a9"}' -H 'Idempotency-Key: secret-1'
check "a retry of its Idempotency-Key: 200, the tombstone, nothing stored again" \
	bash -c '[ "$0" = 200 ] && [ "$1" = "'"$sm"':true:null" ] && [ "$2" = 0 ]' "$STATUS" "$(jv '"\(.id):\(.deleted):\(.body)"')" \
	"$(sql "SELECT count(*) FROM chat.messages WHERE body LIKE '%7f3a9%'")"

# --- 4. concurrency -----------------------------------------------------------------
# bulk_post TOKEN CID PREFIX N OUT: N sends over one keep-alive connection;
# OUT gets one "<response body>\t<status>" line each, in order.

section "sends racing a removal"
race_ok=1 race_total_201=0 race_total_404=0
for round in 1 2 3; do
	post "$A" /chat/conversations '{"title":"Race","members":["bob@x.io","carol@x.io"]}'
	cr=$(jv .id)
	pids=()
	for k in 1 2 3 4; do
		bulk_post "$B" "$cr" "r$round-$k" 60 "$STACK_DIR/race-$round-$k.out" &
		pids+=($!)
	done
	bulk_post "$C" "$cr" "c$round" 60 "$STACK_DIR/race-$round-carol.out" &
	pids+=($!)
	# Remove Bob once his sends are under way.
	for ((i = 0; i < 100; i++)); do
		[ "$(sql "SELECT count(*) >= 20 FROM chat.messages WHERE conversation_id = $cr AND sender_id = $bob_id")" = t ] && break
		sleep 0.02
	done
	del "$A" "/chat/conversations/$cr/members/$bob_id"
	rm_status=$STATUS
	wait "${pids[@]}"
	cat "$STACK_DIR"/race-$round-?.out >"$STACK_DIR/race-$round.all"
	n201=$(grep -c $'\t201$' "$STACK_DIR/race-$round.all")
	n404=$(grep -c $'\t404$' "$STACK_DIR/race-$round.all")
	other=$(grep -vc $'\t\(201\|404\)$' "$STACK_DIR/race-$round.all")
	stored=$(sql "SELECT count(*) FROM chat.messages WHERE conversation_id = $cr AND sender_id = $bob_id")
	late=$(sql "SELECT count(*) FROM chat.messages m JOIN chat.member_removals r ON r.user_id = m.sender_id AND r.conversation_id = m.conversation_id
		WHERE m.conversation_id = $cr AND m.sender_id = $bob_id AND m.id > coalesce(r.last_message_id, 0)")
	# Per connection, in order: once a 404, never a 201 again.
	regress=0
	for k in 1 2 3 4; do
		cut -f2 "$STACK_DIR/race-$round-$k.out" | awk '$1 == 404 { seen = 1 } $1 == 201 && seen { bad = 1 } END { exit bad }' || regress=1
	done
	carol201=$(grep -c $'\t201$' "$STACK_DIR/race-$round-carol.out")
	echo "#   round $round: removal $rm_status; Bob's 240 sends: $n201 x 201, $n404 x 404, $other other; stored $stored; after the removal: $late; Carol 201: $carol201/60"
	race_total_201=$((race_total_201 + n201))
	race_total_404=$((race_total_404 + n404))
	[ "$rm_status" = 204 ] && [ "$other" = 0 ] && [ "$stored" = "$n201" ] && [ "$late" = 0 ] &&
		[ "$regress" = 0 ] && [ "$carol201" = 60 ] && [ $((n201 + n404)) = 240 ] || race_ok=0
done
check "3 rounds of 4×60 sends racing a removal: each 201 or 404; every 201 stored, no 404 stored; no message of Bob after the removal's witness; no 201 after a 404 on a connection; Carol's 60 sends all 201" [ "$race_ok" = 1 ]
check "... the race was real: both answers occurred ($race_total_201 x 201, $race_total_404 x 404)" \
	[ "$race_total_201" -gt 0 ] && [ "$race_total_404" -gt 0 ]

section "a poller never misses a change"
convs=()
for k in 1 2 3 4; do
	post "$A" /chat/conversations '{"title":"Feed","members":["dave@x.io"]}'
	convs+=("$(jv .id)")
done
updates "$D" 0; cursor=$(jv .cursor)
pids=()
for k in 0 1 2 3; do
	tok=$A; [ $((k % 2)) = 1 ] && tok=$D
	bulk_post "$tok" "${convs[$k]}" "feed$k" 1000 "$STACK_DIR/feed-$k.out" &
	pids+=($!)
done
declare -A seen=()
polls=0
while kill -0 "${pids[@]}" 2>/dev/null || [ "$polls" = 0 ]; do
	updates "$D" "$cursor"
	[ "$STATUS" = 200 ] || break
	while IFS=: read -r id last; do seen[$id]=$last; done < <(jv '.items[]|"\(.id):\(.last_message_id)"')
	cursor=$(jv .cursor)
	polls=$((polls + 1))
done
wait "${pids[@]}"
updates "$D" "$cursor"
while IFS=: read -r id last; do seen[$id]=$last; done < <(jv '.items[]|"\(.id):\(.last_message_id)"')
feed_ok=1
for c in "${convs[@]}"; do
	[ "${seen[$c]:-}" = "$(sql "SELECT max(id) FROM chat.messages WHERE conversation_id = $c")" ] || feed_ok=0
done
echo "#   $polls polls while 4 × 1000 sends went to 4 conversations"
check "... the poller polled during the sends (at least 5 polls)" [ "$polls" -ge 5 ]
check "the cursor chain ends on every conversation's newest message (no change skipped)" [ "$feed_ok" = 1 ]
check "every send was acknowledged" [ "$(cat "$STACK_DIR"/feed-?.out | grep -c $'\t201$')" = 4000 ]

section "unread counts under concurrent sends and marks"
cf=${convs[0]}
bulk_post "$A" "$cf" "more" 400 "$STACK_DIR/more.out" &
p=$!
marks=0 last=${seen[$cf]}
while kill -0 "$p" 2>/dev/null; do
	# Somewhere behind the newest message, moving forward.
	last=$((last + 5))
	post "$D" "/chat/conversations/$cf/read" "{\"message_id\":$last}" && marks=$((marks + 1))
done
wait "$p"
get "$D" /chat/conversations
listed=$(jv "$(printf '.items[]|select(.id == %s)|.unread' "$cf")")
counted=$(sql "SELECT count(*) FROM chat.messages x JOIN chat.members m ON m.conversation_id = x.conversation_id AND m.user_id = $dave_id WHERE x.conversation_id = $cf AND x.id > m.last_read_id")
echo "#   $marks marks during 400 sends; unread listed $listed, counted $counted"
check "unread (message_count - read_seq) equals a count of the messages after the marker" [ "$listed" = "$counted" ]
check "seq is 1..n in id order in every conversation (no gap, no duplicate)" \
	[ "$(sql "SELECT count(*) FROM (SELECT seq, row_number() OVER (PARTITION BY conversation_id ORDER BY id) AS rn FROM chat.messages) s WHERE seq <> rn")" = 0 ]
check "message_count and last_message_id agree with the messages" \
	[ "$(sql "SELECT count(*) FROM chat.conversations c WHERE c.message_count <> (SELECT count(*) FROM chat.messages m WHERE m.conversation_id = c.id) OR c.last_message_id IS DISTINCT FROM (SELECT max(id) FROM chat.messages m WHERE m.conversation_id = c.id)")" = 0 ]

# --- 5. plans on a conversation of 12 000 messages -----------------------------------
section "plans"
post "$A" /chat/conversations '{"title":"Big","members":["bob@x.io","carol@x.io"]}'
big=$(jv .id)
sql "INSERT INTO chat.conversations (title, owner_id) SELECT 'bulk ' || g, $erin_id FROM generate_series(1, 3000) g;
INSERT INTO chat.members (conversation_id, user_id, role) SELECT id, owner_id, 'owner' FROM chat.conversations WHERE owner_id = $erin_id;
INSERT INTO chat.members (conversation_id, user_id, role) SELECT id, $carol_id, 'member' FROM chat.conversations WHERE owner_id = $erin_id;
INSERT INTO chat.messages (conversation_id, sender_id, body, seq) SELECT c.id, c.owner_id, 'bulk ' || g, g FROM chat.conversations c, generate_series(1, 20) g WHERE c.owner_id = $erin_id;
UPDATE chat.conversations c SET message_count = 20, last_message_id = (SELECT max(id) FROM chat.messages m WHERE m.conversation_id = c.id) WHERE c.owner_id = $erin_id;
INSERT INTO chat.messages (conversation_id, sender_id, body, seq) SELECT $big, $alice_id, 'big ' || g, g FROM generate_series(1, 12000) g;
UPDATE chat.conversations SET message_count = 12000, last_message_id = (SELECT max(id) FROM chat.messages WHERE conversation_id = $big) WHERE id = $big;
INSERT INTO chat.member_removals (user_id, conversation_id, activity, removed_by) SELECT $dave_id, id, 1, owner_id FROM chat.conversations WHERE owner_id = $erin_id;" >/dev/null
sql "VACUUM ANALYZE" >/dev/null
big_mid=$(sql "SELECT id FROM chat.messages WHERE conversation_id = $big AND seq = 6000")
check "seeded: 12 000 messages in one conversation, 60 000 more, Carol in 3000 conversations, Dave removed from 3000" \
	[ "$(sql "SELECT count(*) FROM chat.messages WHERE conversation_id = $big")" = 12000 ]
updates "$B" 0; cpl=$(jv .cursor)
updates "$C" 0; ccpl=$(jv .cursor)
stack_pg_set auto_explain.log_min_duration 0
sleep 1
log_start=$(wc -l <"$STACK_DIR/pg/server.log")
updates "$B" "$cpl"; s1=$STATUS
post "$B" "/chat/conversations/$big/read" "{\"message_id\":$big_mid}"; s2=$STATUS u2=$(jv .unread)
updates "$B" "$cpl"; s3=$STATUS u3=$(item "$big" .unread)
get "$C" "/chat/conversations?limit=50"; s4=$STATUS
post "$A" "/chat/conversations/$big/messages" '{"body":"planned"}'; s5=$STATUS pm=$(jv .id)
del "$A" "/chat/conversations/$big/messages/$pm"; s6=$STATUS
del "$A" "/chat/conversations/$big/members/$carol_id"; s7=$STATUS
updates "$C" "$ccpl"; s8=$STATUS r8=$(jv '.removed|join(",")')
sleep 0.5
stack_pg_set auto_explain.log_min_duration -1
check "8 requests during the plan log: $s1 $s2 $s3 $s4 $s5 $s6 $s7 $s8" [ "$s1 $s2 $s3 $s4 $s5 $s6 $s7 $s8" = "200 200 200 200 201 204 204 200" ]
check "Carol's poll after her removal: the conversation under removed" [ "$r8" = "$big" ]
check "Bob's mark at the middle of 12 000: 6000 unread, in the answer and in his poll" [ "$u2/$u3" = 6000/6000 ]
tail -n +"$((log_start + 1))" "$STACK_DIR/pg/server.log" | awk '
	/^[0-9][0-9][0-9][0-9]-/ { n++ }
	{ print > (dir "/plan." n) }' dir="$STACK_DIR"
mapfile -t PLANS < <(grep -l "Query Text: .*sessions s WHERE s.id = \$1" "$STACK_DIR"/plan.* 2>/dev/null)
check "one statement per request: 8 requests, ${#PLANS[@]} chat statements executed" [ "${#PLANS[@]}" = 8 ]
p_upd=$(plan_of "pg_snapshot_xmin")
p_mark=$(plan_of "greatest(m.read_seq, mark.seq)")
p_list=$(plan_of "ORDER BY c.activity DESC")
p_del=$(plan_of "deleted_at = now()")
p_rm=$(plan_of "member_removals AS r")
for p in "$p_upd" "$p_mark" "$p_list" "$p_del" "$p_rm"; do echo "#   $(grep -o 'Query Text: .\{0,60\}' "$p")"; show_plan "$p"; done
check "updates: members_updates and member_removals_updates, no Seq Scan on members" \
	bash -c 'grep -Eq "Index (Only )?Scan using members_updates on members" "$0" && grep -Eq "Scan using member_removals_updates" "$0" && ! grep -q "Seq Scan on members" "$0"' "$p_upd"
check "read mark: a backward probe of messages_pkey, no Seq Scan on messages or members" \
	bash -c 'grep -q "Index Scan Backward using messages_pkey on messages" "$0" && ! grep -Eq "Seq Scan on (messages|members)" "$0"' "$p_mark"
check "list of a user in 3000 conversations: members_user, then the read state of the page by index, no Seq Scan on members" \
	bash -c 'grep -Eq "Index (Only )?Scan using members_user on members m( |$)" "$0" && grep -Eq "Index Scan using members_(user|pkey) on members r( |$)" "$0" && ! grep -q "Seq Scan on members" "$0"' "$p_list"
check "no plan of the window scans messages or members sequentially" bash -c '! grep -Eq "Seq Scan on (messages|members)" "$@"' "${PLANS[@]}"
explain() { stack_psql chat -tA -c "SET search_path = chat; EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) $1"; }
explain "$(literal_sql "$p_upd" "$(jti "$B")" "$bob_id" "$cpl")" >"$STACK_DIR/explain.updates"
explain "$(literal_sql "$p_upd" "$(jti "$B")" "$bob_id" 999999999999)" >"$STACK_DIR/explain.empty"
explain "$(literal_sql "$p_upd" "$(jti "$D")" "$dave_id" "$cpl")" >"$STACK_DIR/explain.removals"
for f in updates empty removals; do echo "#   EXPLAIN ANALYZE (updates, $f):"; grep -E "Scan|Buffers|Execution" "$STACK_DIR/explain.$f" | sed -E 's/^[[:space:]]*/#     /'; done
check "EXPLAIN, an empty poll: one probe of each updates index, a handful of buffers" \
	bash -c 'grep -q "Index Only Scan using members_updates" "$0" || grep -q "Index Scan using members_updates" "$0"; [ "$(grep -m1 -o "shared hit=[0-9]*" "$0" | cut -d= -f2)" -lt 40 ]' "$STACK_DIR/explain.empty"
check "EXPLAIN, Dave's poll (removed from 3000 conversations long ago): index probes, no Seq Scan" \
	bash -c 'grep -q "using member_removals_updates" "$0" && ! grep -Eq "Seq Scan on (members|member_removals)" "$0"' "$STACK_DIR/explain.removals"

section "done"
e2e_finish
