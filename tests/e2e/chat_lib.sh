# shellcheck shell=bash
# Helpers of the chat suites (test_chat.sh, test_chat_updates.sh), sourced
# after lib.sh: requests as a user, the error shapes, users, bulk sends and
# the statements' plans from auto_explain.

jv() { printf '%s' "$BODY" | jq -r "$1"; }
# Requests as a user: get|del TOKEN PATH [curl args], post TOKEN PATH JSON [curl args].
get() {
	local t=$1 p=$2
	shift 2
	req GET "$p" -H "Authorization: Bearer $t" "$@"
}
post() {
	local t=$1 p=$2 d=$3
	shift 3
	json POST "$p" "$d" -H "Authorization: Bearer $t" "$@"
}
del() {
	local t=$1 p=$2
	shift 2
	req DELETE "$p" -H "Authorization: Bearer $t" "$@"
}
field_is() { # FIELD: 422 validation_failed naming FIELD
	[ "$STATUS" = 422 ] && is_json .error validation_failed && is_json .field "$1"
}
bad_request_is() { # FIELD: 400 bad_request naming FIELD
	[ "$STATUS" = 400 ] && is_json .error bad_request && is_json .field "$1"
}
not_found() { is_error 404 not_found; }
sql() { stack_psql chat -tA -c "$1"; }
# user EMAIL NAME: register and log in; sets UID_ and TOKEN.
user() {
	json POST /auth/register "{\"email\":\"$1\",\"password\":\"password-$2\",\"display_name\":\"$2\"}"
	UID_=$(jv .id)
	json POST /auth/login "{\"email\":\"$1\",\"password\":\"password-$2\"}"
	TOKEN=$(jv .access_token)
}
section() { echo "# --- $1 (t=$((SECONDS - T0))s)"; }
# bulk_post TOKEN CONV PREFIX N OUT: N messages "PREFIX-i" over one curl
# (keep-alive); OUT gets a tab and the status of each.
bulk_post() {
	local tok=$1 cid=$2 prefix=$3 n=$4 out=$5 cfg=$STACK_DIR/bulk-$3.cfg i
	for ((i = 1; i <= n; i++)); do
		[ "$i" -gt 1 ] && echo next
		printf 'url = "%s"\nheader = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\n' \
			"$BASE/chat/conversations/$cid/messages" "$tok"
		printf 'data-binary = "{\\"body\\":\\"%s-%d\\"}"\nwrite-out = "\\t%%{http_code}\\n"\nmax-time = 20\nsilent\n' "$prefix" "$i"
	done >"$cfg"
	curl -K "$cfg" >"$out" 2>/dev/null
}
# The jti claim of a token (its session id).
jti() { printf '%s' "$1" | cut -d. -f2 | tr -- '-_' '+/' | { s=$(cat); while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done; printf '%s' "$s"; } | openssl base64 -A -d | jq -r .jti; }
# Plans: PLANS holds the auto_explain files of the requests under study.
plan_of() { grep -l "Query Text: .*$1" "${PLANS[@]}" | head -n 1; }
show_plan() { # evidence for the log: the scan lines of the plan
	grep -E "Scan|Limit|Sort|Nested|Join" "$1" | sed -E 's/  \(cost=.*//; s/^[[:space:]]*/#     /'
}
literal_sql() { # PLAN-FILE $1..$6: the statement's text with literals
	local text
	text=$(grep -o 'Query Text: .*' "$1" | head -n 1 | sed 's/^Query Text: //')
	shift
	local i=$#
	while [ "$i" -ge 1 ]; do
		text=${text//\$$i/\'${!i}\'}
		i=$((i - 1))
	done
	printf '%s' "$text"
}
