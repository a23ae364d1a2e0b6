#!/usr/bin/env bash
# Apache 2.4 + mod_fcgid (deploy/apache/chat-fcgi.conf, this very file with
# the test's values), end to end with PostgreSQL over TLS: the parameters
# reach the workers (REQUEST_URI, QUERY_STRING, CONTENT_*, REMOTE_ADDR,
# HTTP_AUTHORIZATION through CGIPassAuth), the auth flow, the body caps
# (worker's 413 JSON below twice MAX_BODY_BYTES, Apache's own 413 above),
# 415/400, and the rate limit holding across the processes mod_fcgid spawns.
#
# As root (CI), Apache's children and so the workers run as www-data: the
# binary and the secrets are copied into the test directory for that user.
. "$(dirname "$0")/lib.sh"

APACHE=$(command -v apache2 || command -v httpd || true)
APACHE_MODULES=
for d in /usr/lib/apache2/modules /usr/lib64/httpd/modules /usr/lib/httpd/modules; do
	[ -f "$d/mod_fcgid.so" ] && APACHE_MODULES=$d && break
done
for tool in curl jq openssl; do
	command -v "$tool" >/dev/null || { echo "Bail out! $tool is missing (scripts/install-deps.sh)"; exit 99; }
done
[ -n "$APACHE" ] || { echo "Bail out! apache2 is missing (scripts/install-deps.sh)"; exit 99; }
[ -n "$APACHE_MODULES" ] || { echo "Bail out! mod_fcgid is missing (libapache2-mod-fcgid)"; exit 99; }

TEMPLATE=$E2E_SRCDIR/deploy/apache/chat-fcgi.conf
AP=$STACK_DIR/apache
APACHE_LOG=$STACK_DIR/apache.log
APACHE_PID=
if [ "$(id -u)" -eq 0 ]; then
	# Apache refuses to run its children as root.
	AP_USER=www-data
	id -u "$AP_USER" >/dev/null 2>&1 || AP_USER=nobody
else
	AP_USER=$(id -un) # ignored by Apache when not root
fi
AP_GROUP=$(id -gn "$AP_USER")

