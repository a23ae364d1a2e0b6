#!/usr/bin/env bash
# Foundation, end to end through lighttpd (4 workers) and PostgreSQL (TLS):
# health routes, the error envelope and headers of SPEC §2, bad input at
# the edge, database loss and recovery, TLS enforcement by mode, config
# refusal, logs, migrations.
. "$(dirname "$0")/lib.sh"

# Limits have their own test (test_ratelimit.sh); here they would only get
# in the way of the many requests from one address.
export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
e2e_start 4

# --- health and common headers ------------------------------------------
req GET /healthz
check "healthz answers 200 ok" is_json .status ok
check "healthz is JSON" has_header Content-Type application/json
check "nosniff on every answer" has_header X-Content-Type-Options nosniff
check "no-store on every answer" has_header Cache-Control no-store
check "a request id is generated (32 hex)" bash -c '[[ "$0" =~ ^[0-9a-f]{32}$ ]]' "$(header X-Request-ID)"

req GET /healthz -H 'X-Request-ID: client-id_1.2'
check "a valid client request id is echoed" has_header X-Request-ID client-id_1.2
long=$(printf 'a%.0s' $(seq 1 128))
req GET /healthz -H "X-Request-ID: $long"
check "a 128-char client id is kept" has_header X-Request-ID "$long"
req GET /healthz -H "X-Request-ID: ${long}b"
check "a 129-char client id is replaced" bash -c '[[ "$0" =~ ^[0-9a-f]{32}$ ]]' "$(header X-Request-ID)"
req GET /healthz -H 'X-Request-ID: bad id<script>'
check "an id with bad characters is replaced" bash -c '[[ "$0" =~ ^[0-9a-f]{32}$ ]]' "$(header X-Request-ID)"

req GET /readyz
check "readyz answers 200 ready with the database up" is_json .status ready

# --- routing errors ----------------------------------------------------
req GET /nope
check "unknown path: 404 not_found envelope" is_error 404 not_found
check "404 carries nosniff too" has_header X-Content-Type-Options nosniff
req GET /healthz/
check "trailing slash is another path: 404" is_error 404 not_found
req DELETE /healthz
check "known path, wrong method: 405" is_error 405 method_not_allowed
check "405 lists the allowed methods" has_header Allow GET
req GET /auth/login
check "GET on a POST route: 405 with Allow: POST" bash -c '[ "$0" = 405 ] && [ "$1" = POST ]' "$STATUS" "$(header Allow)"
req BREW /healthz
check "an unknown method: the web server's 501 not_implemented, in the envelope (tests/e2e/test_door.sh)" \
	is_error 501 not_implemented
check "the worker serves the next request" still_serving

# --- bodies at the edge ------------------------------------------------
users_count() { stack_psql chat -tA -c 'SELECT count(*) FROM chat.users'; }

big=$(head -c 70000 /dev/zero | tr '\0' 'a')
json POST /auth/register "{\"email\":\"big@x.io\",\"password\":\"$big\"}"
check "a body over MAX_BODY_BYTES: 413 payload_too_large" is_error 413 payload_too_large
check "worker survives the 413" still_serving

# A 10 MB Content-Length whose body never comes: answered at once, not
# after a timeout, and nothing waits for the missing bytes.
# lighttpd buffers request bodies (so a slow client holds no worker) and
# caps them at twice MAX_BODY_BYTES: this one is refused from its headers.
start=$(date +%s%N)
code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 -X POST -H 'Content-Type: application/json' \
	-H 'Content-Length: 10485760' --data-binary '{"email"' "$BASE/auth/register")
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "10 MB Content-Length that never arrives: 413 at once (${ms} ms)" \
	[ "$code" = 413 -a "$ms" -lt 2000 ]
check "worker survives the unfinished upload" still_serving

