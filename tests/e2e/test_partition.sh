#!/usr/bin/env bash
# The database's host vanishes from the network (power cut, partition): no
# reset, no FIN, packets just go unanswered.  PostgreSQL runs in a network
# namespace of its own, reached over a veth pair; the partition is a
# neighbour entry pointing its address at a MAC nobody has, so every packet
# the workers send is dropped silently (and healed by restoring it).
# Asserted:
#   - a write in flight gets 503 with Retry-After within about
#     DB_TIMEOUT_MS (tcp_user_timeout ends the dead connection; without it
#     the worker's cancel request would block in connect() for the kernel's
#     SYN retries, about two minutes), and nothing is stored;
#   - while the partition lasts, each request gets its 503 within the
#     connect deadline: no worker hangs;
#   - once healed, the same workers reconnect and writes are acknowledged.
. "$(dirname "$0")/lib.sh"
export RATE_LIMIT_AUTH=100/minute RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
export DB_TIMEOUT_MS=2000

for tool in ip curl jq lighttpd openssl; do
	command -v "$tool" >/dev/null || { echo "Bail out! $tool is missing (scripts/install-deps.sh)"; exit 99; }
done
[ "$(id -u)" -eq 0 ] || { echo "Bail out! network namespaces need root"; exit 99; }

NS=chat-part-$$
VETH=cpa$$ # the host's end; the namespace's end is cpb$$
NET=10.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1))
HOST_ADDR=$NET.1
PG_ADDR=$NET.2
partition_cleanup() {
	e2e_cleanup
	ip netns del "$NS" 2>/dev/null # takes both ends of the pair with it
}
trap partition_cleanup EXIT

ip netns add "$NS" || { echo "Bail out! cannot create a network namespace"; exit 99; }
ip link add "$VETH" type veth peer name "cpb$$" &&
	ip link set "cpb$$" netns "$NS" &&
	ip addr add "$HOST_ADDR/24" dev "$VETH" && ip link set "$VETH" up &&
	ip netns exec "$NS" ip addr add "$PG_ADDR/24" dev "cpb$$" &&
	ip netns exec "$NS" ip link set "cpb$$" up &&
	ip netns exec "$NS" ip link set lo up || { echo "Bail out! veth pair"; exit 99; }
PG_MAC=$(ip netns exec "$NS" cat "/sys/class/net/cpb$$/address")

# PostgreSQL as usual, then moved into the namespace: a certificate that
# names its new address (verify-full), a pg_hba line for the host's side,
# and a restart there listening on that address only.  Its Unix socket
# stays in the file system, so the test's own psql is not cut off.
stack_pg_init || { echo "Bail out! PostgreSQL did not start"; exit 99; }
stack_migrate "$E2E_BUILDDIR" >/dev/null || { echo "Bail out! migrations failed"; exit 99; }
d=$STACK_DIR/pg
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:%s\n' "$PG_ADDR" >"$d/san.ext"
openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
	-days 30 -extfile "$d/san.ext" -out "$d/server.crt" 2>/dev/null
chmod 644 "$d/server.crt"
chown postgres: "$d/server.crt"
as_pg tee -a "$d/data/pg_hba.conf" >/dev/null <<<"hostssl all all $NET.0/24 scram-sha-256"
stack_pg_stop
ip netns exec "$NS" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 30 \
	-o "-c listen_addresses=$PG_ADDR" start >/dev/null ||
	{ tail -n 20 "$d/server.log"; echo "Bail out! PostgreSQL did not start in the namespace"; exit 99; }
sql() { stack_psql chat -At -c "$1"; }

stack_env chat_app
export POSTGRES_HOST=$PG_ADDR
export SCRYPT_N=10 SCRYPT_R=8 SCRYPT_P=1
e2e_lighttpd 2
wait_workers 2 || echo "# the workers did not come up"
workers_before=$(stack_worker_pids | sort | tr '\n' ' ')