apache_stop() {
	[ -n "$APACHE_PID" ] || return 0
	kill "$APACHE_PID" 2>/dev/null || true
	wait "$APACHE_PID" 2>/dev/null || true
	APACHE_PID=
	# mod_fcgid ends its processes when Apache stops; make sure.
	local pids
	pids=$(pgrep -f "^$AP/bin/chat-fcgi" || true)
	if [ -n "$pids" ]; then
		sleep 1
		pids=$(pgrep -f "^$AP/bin/chat-fcgi" || true)
		# shellcheck disable=SC2086
		[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
	fi
}
apache_cleanup() {
	apache_stop
	if [ "$E2E_FAILED" -gt 0 ] || [ -n "${E2E_KEEP:-}" ]; then
		tail -n 30 "$APACHE_LOG" 2>/dev/null | sed 's/^/# apache: /' >&2
	fi
	e2e_cleanup
}
trap apache_cleanup EXIT

# The workers' copies of the binary and the secrets, readable by AP_USER.
apache_files() {
	mkdir -p "$AP/bin" "$AP/secrets" "$AP/run"
	chmod 755 "$AP" "$AP/bin" "$AP/run"
	chmod 700 "$AP/secrets"
	cp "$E2E_BUILDDIR/chat-fcgi" "$AP/bin/chat-fcgi"
	# The static files too: Apache's children serve them as AP_USER.
	cp -R "$E2E_SRCDIR/web" "$AP/web"
	cp "$E2E_SRCDIR/openapi.yaml" "$AP/openapi.yaml"
	chmod -R a+rX "$AP/web" "$AP/openapi.yaml"
	chmod 755 "$AP/bin/chat-fcgi"
	cp "$STACK_DIR/secrets/secret_key" "$STACK_DIR/secrets/pg_app_password" "$AP/secrets/"
	chmod 600 "$AP"/secrets/*
	if [ "$(id -u)" -eq 0 ]; then
		chown -R "$AP_USER:$AP_GROUP" "$AP/secrets"
		runuser -u "$AP_USER" -- test -x "$AP/bin/chat-fcgi" -a -r "$AP/secrets/secret_key" -a -r "$PGSSLROOT" || {
			echo "Bail out! $AP_USER cannot reach $AP (set TMPDIR to a directory all users may traverse)"
			exit 99
		}
	fi
}

# apache_conf PORT WORKERS: the template with the Define values of this test
# and each FcgidInitialEnv line filled in from the current environment (the
# variable's value if set, else the line commented out), as an operator
# would edit it.
apache_conf() {
	local port=$1 workers=$2 max_body=${MAX_BODY_BYTES:-65536}
	sed -e "s|^Define CHAT_BIND .*|Define CHAT_BIND 127.0.0.1|" \
		-e "s|^Define CHAT_PORT .*|Define CHAT_PORT $port|" \
		-e "s|^Define CHAT_WORKERS .*|Define CHAT_WORKERS $workers|" \
		-e "s|^Define CHAT_BIN .*|Define CHAT_BIN $AP/bin/chat-fcgi|" \
		-e "s|^Define CHAT_STATE .*|Define CHAT_STATE $AP/run|" \
		-e "s|^Define CHAT_LOG .*|Define CHAT_LOG $APACHE_LOG|" \
		-e "s|^Define CHAT_USER .*|Define CHAT_USER $AP_USER|" \
		-e "s|^Define CHAT_WEB .*|Define CHAT_WEB $AP/web|" \
		-e "s|^Define CHAT_OPENAPI .*|Define CHAT_OPENAPI $AP/openapi.yaml|" \
		-e "s|^Define CHAT_GROUP .*|Define CHAT_GROUP $AP_GROUP|" \
		-e "s|^Define CHAT_MODULES .*|Define CHAT_MODULES $APACHE_MODULES|" \
		-e "s|^Define CHAT_MAX_BODY .*|Define CHAT_MAX_BODY $max_body|" \
		-e "s|^Define CHAT_MAX_REQUEST .*|Define CHAT_MAX_REQUEST $((2 * max_body))|" \
		"$TEMPLATE" |
		SECRET_KEY_FILE=$AP/secrets/secret_key POSTGRES_PASSWORD_FILE=$AP/secrets/pg_app_password \
			GNUTLS_NO_IMPLICIT_INIT=1 \
			awk '
			match($0, /^#?FcgidInitialEnv +[A-Z_]+/) {
				name = $0; sub(/^#?FcgidInitialEnv +/, "", name); sub(/[ \t].*/, "", name)
				if ($0 ~ /\$\{/) { print; next }  # a Define of the template
				if (name in ENVIRON) { printf "FcgidInitialEnv %s \"%s\"\n", name, ENVIRON[name]; next }
				if ($0 !~ /^#/) { print "#" $0; next }
			}
			{ print }' >"$AP/chat-fcgi.conf"
	"$APACHE" -t -f "$AP/chat-fcgi.conf" >"$AP/configtest.log" 2>&1
}

# apache_start WORKERS: Apache in the foreground of a background job, on a
# free port; the first request spawns the first worker.
apache_start() {
	apache_stop
	HTTP_PORT=$(stack_free_port)
	BASE=http://127.0.0.1:$HTTP_PORT
	apache_conf "$HTTP_PORT" "${1:-4}" || { cat "$AP/configtest.log"; echo "Bail out! apache2 -t refuses the configuration"; exit 99; }
	"$APACHE" -f "$AP/chat-fcgi.conf" -DFOREGROUND 2>>"$STACK_DIR/apache.stderr" &
	APACHE_PID=$!
	stack_wait_port "$HTTP_PORT" 20 || { cat "$STACK_DIR/apache.stderr" "$APACHE_LOG" 2>/dev/null; echo "Bail out! apache did not start"; exit 99; }
	for _ in $(seq 1 50); do
		curl -s -o /dev/null "$BASE/healthz" && return 0
		sleep 0.1
	done
	echo "Bail out! no worker answers through apache"
	exit 99
}
worker_pids() { pgrep -f "^$AP/bin/chat-fcgi" || true; }

# --- the template ------------------------------------------------------------------
missing=
for v in $(sed -n '/bin-copy-environment/,/)/p' "$E2E_SRCDIR/lighttpd.conf" | grep -o '"[A-Z_]*"' | tr -d '"'); do
	case $v in SECRET_KEY | SECRET_KEY_PREVIOUS | POSTGRES_PASSWORD | DATABASE_URL) continue ;; esac
	grep -Eq "^#?FcgidInitialEnv +$v( |$)" "$TEMPLATE" || missing="$missing $v"