req POST /auth/register -H 'Content-Type: text/plain' --data-binary '{"email":"a@x.io","password":"pass word 1"}'
check "text/plain body: 415" is_error 415 unsupported_media_type
req POST /auth/register --data-binary '{"email":"a@x.io","password":"pass word 1"}' -H 'Content-Type:'
check "no content type: 415" is_error 415 unsupported_media_type
json POST /auth/register '{"email": "a@x.io", "password": '
check "invalid JSON: 400 bad_request" is_error 400 bad_request
json POST /auth/register '["a@x.io","password1"]'
check "JSON array instead of object: 400" is_error 400 bad_request
json POST /auth/register '"just a string"'
check "JSON string instead of object: 400" is_error 400 bad_request
json POST /auth/register '{"email":"a@x.io","password":"pass word 1"} trailing'
check "data after the JSON value: 400" is_error 400 bad_request
json POST /auth/register "$(printf '{"email":"a\xff@x.io","password":"pass word 1"}')"
check "non-UTF-8 body: 400" is_error 400 bad_request
req POST /auth/register -H 'Content-Type: application/json' --data-binary @<(printf '{"email":"a@x.io","password":"pass\0word1"}')
check "raw NUL byte in the body: 400" is_error 400 bad_request
json POST /auth/register '{"email":"a\u0000b@x.io","password":"pass word 1"}'
check "NUL escaped inside a JSON string: 422 on that field" bash -c '[ "$0" = 422 ] && [ "$1" = email ]' "$STATUS" "$(printf '%s' "$BODY" | jq -r .field)"
json POST /auth/register '{"email":"a@x.io","password":12345678}'
check "wrong JSON type for a field: 400 with the field" bash -c '[ "$0" = 400 ] && [ "$1" = password ]' "$STATUS" "$(printf '%s' "$BODY" | jq -r .field)"
json POST /auth/register '{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}'
check "nesting past the depth limit: 400" is_error 400 bad_request
check "no bad request stored anything" [ "$(users_count)" = 0 ]
check "worker survives all of it" still_serving

# lighttpd.conf's bin-environment reaches every worker: GnuTLS, loaded with
# libpq's libldap and never used, stays uninitialised (docs/PERFORMANCE.md).
gnutls_env=$(for pid in $(stack_worker_pids); do
	tr '\0' '\n' <"/proc/$pid/environ" | grep -c '^GNUTLS_NO_IMPLICIT_INIT=1$'
done | sort | uniq -c | sed 's/^ *//')
check "GNUTLS_NO_IMPLICIT_INIT=1 in the environment of all 4 workers ($gnutls_env)" [ "$gnutls_env" = "4 1" ]

# --- the database goes away and comes back ---------------------------
pids_before=$(stack_worker_pids | sort | tr '\n' ' ')
stack_pg_stop
start=$(date +%s%N)
req GET /readyz
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "database down: readyz 503 database_unavailable" is_error 503 database_unavailable
check "503 carries Retry-After" bash -c '[ -n "$0" ]' "$(header Retry-After)"
check "503 comes quickly (${ms} ms < 1000)" bash -c '[ "$0" -lt 1000 ]' "$ms"
json POST /auth/login '{"email":"a@x.io","password":"pass word 1"}'
check "database down: login 503 too" is_error 503 database_unavailable
req GET /healthz
check "healthz does not need the database" is_json .status ok
stack_pg_start
ok=0
for _ in $(seq 1 60); do
	# Each request may land on another worker: wait until all are back.
	good=0
	for _ in 1 2 3 4 5 6 7 8; do req GET /readyz; is_status 200 && good=$((good + 1)); done
	[ "$good" = 8 ] && { ok=1; break; }
	sleep 0.25
done
check "database back: every worker serves again" [ "$ok" = 1 ]
pids_after=$(stack_worker_pids | sort | tr '\n' ' ')
check "... without a worker restart" [ "$pids_before" = "$pids_after" ]

# --- the workers' system-call filter (src/sandbox.h) -----------------------
# Checked here: the same workers have served everything above, reconnects
# after the database restart included, under their filter.  A worker the
# filter killed would have been respawned (another pid) and lighttpd logs
# "child signalled: 31", which e2e_finish looks for.
pids=$(stack_worker_pids)
sleep 0.2
if e2e_sanitizer_build; then
	missing=$(logged_by_each "$STACK_DIR/lighttpd.log" \
		'"level":"warn","pid":[0-9]+,"event":"seccomp","msg":"system-call filter not installed: sanitizer build' $pids | tr '\n' ' ')
	check "sanitizer build: each of the $(echo $pids | wc -w) workers logs at warn that it runs without its filter${missing:+ (not: $missing)}" \
		[ -z "$missing" -a "$(echo $pids | wc -w)" = 4 ]
