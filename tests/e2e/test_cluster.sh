#!/usr/bin/env bash
# Three hosts on one machine behind HAProxy, one PostgreSQL (issue 13):
# three lighttpd instances on 127.0.0.2, .3 and .4, each with its own
# workers and its own shared-memory segment as on separate machines, behind
# HAProxy (round robin, `option forwardfor`, trusted through
# TRUSTED_PROXIES).  With RATE_LIMIT_SCOPE=cluster a burst from one client
# address admits exactly the limit (auth by address and email, chat and
# read by user) however the balancer spreads it; with host scope the same
# bursts get the documented excess, more than the limit and at most three
# times it.  Every answer goes through the recorder (openapi.yaml).
. "$(dirname "$0")/lib.sh"

command -v haproxy >/dev/null || { echo "Bail out! haproxy is missing (scripts/install-deps.sh)"; exit 99; }

# Accounts and a conversation first, on one ordinary host with no limits.
export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
e2e_start 1
for u in alice bob carol dave; do
	json POST /auth/register "{\"email\":\"$u@x.io\",\"password\":\"password-$u\"}"
done
token() { # USER
	json POST /auth/login "{\"email\":\"$1@x.io\",\"password\":\"password-$1\"}"
	printf '%s' "$BODY" | jq -r .access_token
}
alice=$(token alice) bob=$(token bob) carol=$(token carol) dave=$(token dave)
json POST /chat/conversations '{"title":"cluster"}' -H "Authorization: Bearer $bob"
conv_b=$(printf '%s' "$BODY" | jq -r .id)
json POST /chat/conversations '{"title":"cluster"}' -H "Authorization: Bearer $dave"
conv_d=$(printf '%s' "$BODY" | jq -r .id)
check "set-up: accounts and conversations" [ -n "$conv_b" -a "$conv_b" != null -a -n "$conv_d" -a "$conv_d" != null ]
stack_lighttpd_stop

# --- the three hosts and the balancer ------------------------------------------------
# A port free on the three addresses (stack_free_port looks at 127.0.0.1).
for _ in $(seq 1 50); do
	HOST_PORT=$(stack_free_port)
	for a in 2 3 4; do (exec 3<>"/dev/tcp/127.0.0.$a/$HOST_PORT") 2>/dev/null && HOST_PORT=; done
	[ -n "$HOST_PORT" ] && break
done
HA_PORT=$(stack_free_port)
# The client's own address: HAProxy adds it to X-Forwarded-For, and the
# workers trust HAProxy (127.0.0.1, the source of its connections).
CLIENT=127.0.0.9
export TRUSTED_PROXIES=127.0.0.1/32
HOST_PIDS=() HA_PID=
hosts_stop() {
	local p
	[ -n "$HA_PID" ] && { kill "$HA_PID" 2>/dev/null; wait "$HA_PID" 2>/dev/null; }
	HA_PID=
	for p in "${HOST_PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	HOST_PIDS=()
	stack_workers_gone
	rm -f /dev/shm/chat-e2e-$$-h*
}
trap 'hosts_stop; e2e_cleanup' EXIT