done
check "the template passes every variable lighttpd.conf passes (secrets by *_FILE):${missing:- all there}" [ -z "$missing" ]
check "... and never a secret by value" bash -c '! grep -Eq "^#?FcgidInitialEnv +(SECRET_KEY|SECRET_KEY_PREVIOUS|POSTGRES_PASSWORD|DATABASE_URL) " "$0"' "$TEMPLATE"

# --- database, accounts (limits off) ------------------------------------------------
stack_pg_init || { echo "Bail out! PostgreSQL did not start"; exit 99; }
stack_migrate "$E2E_BUILDDIR" >/dev/null || { echo "Bail out! migrations failed"; exit 99; }
stack_env chat_app
export SCRYPT_N=${SCRYPT_N:-10} SCRYPT_R=${SCRYPT_R:-8} SCRYPT_P=${SCRYPT_P:-1}
export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
PGSSLROOT=$POSTGRES_SSLROOTCERT
apache_files
apache_start 4
check "apache -t accepts the generated configuration" grep -q 'Syntax OK' "$AP/configtest.log"

req GET /healthz
check "healthz through apache: 200 ok" is_json .status ok
check "... JSON, nosniff, no-store, a request id" bash -c '[ "$0" = application/json ] && [ "$1" = nosniff ] && [ "$2" = no-store ] && [ -n "$3" ]' \
	"$(header Content-Type)" "$(header X-Content-Type-Options)" "$(header Cache-Control)" "$(header X-Request-ID)"
check "ServerTokens Prod: the Server header names no version" bash -c '[ "$0" = Apache ]' "$(header Server)"

# The static side: the web client, the docs page and the document are the
# repository's files, served by Apache itself under the strict CSP.
apache_static() { # URL FILE
	curl -s -D "$HDRS" -o "$AP/static.out" "$BASE$1" && cmp -s "$AP/static.out" "$2" &&
		grep -qi '^HTTP/1.1 200' "$HDRS" && [ -z "$(header X-Request-ID)" ] &&
		[ "$(header Content-Security-Policy)" = "$(sed -n "s/.*Content-Security-Policy\" *=> *\"\(.*\)\",\$/\1/p" "$E2E_SRCDIR/lighttpd.conf")" ] &&
		has_header X-Content-Type-Options nosniff
}
check "GET / is web/index.html from Apache, under lighttpd.conf's CSP" apache_static / "$E2E_SRCDIR/web/index.html"
check "GET /docs is the docs page" apache_static /docs "$E2E_SRCDIR/web/docs/index.html"
check "GET /docs/swagger-ui/swagger-ui.css is the vendored file" apache_static /docs/swagger-ui/swagger-ui.css "$E2E_SRCDIR/web/docs/swagger-ui/swagger-ui.css"
check "GET /openapi.yaml is the repository's document" apache_static /openapi.yaml "$E2E_SRCDIR/openapi.yaml"
check "... text/javascript for the client's scripts" bash -c 'curl -s -o /dev/null -w "%{content_type}" "$0/assets/app.js" | grep -qx "text/javascript; charset=utf-8"' "$BASE"
req GET /index.htm
check "an unknown path still reaches a worker: its JSON 404" is_error 404 not_found
leaks=
for u in /assets/../../README.md /docs/%2e%2e/%2e%2e/README.md /docs/..%2f..%2fREADME.md /openapi.yaml/../lighttpd.conf; do
	case $(curl -s --path-as-is "$BASE$u") in *"# chat-fcgi"* | *"var.chat_"*) leaks="$leaks $u" ;; esac
done
check "dot-dot and encoded traversals reach no file outside web/:${leaks:- none}" [ -z "$leaks" ]
if [ "$(id -u)" -eq 0 ]; then
	owners=$(worker_pids | xargs -r ps -o user= -p | sort -u | tr '\n' ' ')
	check "the workers run as $AP_USER, not root ($owners)" [ "$owners" = "$AP_USER " ]
fi
gnutls_env=$(for pid in $(worker_pids); do
	tr '\0' '\n' <"/proc/$pid/environ" | grep -c '^GNUTLS_NO_IMPLICIT_INIT=1$'
done | sort -u | tr '\n' ' ')
check "FcgidInitialEnv reaches the workers: GNUTLS_NO_IMPLICIT_INIT=1 in each ($gnutls_env)" [ "$gnutls_env" = "1 " ]
req GET /nope?x=1
check "an unknown path reaches the worker (REQUEST_URI): its 404 envelope" is_error 404 not_found
req DELETE /healthz
check "a wrong method reaches the worker (REQUEST_METHOD): 405 with Allow" bash -c '[ "$0" = 405 ] && [ "$1" = GET ]' "$STATUS" "$(header Allow)"
req GET /chat/conversations/1/messages?limit=0
check "the query string reaches the worker (QUERY_STRING): 401 before it, as without a token" is_error 401 unauthorized