else
	odd=$(confined_as_expected $pids)
	check "every worker ($(echo $pids | wc -w)) is confined: Seccomp: 2, NoNewPrivs: 1, its own filter${odd:+ ($odd)}" \
		[ -z "$odd" -a "$(echo $pids | wc -w)" = 4 ]
	missing=$(logged_by_each "$STACK_DIR/lighttpd.log" '"msg":"worker ready \(mode TEST, seccomp on\)"' $pids | tr '\n' ' ')
	check "... and says so when ready${missing:+ (not: $missing)}" [ -z "$missing" ]
fi

# --- logs --------------------------------------------------------------
pw=Sekrit-Passw0rd-$$
json POST /auth/register "{\"email\":\"log@x.io\",\"password\":\"$pw\"}"
json POST /auth/login "{\"email\":\"log@x.io\",\"password\":\"$pw\"}"
token=$(printf '%s' "$BODY" | jq -r .access_token)
req GET /auth/me -H "Authorization: Bearer $token" -H 'X-Request-ID: log-probe-1'
check "the authenticated request worked" is_json .email log@x.io
sleep 0.2
logline=$(grep '"request_id":"log-probe-1"' "$STACK_DIR/lighttpd.log")
check "one JSON line per request with the SPEC fields" bash -c 'printf "%s" "$0" | jq -e "
	.ts and .level == \"info\" and .method == \"GET\" and .path == \"/auth/me\" and .status == 200
	and (.duration_ms|type) == \"number\" and (.pid|type) == \"number\" and (.user_id|type) == \"number\"" >/dev/null' "$logline"
check "every worker log line is valid JSON" bash -c 'grep "^{" "$0" | jq -e . >/dev/null' "$STACK_DIR/lighttpd.log"
check "no password in the logs" bash -c '! grep -q -- "$0" "$1"' "$pw" "$STACK_DIR/lighttpd.log"
check "no token in the logs" bash -c '! grep -q -- "${0##*.}" "$1"' "$token" "$STACK_DIR/lighttpd.log"
req GET '/healthz?token=abc' -H 'X-Request-ID: log-probe-2'
sleep 0.2
check "the query string is not logged" bash -c 'grep "log-probe-2" "$0" | jq -e ".path == \"/healthz\"" >/dev/null' "$STACK_DIR/lighttpd.log"

# --- migrations ----------------------------------------------------------
out=$(stack_env chat_owner; "$E2E_BUILDDIR/chat-admin" migrate "$E2E_SRCDIR/sql" 2>&1)
check "migrate again: nothing pending ($out)" bash -c '[[ "$0" == *"0 applied"* ]]' "$out"
shipped=$(cd "$E2E_SRCDIR/sql" && ls [0-9][0-9][0-9]_*.sql | sort | paste -sd, -)
recorded=$(stack_psql chat -tA -c "SELECT string_agg(version, ',' ORDER BY version) FROM chat.schema_migrations")
check "schema_migrations records every shipped migration ($recorded)" [ "$recorded" = "$shipped" ]
(stack_env chat_owner; "$E2E_BUILDDIR/chat-admin" migrate "$E2E_SRCDIR/sql" >/dev/null 2>&1) &
m1=$!
(stack_env chat_owner; "$E2E_BUILDDIR/chat-admin" migrate "$E2E_SRCDIR/sql" >/dev/null 2>&1) &
m2=$!
wait $m1; r1=$?
wait $m2; r2=$?
check "two concurrent migrates both succeed (advisory lock)" [ "$r1$r2" = 00 ]
bad=$(PGPASSWORD=$(cat "$STACK_DIR/secrets/pg_app_password") psql -X -q "host=localhost port=$PG_PORT dbname=chat user=chat_app sslmode=verify-full sslrootcert=$STACK_DIR/pg/ca.crt" -c 'CREATE TABLE chat.evil (x int)' 2>&1)
check "the worker role cannot run DDL" bash -c '[[ "$0" == *"permission denied"* ]]' "$bad"