# hosts_start SCOPE: three lighttpd with 2 workers each, fresh segments,
# then HAProxy in front.
hosts_start() {
	local scope=$1 i addr ok
	hosts_stop
	for i in 1 2 3; do
		addr=127.0.0.$((i + 1))
		stack_lighttpd_conf "$E2E_BUILDDIR" "$HOST_PORT" 2 || { echo "Bail out! lighttpd.conf"; exit 99; }
		mkdir -p "$STACK_DIR/run$i"
		if [ "$(id -u)" -eq 0 ]; then chown "$STACK_USER:" "$STACK_DIR/run$i" && chmod 750 "$STACK_DIR/run$i"; fi
		sed -e "s|^var.chat_bind .*|var.chat_bind    = \"$addr\"|" \
			-e "s|^var.chat_state .*|var.chat_state   = \"$STACK_DIR/run$i\"|" \
			"$STACK_DIR/lighttpd.conf" >"$STACK_DIR/lighttpd-$i.conf"
		RATE_LIMIT_SCOPE=$scope RATE_LIMIT_SHM=/chat-e2e-$$-h$i-$scope \
			lighttpd -D -f "$STACK_DIR/lighttpd-$i.conf" 2>>"$STACK_DIR/lighttpd.log" &
		HOST_PIDS+=($!)
	done
	cat >"$STACK_DIR/haproxy.cfg" <<CFG
global
	maxconn 2000
defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend chat
	bind 127.0.0.1:$HA_PORT
	default_backend hosts
backend hosts
	balance roundrobin
	option forwardfor
	# Which host answered, for the test only.
	http-response set-header X-Served-By %s
	server h1 127.0.0.2:$HOST_PORT source 127.0.0.1
	server h2 127.0.0.3:$HOST_PORT source 127.0.0.1
	server h3 127.0.0.4:$HOST_PORT source 127.0.0.1
CFG
	haproxy -db -f "$STACK_DIR/haproxy.cfg" >>"$STACK_DIR/haproxy.log" 2>&1 &
	HA_PID=$!
	BASE=http://127.0.0.1:$HA_PORT
	# Every host answers through the balancer (round robin: 9 in a row).
	for _ in $(seq 1 100); do
		ok=$(for _ in $(seq 1 9); do curl -s -o /dev/null -w '%{http_code}\n' --interface $CLIENT "$BASE/healthz"; done | grep -c '^200$')
		[ "$ok" = 9 ] && return 0
		sleep 0.1
	done
	echo "Bail out! the three hosts do not all answer through HAProxy"
	tail -n 20 "$STACK_DIR/haproxy.log" "$STACK_DIR/lighttpd.log"
	exit 99
}

