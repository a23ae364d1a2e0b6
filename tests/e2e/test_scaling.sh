#!/usr/bin/env bash
# The worker count is one setting (lighttpd max-procs): with 1 and with 8
# workers the service behaves the same, the rate limit included; a worker
# killed under load is respawned, at most its in-flight requests fail, and
# nothing acknowledged is lost; PostgreSQL restarted under load gives 503s,
# then full service, nothing acknowledged lost.
. "$(dirname "$0")/lib.sh"

export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
e2e_start 1

# The same scenario at each worker count; prints one line of outcomes.
scenario() { # TAG
	local tag=$1 t codes
	json POST /auth/register "{\"email\":\"$tag@x.io\",\"password\":\"password-$tag\"}"
	printf 'register=%s ' "$STATUS"
	json POST /auth/register "{\"email\":\"$tag@X.io\",\"password\":\"password-$tag\"}"
	printf 'again=%s ' "$STATUS"
	json POST /auth/login "{\"email\":\"$tag@x.io\",\"password\":\"password-$tag\"}"
	printf 'login=%s ' "$STATUS"
	t=$(printf '%s' "$BODY" | jq -r .access_token)
	req GET /auth/me -H "Authorization: Bearer $t"
	printf 'me=%s ' "$STATUS"
	req POST /auth/logout -H "Authorization: Bearer $t" -H 'Content-Length: 0'
	printf 'logout=%s ' "$STATUS"
	# 1 + 4 reads of this user: within RATE_LIMIT_READ=5/minute.
	codes=$(for _ in 1 2 3 4; do req GET /auth/me -H "Authorization: Bearer $t"; echo "$STATUS"; done | sort -u | tr '\n' ,)
	printf 'after=%s ' "$codes"
	# Rate limit: 5 of 30 concurrent reads of another user, however many workers.
	json POST /auth/register "{\"email\":\"$tag-b@x.io\",\"password\":\"password-$tag\"}"
	json POST /auth/login "{\"email\":\"$tag-b@x.io\",\"password\":\"password-$tag\"}"
	t=$(printf '%s' "$BODY" | jq -r .access_token)
	codes=$(seq 1 30 | xargs -P 30 -I{} curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $t" "$BASE/auth/me" | sort | uniq -c | awk '{printf "%s:%s,", $2, $1}')
	printf 'burst=%s\n' "$codes"
}

outcomes=()
for n in 1 8; do
	export RATE_LIMIT_READ=5/minute
	rm -f "/dev/shm$RATE_LIMIT_SHM"
	export RATE_LIMIT_SHM=/chat-e2e-$$-$n
	e2e_lighttpd "$n"
	sleep 0.5
	running=$(stack_worker_pids | wc -l)
	check "max-procs $n: $running worker processes" [ "$running" = "$n" ]
	out=$(scenario "w$n")
	echo "# $n worker(s): $out"
	outcomes+=("$out")
done
check "1 and 8 workers: the same outcomes" [ "${outcomes[0]}" = "${outcomes[1]}" ]
check "... and they are the expected ones" \
	[ "${outcomes[0]}" = "register=201 again=409 login=200 me=200 logout=204 after=401, burst=200:5,429:25," ]

# --- crashes and outages under load ---------------------------------------------------
export RATE_LIMIT_READ=off
rm -f "/dev/shm$RATE_LIMIT_SHM"
export RATE_LIMIT_SHM=/chat-e2e-$$-crash
e2e_lighttpd 4
json POST /auth/register '{"email":"load@x.io","password":"password-load"}'
json POST /auth/login '{"email":"load@x.io","password":"password-load"}'
T=$(printf '%s' "$BODY" | jq -r .access_token)
json POST /chat/conversations '{"title":"load"}' -H "Authorization: Bearer $T"
conv=$(printf '%s' "$BODY" | jq -r .id)

# load TAG SECONDS: 4 clients posting messages; each answer as "status id".
post_one() { # TEXT
	local out code
	out=$(curl -s --max-time 10 -H "Authorization: Bearer $T" -H 'Content-Type: application/json' \
		--data-binary "{\"body\":\"$1\"}" -w '\n%{http_code}' "$BASE/chat/conversations/$conv/messages")
	code=${out##*$'\n'}
	if [ "$code" = 201 ]; then
		echo "$code $(printf '%s' "${out%$'\n'*}" | jq -r .id)"
	else
		echo "$code -"
	fi
}
LOADERS=()
load() {
	local tag=$1 secs=$2 c
	LOADERS=()
	for c in 1 2 3 4; do
		(
			end=$((SECONDS + secs))
			i=0
			while [ $SECONDS -lt "$end" ]; do
				i=$((i + 1))
				post_one "$tag c$c m$i"
			done >"$STACK_DIR/load-$tag-$c"
		) &
		LOADERS+=($!)
	done
}
# Every message of the conversation, walked backwards with ?before=.
history_ids() {
	local page q=""
	while :; do
		page=$(curl -s -H "Authorization: Bearer $T" "$BASE/chat/conversations/$conv/messages?limit=200$q" | jq -r '.items[].id')
		[ -n "$page" ] || break
		printf '%s\n' "$page"
		q="&before=$(printf '%s\n' "$page" | head -n 1)"
	done
}
acked_all_present() { # TAG
	local missing dup
	cat "$STACK_DIR"/load-"$1"-* | awk '$1 == 201 {print $2}' | sort >"$STACK_DIR/acked-$1"
	history_ids | sort >"$STACK_DIR/history-$1"
	missing=$(comm -23 "$STACK_DIR/acked-$1" "$STACK_DIR/history-$1" | wc -l)
	dup=$(uniq -d "$STACK_DIR/history-$1" | wc -l)
	echo "# $1: $(wc -l <"$STACK_DIR/acked-$1") acknowledged, $missing missing, $dup duplicated in the history"
	[ "$missing" = 0 ] && [ "$dup" = 0 ] && [ -s "$STACK_DIR/acked-$1" ]
}

load kill 6
sleep 1.5
pids_before=$(stack_worker_pids | sort | tr '\n' ' ')
for _ in 1 2; do
	pkill -9 -P "$LIGHTTPD_PID" -f chat-fcgi -n || true # the newest worker
	sleep 1.5
done
wait "${LOADERS[@]}"
mv "$STACK_DIR/lighttpd.log" "$STACK_DIR/lighttpd.log.kill-9"
failed=$(cat "$STACK_DIR"/load-kill-* | awk '$1 != 201' | wc -l)
total=$(cat "$STACK_DIR"/load-kill-* | wc -l)
echo "# kill -9 of 2 workers under load: $failed of $total requests failed ($(cat "$STACK_DIR"/load-kill-* | awk '$1 != 201 {print $1}' | sort | uniq -c | tr '\n' ' '))"
wait_workers 4
check "killed workers were respawned (4 running, new pids)" \
	[ "$(stack_worker_pids | wc -l)" = 4 -a "$(stack_worker_pids | sort | tr '\n' ' ')" != "$pids_before" ]
check "at most the requests in flight on the killed workers failed ($failed <= 2 x 2)" [ "$failed" -le 4 ]
check "every acknowledged message is in the history exactly once (kill -9)" acked_all_present kill

load outage 8
sleep 2
stack_pg_stop
sleep 2
stack_pg_start
wait "${LOADERS[@]}"
codes=$(cat "$STACK_DIR"/load-outage-* | awk '{print $1}' | sort | uniq -c | tr '\n' ' ')
echo "# PostgreSQL restarted under load: $codes"
check "the outage answered 503, never anything but 201 or 503" \
	bash -c '[ -n "$(cat "$0"/load-outage-* | awk "\$1 == 503")" ] && [ -z "$(cat "$0"/load-outage-* | awk "\$1 != 201 && \$1 != 503")" ]' "$STACK_DIR"
check "service came back: the last answers of every client are 201" \
	bash -c 'for f in "$0"/load-outage-*; do [ "$(tail -n 1 "$f" | cut -d" " -f1)" = 201 ] || exit 1; done' "$STACK_DIR"
check "every acknowledged message is in the history exactly once (outage)" acked_all_present outage

e2e_finish