# --- configuration refusal -------------------------------------------------
out=$(env -i PATH="$PATH" APP_MODE=PROD SECRET_KEY=short-Secret-9 "$E2E_BUILDDIR/chat-fcgi" </dev/null 2>&1); rc=$?
check "bad config: exit status 78" [ "$rc" = 78 ]
check "bad config: one line" [ "$(printf '%s\n' "$out" | wc -l)" = 1 ]
check "bad config: names the variable" bash -c '[[ "$0" == *SECRET_KEY* ]]' "$out"
check "bad config: never echoes the secret" bash -c '[[ "$0" != *short-Secret-9* ]]' "$out"
out=$(env -i PATH="$PATH" APP_MODE=PROD SECRET_KEY=short-Secret-9 POSTGRES_SSLMODE=disable MAX_BODY_BYTES=abc "$E2E_BUILDDIR/chat-admin" check-config 2>&1); rc=$?
check "check-config: exit 78 and every problem at once" bash -c '[ "$0" = 78 ] && [[ "$1" == *SECRET_KEY* ]] && [[ "$1" == *POSTGRES_SSLMODE* ]] && [[ "$1" == *MAX_BODY_BYTES* ]] && [[ "$1" == *POSTGRES_PASSWORD* ]]' "$rc" "$out"
out=$(env -i PATH="$PATH" APP_MODE=DEV SECRET_KEY=dev "$E2E_BUILDDIR/chat-admin" check-config 2>&1); rc=$?
check "check-config: a valid DEV config passes" [ "$rc" = 0 ]

# --- --help and --version: no configuration, no socket needed ---------------
# configure's version, as the build tree's Makefile has it (no config.h:
# configure passes PACKAGE_VERSION with -D).
version=$(sed -n 's/^PACKAGE_VERSION = //p' "$E2E_BUILDDIR/Makefile")
check "the build tree names its version ($version)" [ -n "$version" ]
for prog in chat-fcgi chat-admin; do
	env -i "$E2E_BUILDDIR/$prog" --help </dev/null >"$STACK_DIR/help.out" 2>"$STACK_DIR/help.err"; rc=$?
	check "$prog --help, empty environment: exit 0, usage on stdout, nothing on stderr" \
		bash -c '[ "$0" = 0 ] && grep -q "^usage: $1" "$2" && [ ! -s "$3" ]' "$rc" "$prog" "$STACK_DIR/help.out" "$STACK_DIR/help.err"
	out=$(env -i "$E2E_BUILDDIR/$prog" --version </dev/null 2>"$STACK_DIR/help.err"); rc=$?
	# "chat-fcgi 0.1.0", plus " git <describe>" when built from a git checkout.
	check "$prog --version: exit 0, \"$out\", configure's version" \
		bash -c '[ "$0" = 0 ] && [ ! -s "$3" ] && [[ "$1" =~ ^$2\ ${4//./\\.}(\ git\ [A-Za-z0-9._+-]+)?$ ]]' \
		"$rc" "$out" "$prog" "$STACK_DIR/help.err" "$version"
	# A build from this checkout (scripts/test.sh builds afresh) names its
	# commit; a tarball's tree (make distcheck) has no .git and names none.
	if [ -e "$E2E_SRCDIR/.git" ] && described=$(git -C "$E2E_SRCDIR" describe --always 2>/dev/null); then
		check "... built from git: it says git $described" bash -c '[[ "$0" == *" git $1"* ]]' "$out" "$described"
	fi
done
out=$(env -i PATH="$PATH" "$E2E_BUILDDIR/chat-admin" --bogus </dev/null 2>"$STACK_DIR/help.err"); rc=$?
check "chat-admin with a wrong argument: exit 64, usage on stderr only" \
	bash -c '[ "$0" = 64 ] && [ -z "$1" ] && grep -q "^usage: chat-admin" "$2"' "$rc" "$out" "$STACK_DIR/help.err"
out=$(env -i PATH="$PATH" APP_MODE=DEV SECRET_KEY=dev "$E2E_BUILDDIR/chat-fcgi" --bogus </dev/null 2>&1); rc=$?
check "chat-fcgi with a wrong argument (valid DEV config): exit 64" [ "$rc" = 64 ]