# burst TAG N CURL-ARGS...: N concurrent requests from the client's
# address; each answer (headers, body) in $STACK_DIR/burst-TAG/, then
# recorded for the openapi.yaml check like req()'s.  Prints nothing.
burst() {
	local tag=$1 n=$2 f method path
	shift 2
	rm -rf "$STACK_DIR/burst-$tag"
	mkdir -p "$STACK_DIR/burst-$tag"
	seq 1 "$n" | xargs -P "$n" -I{} curl -s -o "$STACK_DIR/burst-$tag/{}.body" \
		-D "$STACK_DIR/burst-$tag/{}.hdrs" -w '%{http_code}' --max-time 30 --interface $CLIENT \
		-H "X-Request-ID: cl-$$-$tag-{}" "$@" >/dev/null
	method=$BURST_METHOD path=$BURST_PATH
	for f in "$STACK_DIR/burst-$tag"/*.hdrs; do
		STATUS=$(head -n 1 "$f" | cut -d' ' -f2)
		BODY=$(cat "${f%.hdrs}.body")
		cp "$f" "$HDRS"
		e2e_record "$method" "$path"
	done
}
statuses() { # TAG: "status count" lines
	for f in "$STACK_DIR/burst-$1"/*.hdrs; do head -n 1 "$f" | cut -d' ' -f2; done | sort | uniq -c | awk '{print $2 ":" $1}' | tr '\n' ' '
}
count_not() { # TAG STATUS: answers with another status
	for f in "$STACK_DIR/burst-$1"/*.hdrs; do head -n 1 "$f" | cut -d' ' -f2; done | grep -vc "^$2\$" || true
}
count_is() { # TAG STATUS
	for f in "$STACK_DIR/burst-$1"/*.hdrs; do head -n 1 "$f" | cut -d' ' -f2; done | grep -c "^$2\$" || true
}
hosts_of() { # TAG: how many distinct hosts answered
	grep -hi '^X-Served-By:' "$STACK_DIR/burst-$1"/*.hdrs | tr -d '\r' | sort -u | wc -l
}
admitted_by() { # TAG STATUS: "h1:n h2:n h3:n" of the answers with that status
	grep -li "^HTTP/1.1 $2" "$STACK_DIR/burst-$1"/*.hdrs | xargs -r grep -hi '^X-Served-By:' |
		tr -d '\r' | awk '{print $2}' | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}'
}
# Every 429 exactly as the single host answers it: Retry-After equal to
# the body's retry_after >= 1, RateLimit-* headers, the rate_limited
# envelope, one rate_limited security event for each.
limited_as_before() { # TAG
	local f b n=0 events
	for f in $(grep -l '^HTTP/1.1 429' "$STACK_DIR/burst-$1"/*.hdrs); do
		b=${f%.hdrs}.body
		n=$((n + 1))
		[ "$(jq -r .error "$b")" = rate_limited ] || return 1
		[ "$(grep -i '^Retry-After:' "$f" | tr -dc 0-9)" = "$(jq -r .retry_after "$b")" ] || return 1
		[ "$(jq -r .retry_after "$b")" -ge 1 ] || return 1
		grep -qi '^RateLimit-Limit: 5' "$f" && grep -qi '^RateLimit-Remaining: 0' "$f" &&
			grep -qi '^RateLimit-Reset: [1-9]' "$f" || return 1
	done
	sleep 0.3
	events=$(grep -F "\"request_id\":\"cl-$$-$1-" "$STACK_DIR/lighttpd.log" |
		jq -r 'select(.security == true and .event == "rate_limited") | .request_id' | sort -u | wc -l)
	[ "$n" -gt 0 ] && [ "$events" = "$n" ]
}

# scenario SCOPE EMAIL TOKEN_READ TOKEN_CHAT CONV: the three bursts; sets
# LOGIN, READ and CHAT to the number admitted.
scenario() {
	local scope=$1 email=$2 tr=$3 tc=$4 conv=$5
	BURST_METHOD=POST BURST_PATH=/auth/login burst "$scope-login" 60 -H 'Content-Type: application/json' \
		--data-binary "{\"email\":\"$email\",\"password\":\"wrong password\"}" "$BASE/auth/login"
	LOGIN=$(count_not "$scope-login" 429)
	echo "# $scope scope, 60 logins: $(statuses "$scope-login")(admitted by $(admitted_by "$scope-login" 401))"
	check "$scope: the logins reached all three hosts" [ "$(hosts_of "$scope-login")" = 3 ]
	check "$scope: every admitted login was checked: 401 (wrong password)" \
		[ "$(count_not "$scope-login" 429)" = "$(count_is "$scope-login" 401)" ]
	check "$scope: every login 429 as on one host (headers, body, security event)" limited_as_before "$scope-login"

	BURST_METHOD=GET BURST_PATH=/auth/me burst "$scope-read" 30 -H "Authorization: Bearer $tr" "$BASE/auth/me"
	READ=$(count_not "$scope-read" 429)
	echo "# $scope scope, 30 reads of one user: $(statuses "$scope-read")(admitted by $(admitted_by "$scope-read" 200))"
	check "$scope: the reads reached all three hosts" [ "$(hosts_of "$scope-read")" = 3 ]
	check "$scope: every read 429 as on one host" limited_as_before "$scope-read"

	BURST_METHOD=POST BURST_PATH=/chat/conversations/$conv/messages burst "$scope-chat" 30 \
		-H "Authorization: Bearer $tc" -H 'Content-Type: application/json' \
		--data-binary '{"body":"hello"}' "$BASE/chat/conversations/$conv/messages"
	CHAT=$(count_not "$scope-chat" 429)
	echo "# $scope scope, 30 messages of one user: $(statuses "$scope-chat")(admitted by $(admitted_by "$scope-chat" 201))"
	check "$scope: the messages reached all three hosts" [ "$(hosts_of "$scope-chat")" = 3 ]
	check "$scope: every message 429 as on one host" limited_as_before "$scope-chat"
	check "$scope: each admitted message stored once, no refused one" \
		[ "$(stack_psql chat -tA -c "SELECT count(*) FROM chat.messages WHERE conversation_id = $conv")" = "$CHAT" ]
}

export RATE_LIMIT_AUTH=5/minute RATE_LIMIT_READ=5/minute RATE_LIMIT_CHAT=5/minute

# --- cluster scope: exact --------------------------------------------------------------
# Two rows of idle keys: one replenished 20 minutes ago (past the 11-minute
# margin: the first sweep deletes it), one a minute ago (kept).
now_ms=$(stack_psql chat -tA -c "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint")
stack_psql chat -c "INSERT INTO chat.rate_limits (class, key, tat) VALUES
	(0, '\\x0000000000000000000000000000dead', $now_ms - 1200000),
	(0, '\\x0000000000000000000000000000beef', $now_ms - 60000)" >/dev/null
hosts_start cluster
scenario cluster carol@x.io "$alice" "$bob" "$conv_b"
check "cluster: exactly 5 of 60 logins admitted" [ "$LOGIN" = 5 ]
check "cluster: exactly 5 of 30 reads of one user admitted" [ "$READ" = 5 ]
check "cluster: exactly 5 of 30 messages of one user admitted" [ "$CHAT" = 5 ]
check "cluster: the first sweep deleted the long-idle row, kept the recent one" \
	[ "$(stack_psql chat -tA -c "SELECT string_agg(encode(key, 'hex'), ',') FROM chat.rate_limits WHERE key IN ('\\x0000000000000000000000000000dead', '\\x0000000000000000000000000000beef')")" = 0000000000000000000000000000beef ]
stack_psql chat -c "DELETE FROM chat.rate_limits WHERE key = '\\x0000000000000000000000000000beef'" >/dev/null
check "cluster: the sweeps' turn row is there, due in at most 10 s" \
	[ "$(stack_psql chat -tA -c "SELECT count(*) FROM chat.rate_limits WHERE class = -1 AND tat BETWEEN $now_ms AND $now_ms + 10000 + 60000")" = 1 ]
rows=$(stack_psql chat -tA -c "SELECT class || ':' || count(*) FROM chat.rate_limits WHERE class >= 0 GROUP BY class ORDER BY class" | tr '\n' ' ')
check "cluster: one row per limited key (auth, chat, read, login): $rows" [ "$rows" = "0:1 1:1 2:1 3:1 " ]
check "cluster: keys are stored as 16-byte MACs, not as given" \
	[ "$(stack_psql chat -tA -c "SELECT count(*) FROM chat.rate_limits WHERE length(key) <> 16 OR position('carol'::bytea IN key) > 0 OR position('127.0.0.9'::bytea IN key) > 0")" = 0 ]

# chat-admin ratelimit reset in cluster scope: the key's row in PostgreSQL
# (shared) and the entry of the segment it is run against (host 1's).
alice_id=$(stack_psql chat -tA -c "SELECT id FROM chat.users WHERE email = 'alice@x.io'")
out=$(RATE_LIMIT_SCOPE=cluster RATE_LIMIT_SHM=/chat-e2e-$$-h1-cluster "$E2E_BUILDDIR/chat-admin" ratelimit reset "read:$alice_id" 2>&1)
check "chat-admin ratelimit reset read:ID in cluster scope: the entry and the row ($out)" \
	bash -c '[[ "$0" == *"1 entry cleared; 1 cluster row deleted"* ]]' "$out"
BASE_SAVED=$BASE
BASE=http://127.0.0.2:$HOST_PORT
req GET /auth/me -H "Authorization: Bearer $alice"
check "... host 1 admits alice's read again" is_status 200
BASE=http://127.0.0.3:$HOST_PORT
req GET /auth/me -H "Authorization: Bearer $alice"
check "... host 2's own segment still refuses it (reset runs per host)" is_error 429 rate_limited
BASE=$BASE_SAVED

# The database down: a request this host's table admits is not admitted
# blindly, it gets the database's 503 with Retry-After (fail closed).  From
# another address, which the shared memory has not refused yet.
stack_pg_stop
req POST /auth/login --interface 127.0.0.10 -H 'Content-Type: application/json' \
	--data-binary '{"email":"nobody@x.io","password":"wrong password"}'
check "cluster, database down: 503 database_unavailable with Retry-After" \
	bash -c '[ "$0" = 503 ] && [ "$(jq -r .error <<<"$1")" = database_unavailable ] && [ -n "$2" ]' "$STATUS" "$BODY" "$(header Retry-After)"
stack_pg_start

# --- host scope: up to one limit per host ----------------------------------------
hosts_start host
scenario host dave@x.io "$carol" "$dave" "$conv_d"
check "host: more than 5 logins admitted, at most 3 x 5 ($LOGIN)" [ "$LOGIN" -gt 5 -a "$LOGIN" -le 15 ]
check "host: more than 5 reads admitted, at most 3 x 5 ($READ)" [ "$READ" -gt 5 -a "$READ" -le 15 ]
check "host: more than 5 messages admitted, at most 3 x 5 ($CHAT)" [ "$CHAT" -gt 5 -a "$CHAT" -le 15 ]

hosts_stop
e2e_finish