req POST /auth/register -H 'Content-Type: application/json' --data '{"email":"ann@x.io","password":"pass word 1"}'
check "register over the veth pair: 201" is_status 201
req POST /auth/login -H 'Content-Type: application/json' --data '{"email":"ann@x.io","password":"pass word 1"}'
token=$(jq -r .access_token <<<"$BODY")
req POST /chat/conversations -H "Authorization: Bearer $token" -H 'Content-Type: application/json' --data '{"title":"p"}'
conv=$(jq -r .id <<<"$BODY")
check "a conversation: 201" is_status 201
post() { # BODY: one message, timed
	local t0=${EPOCHREALTIME/./}
	req POST "/chat/conversations/$conv/messages" -H "Authorization: Bearer $token" \
		-H 'Content-Type: application/json' --max-time 40 --data "{\"body\":\"$1\"}"
	local t1=${EPOCHREALTIME/./}
	MS=$(((t1 - t0) / 1000))
}
# A second client at the same time, so both workers are busy: plain curl,
# not req(), whose answer files are one per test.
bgpost() {
	curl -s -o /dev/null --max-time 40 -H "Authorization: Bearer $token" \
		-H 'Content-Type: application/json' --data "{\"body\":\"$1\"}" \
		"$BASE/chat/conversations/$conv/messages"
}
# Both workers hold a connection now (two sends at once, twice).
for i in 1 2; do
	bgpost "before $i a" &
	bg=$!
	post "before $i b"
	wait "$bg" # not a bare wait: lighttpd is a child of this shell too
done
post "before"
check "a message before the partition: 201" is_status 201
check "the workers are connected to $PG_ADDR over TLS" \
	[ "$(sql "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'chat-fcgi' AND s.ssl AND a.client_addr = '$HOST_ADDR'")" -ge 1 ]
stored_before=$(sql "SELECT count(*) FROM chat.messages")

# --- the partition ------------------------------------------------------------
ip neigh replace "$PG_ADDR" lladdr 02:00:00:00:00:99 dev "$VETH" nud permanent
post "during the partition"
check "a write in flight when the host vanished: $STATUS in ${MS} ms (503 under 6 s wanted; DB_TIMEOUT_MS 2000)" \
	bash -c '[ "$0" = 503 ] && [ "$1" -lt 6000 ]' "$STATUS" "$MS"
check "... with Retry-After" bash -c '[ -n "$0" ]' "$(header Retry-After)"
check "... database_unavailable" is_error 503 database_unavailable
slowest=0
codes=
for i in 1 2 3 4; do
	bgpost "still partitioned $i" &
	bg=$!
	post "still partitioned $i bis"
	s1=$STATUS m1=$MS
	wait "$bg"
	codes+=" $s1"
	[ "$m1" -gt "$slowest" ] && slowest=$m1
done
check "while it lasts, each request gets 503 in time (slowest of 4 ${slowest} ms):$codes" \
	bash -c '[ "$0" -lt 6000 ] && [ -z "$(echo $1 | tr " " "\n" | grep -v "^503$")" ]' "$slowest" "$codes"

# --- healed ---------------------------------------------------------------------
ip neigh replace "$PG_ADDR" lladdr "$PG_MAC" dev "$VETH" nud permanent
healed=${EPOCHREALTIME/./}
ok=
for _ in $(seq 1 40); do
	post "after"
	[ "$STATUS" = 201 ] && ok=1 && break
	sleep 0.25
done
back_ms=$(((${EPOCHREALTIME/./} - healed) / 1000))
check "healed: writes acknowledged again after ${back_ms} ms" [ -n "$ok" ]
check "... by the same workers (no restart): $workers_before" \
	[ "$(stack_worker_pids | sort | tr '\n' ' ')" = "$workers_before" ]
check "nothing sent during the partition was stored; the message after it was" \
	[ "$(sql "SELECT count(*) FROM chat.messages")" = $((stored_before + 1)) ]

e2e_finish