# --- never root --------------------------------------------------------------
# The stack's workers run as an unprivileged user (as root, lighttpd
# switches to it before it spawns them): all four ids, real to file system.
uids=$(for pid in $(stack_worker_pids); do awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status"; done | sort -u)
want=$(id -u "$(stack_worker_user)")
check "every worker runs as $(stack_worker_user) (uid $want), not root: $(echo $uids)" \
	[ "$uids" = "$want $want $want $want" -a "$want" != 0 ]
if [ "$(id -u)" -eq 0 ]; then
	good_test_env=(APP_MODE=TEST "SECRET_KEY=$(openssl rand -hex 32)" "POSTGRES_PASSWORD=$(openssl rand -hex 16)" POSTGRES_SSLMODE=require)
	out=$(env -i PATH="$PATH" "${good_test_env[@]}" "$E2E_BUILDDIR/chat-fcgi" </dev/null 2>&1); rc=$?
	check "a worker started as root in TEST: exit status 78" [ "$rc" = 78 ]
	check "... with one JSON line saying why (error, config_rejected)" bash -c '[ "$(printf "%s\n" "$0" | wc -l)" = 1 ] &&
		[ "$(printf "%s" "$0" | jq -r "[.level, .event] | join(\" \")")" = "error config_rejected" ] &&
		[[ "$0" == *"running as root (uid 0, euid 0), refused in APP_MODE=TEST"* ]]' "$out"
	out=$(env -i PATH="$PATH" APP_MODE=PROD "${good_test_env[@]:1}" SCRYPT_N=15 "$E2E_BUILDDIR/chat-fcgi" </dev/null 2>&1); rc=$?
	check "... and in PROD" bash -c '[ "$0" = 78 ] && [[ "$1" == *"refused in APP_MODE=PROD"* ]]' "$rc" "$out"
	out=$(env -i PATH="$PATH" APP_MODE=DEV SECRET_KEY=dev "$E2E_BUILDDIR/chat-fcgi" </dev/null 2>&1); rc=$?
	check "... in DEV it goes on, with a warning (then 64: not under a web server)" \
		bash -c '[ "$0" = 64 ] && [[ "$1" == *"\"level\":\"warn\""*"running as root (uid 0, euid 0), allowed in APP_MODE=DEV only"* ]]' "$rc" "$out"
else
	echo "# not root: the refusal of root is checked by tests/unit/test_worker only"
fi

# --- WORKER_SECCOMP=off: for debugging, and every worker says so -----------
out=$(env -i PATH="$PATH" APP_MODE=DEV SECRET_KEY=dev WORKER_SECCOMP=maybe "$E2E_BUILDDIR/chat-fcgi" </dev/null 2>&1); rc=$?
check "WORKER_SECCOMP=maybe: exit 78 naming the variable" bash -c '[ "$0" = 78 ] && [[ "$1" == *WORKER_SECCOMP* ]]' "$rc" "$out"
export WORKER_SECCOMP=off
e2e_lighttpd 2
req GET /readyz
check "WORKER_SECCOMP=off: the workers serve" is_json .status ready
pids=$(stack_worker_pids)
sleep 0.2
missing=$(logged_by_each "$STACK_DIR/lighttpd.log" \
	'"level":"warn","pid":[0-9]+,"event":"seccomp","msg":"WORKER_SECCOMP=off: ' $pids | tr '\n' ' ')
check "... each of the $(echo $pids | wc -w) logs it at warn when it starts${missing:+ (not: $missing)}" \
	[ -z "$missing" -a "$(echo $pids | wc -w)" = 2 ]
odd=$(unconfined_as_expected $pids)
check "... and runs without a filter of its own (Seccomp: $(proc_confinement $$ | cut -d' ' -f1))${odd:+ ($odd)}" [ -z "$odd" ]
unset WORKER_SECCOMP

# --- TLS is enforced in PROD -------------------------------------------------
export APP_MODE=PROD SCRYPT_N=14 POSTGRES_SSLMODE=require
unset POSTGRES_SSLROOTCERT
stack_pg_set ssl off
e2e_lighttpd 2
req GET /readyz
check "PROD against a server without TLS: 503" is_error 503 database_unavailable
sleep 0.3
check "... and the log says why" grep -q 'does not support SSL' "$STACK_DIR/lighttpd.log"
stack_pg_set ssl on
ok=0
for _ in $(seq 1 40); do req GET /readyz; is_status 200 && { ok=1; break; }; sleep 0.25; done
check "PROD against the same server with TLS: 200" [ "$ok" = 1 ]
export POSTGRES_SSLMODE=verify-full POSTGRES_SSLROOTCERT=$STACK_DIR/pg/ca.crt
e2e_lighttpd 2
req GET /readyz
check "PROD with verify-full against our CA: 200" is_json .status ready

e2e_finish