register() { json POST /auth/register "$1"; }
register '{"email":"Alice@X.io","password":"correct horse 1"}'
check "register through apache: 201" is_status 201
check "... email lower-cased" is_json .email alice@x.io
register '{"email":"alice@x.io","password":"correct horse 1"}'
check "register twice: 409 email_taken" is_error 409 email_taken
for u in bob carol; do register "{\"email\":\"$u@x.io\",\"password\":\"password-$u\"}"; done

json POST /auth/login '{"email":"alice@x.io","password":"correct horse 1"}'
check "login (JSON): 200 bearer" bash -c '[ "$0" = 200 ] && [ "$(printf "%s" "$1" | jq -r .token_type)" = bearer ]' "$STATUS" "$BODY"
t1=$(printf '%s' "$BODY" | jq -r .access_token)
req POST /auth/login --data-urlencode 'username=ALICE@x.io' --data-urlencode 'password=correct horse 1' -d grant_type=password
check "login (OAuth2 form, CONTENT_TYPE form-urlencoded): 200" is_status 200
t2=$(printf '%s' "$BODY" | jq -r .access_token)
json POST /auth/login '{"email":"alice@x.io","password":"wrong password"}'
check "wrong password: 401 invalid_credentials" is_error 401 invalid_credentials

req GET /auth/me -H "Authorization: Bearer $t1"
check "me: Authorization reaches the worker (CGIPassAuth On): 200 alice" bash -c '[ "$0" = 200 ] && [ "$(printf "%s" "$1" | jq -r .email)" = alice@x.io ]' "$STATUS" "$BODY"
req GET /auth/me
check "me without a token: 401 with WWW-Authenticate: Bearer" bash -c '[ "$0" = 401 ] && [ "$1" = Bearer ]' "$STATUS" "$(header WWW-Authenticate)"
req POST /auth/logout -H "Authorization: Bearer $t1" -H 'Content-Length: 0'
check "logout: 204" is_status 204
same=1
for _ in $(seq 1 8); do req GET /auth/me -H "Authorization: Bearer $t1"; [ "$STATUS" = 401 ] || same=0; done
check "the logged-out token: 401, whichever process answers" [ "$same" = 1 ]
req GET /auth/me -H "Authorization: Bearer $t2"
check "the other session still works" is_status 200
json POST /auth/password '{"current_password":"correct horse 1","new_password":"battery staple 2"}' -H "Authorization: Bearer $t2"
check "password change: 204" is_status 204
req GET /auth/me -H "Authorization: Bearer $t2"
check "... revokes the token used" is_error 401 unauthorized
json POST /auth/login '{"email":"alice@x.io","password":"battery staple 2"}'
check "... and the new password logs in" is_status 200
t3=$(printf '%s' "$BODY" | jq -r .access_token)

# A short chat flow, where the route table has chat routes.
if grep -q '/chat/conversations' "$E2E_SRCDIR/src/router.c" 2>/dev/null; then
	json POST /chat/conversations '{"title":"through apache","members":["bob@x.io"]}' -H "Authorization: Bearer $t3"
	check "chat: create a conversation: 201" is_status 201
	cid=$(printf '%s' "$BODY" | jq -r .id)
	json POST "/chat/conversations/$cid/messages" '{"body":"héllo"}' -H "Authorization: Bearer $t3" -H 'Idempotency-Key: k-1'
	check "chat: post a message (with an Idempotency-Key header): 201" is_status 201
	json POST "/chat/conversations/$cid/messages" '{"body":"héllo"}' -H "Authorization: Bearer $t3" -H 'Idempotency-Key: k-1'
	check "chat: the retry with the same key: 200, nothing new" is_status 200
	req GET "/chat/conversations/$cid/messages?limit=10" -H "Authorization: Bearer $t3"
	check "chat: list messages (query string): one, the body intact" bash -c '[ "$0" = 200 ] && [ "$(printf "%s" "$1" | jq -r ".items|length")" = 1 ] && [ "$(printf "%s" "$1" | jq -r ".items[0].body")" = héllo ]' "$STATUS" "$BODY"
fi

# --- bodies at the edge --------------------------------------------------------------------
big=$(head -c 70000 /dev/zero | tr '\0' 'a')
json POST /auth/register "{\"email\":\"big@x.io\",\"password\":\"$big\"}"
check "a body over MAX_BODY_BYTES (70 kB): the worker's 413 payload_too_large (JSON)" is_error 413 payload_too_large
{ printf '{"email":"huge@x.io","password":"'; head -c 200000 /dev/zero | tr '\0' 'a'; printf '"}'; } >"$STACK_DIR/huge.json"
E2E_NOT_API="Apache's own 413 (ErrorDocument)" req POST /auth/register -H 'Content-Type: application/json' --data-binary @"$STACK_DIR/huge.json"
check "a body over twice MAX_BODY_BYTES (200 kB): Apache's own 413, in the JSON envelope" is_error 413 payload_too_large
check "... with nosniff and no-store" bash -c '[ "$0" = nosniff ] && [ "$1" = no-store ]' "$(header X-Content-Type-Options)" "$(header Cache-Control)"
start=$(date +%s%N)
code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 -X POST -H 'Content-Type: application/json' \
	-H 'Content-Length: 10485760' --data-binary '{"email"' "$BASE/auth/register")
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "10 MB Content-Length that never arrives: 413 from the headers at once (${ms} ms)" \
	[ "$code" = 413 -a "$ms" -lt 2000 ]
E2E_NOT_API="mod_fcgid's own 500 (ErrorDocument)" req POST /auth/register -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$STACK_DIR/huge.json"
check "a chunked body growing past the cap: mod_fcgid's 500 (JSON envelope), not passed on" is_error 500 internal
head -c 70000 "$STACK_DIR/huge.json" >"$STACK_DIR/big.json"
req POST /auth/register -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$STACK_DIR/big.json"
check "a chunked body under the cap but over MAX_BODY_BYTES: the worker's 413 (mod_fcgid sets CONTENT_LENGTH)" is_error 413 payload_too_large
check "... its headers once each, none added by Apache" bash -c '[ "$(grep -ci "^X-Content-Type-Options:" "$0")" = 1 ] && [ "$(grep -ci "^Content-Type:" "$0")" = 1 ]' "$HDRS"
req POST /auth/login -H 'Transfer-Encoding: chunked' --data-urlencode 'username=alice@x.io' --data-urlencode 'password=battery staple 2'
check "a small chunked body reaches the worker whole: login 200" is_status 200
req POST /auth/register -H 'Content-Type: text/plain' --data-binary '{"email":"t@x.io","password":"password1"}'
check "text/plain body: 415" is_error 415 unsupported_media_type
json POST /auth/register '{"email": "t@x.io", "password": '
check "invalid JSON: 400 bad_request" is_error 400 bad_request
json POST /auth/register '["t@x.io","password1"]'
check "JSON array: 400 bad_request" is_error 400 bad_request
check "no bad body stored anything" [ "$(stack_psql chat -tA -c "SELECT count(*) FROM chat.users WHERE email IN ('big@x.io','huge@x.io','t@x.io')")" = 0 ]
check "the workers survive all of it" still_serving

# --- the rate limit across mod_fcgid's processes ---------------------------------------------
export RATE_LIMIT_AUTH=5/minute RATE_LIMIT_READ=5/minute RATE_LIMIT_CHAT=5/minute
rm -f "/dev/shm$RATE_LIMIT_SHM"
export RATE_LIMIT_SHM=/chat-e2e-$$-$RANDOM
apache_start 4
burst() { # N CURL-ARGS...: N concurrent requests, their status codes
	local n=$1
	shift
	seq 1 "$n" | xargs -P "$n" -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 "$@"
}
count() { grep -c "^$1\$" || true; }
# mod_fcgid spawns on demand, when a request has found every worker busy
# for a second.  Make that happen: stop the first worker with a request on
# it, send a burst (the limit not in play: healthz), let it go again.
first=$(worker_pids)
kill -STOP $first
curl -s -o /dev/null --max-time 30 "$BASE/healthz" &
held=$!
sleep 0.3
burst 16 "$BASE/healthz" >/dev/null
kill -CONT $first
wait "$held"
n=$(worker_pids | wc -l)
check "mod_fcgid spawned several workers (1 < $n <= 4)" [ "$n" -gt 1 -a "$n" -le 4 ]
mark=$(wc -l <"$APACHE_LOG")
codes=$(burst 40 -H 'Content-Type: application/json' \
	--data-binary '{"email":"carol@x.io","password":"wrong password"}' "$BASE/auth/login")
check "40 concurrent logins from one address: exactly 5 admitted ($(echo "$codes" | count 401) x 401, $(echo "$codes" | count 429) x 429)" \
	[ "$(echo "$codes" | count 401)" = 5 -a "$(echo "$codes" | count 429)" = 35 ]
served=$(tail -n +"$((mark + 1))" "$APACHE_LOG" | grep '"path":"/auth/login"' | grep -o '"pid":[0-9]*' | sort -u | wc -l)
check "... answered by $served different worker processes" [ "$served" -gt 1 ]
codes=$(burst 40 -H "Authorization: Bearer $t3" "$BASE/auth/me")
check "40 concurrent reads by one user: exactly 5 admitted" \
	[ "$(echo "$codes" | count 200)" = 5 -a "$(echo "$codes" | count 429)" = 35 ]
json POST /auth/login '{"email":"bob@x.io","password":"password-bob"}'
check "the address is limited: 429 rate_limited with Retry-After" bash -c '[ "$0" = 429 ] && [ "$(printf "%s" "$1" | jq -r .error)" = rate_limited ] && [ "$2" -ge 1 ]' "$STATUS" "$BODY" "$(header Retry-After)"

# The workers mod_fcgid spawned, after logins and reads: each under its own
# system-call filter (src/sandbox.h), as the user Apache runs them as.
pids=$(worker_pids)
if e2e_sanitizer_build; then
	missing=$(logged_by_each "$APACHE_LOG" \
		'"level":"warn","pid":[0-9]+,"event":"seccomp","msg":"system-call filter not installed: sanitizer build' $pids | tr '\n' ' ')
	check "sanitizer build: each of the $(echo $pids | wc -w) workers logs at warn that it runs without its filter${missing:+ (not: $missing)}" \
		[ -z "$missing" ]
else
	odd=$(confined_as_expected $pids)
	check "each of the $(echo $pids | wc -w) workers is confined: Seccomp: 2, NoNewPrivs: 1, its own filter${odd:+ ($odd)}" \
		[ -z "$odd" ]
fi

# A worker killed: mod_fcgid spawns another, which maps the same table.
victim=$(worker_pids | head -n 1)
kill -9 "$victim"
sleep 0.5
codes=$(burst 8 -H "Authorization: Bearer $t3" "$BASE/auth/me")
check "after kill -9 of worker $victim: the count survives (still 429 for that user)" \
	[ "$(echo "$codes" | count 200)" = 0 -a "$(echo "$codes" | count 429)" = 8 ]
json POST /auth/login '{"email":"bob@x.io","password":"password-bob"}'
check "... and for that address" is_error 429 rate_limited

# --- WORKER_SECCOMP=off through FcgidInitialEnv ------------------------------------------------
export WORKER_SECCOMP=off
apache_start 1
req GET /healthz
check "WORKER_SECCOMP=off (FcgidInitialEnv): the worker serves" is_json .status ok
pids=$(worker_pids)
sleep 0.2
missing=$(logged_by_each "$APACHE_LOG" '"level":"warn","pid":[0-9]+,"event":"seccomp","msg":"WORKER_SECCOMP=off: ' $pids | tr '\n' ' ')
odd=$(unconfined_as_expected $pids)
check "... logs it at warn and runs without a filter of its own (Seccomp: $(proc_confinement $$ | cut -d' ' -f1))${missing:+ (no line: $missing)}${odd:+ ($odd)}" \
	[ -n "$pids" -a -z "$missing" -a -z "$odd" ]
unset WORKER_SECCOMP

# --- end -------------------------------------------------------------------------------------------
apache_stop
sleep 0.2
check "Apache stopped its workers" [ -z "$(worker_pids)" ]
check "mod_fcgid logs its workers' starts and exits (LogLevel fcgid:info)" grep -q 'chat-fcgi([0-9]*) started' "$APACHE_LOG"
# The worker killed above was ours; any other death or report is a bug.
check "no sanitizer report and no worker crash in the log" \
	bash -c '! grep -v "($0)" "$1" | grep -E "AddressSanitizer|LeakSanitizer|runtime error:|unexpected signal|return code: [1-9]|AH00052"' "$victim" "$APACHE_LOG"
e2e_check_responses
echo "$E2E_PASSED passed, $E2E_FAILED failed"
[ "$E2E_FAILED" -eq 0 ]
exit $?
