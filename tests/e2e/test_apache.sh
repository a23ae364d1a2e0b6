#!/usr/bin/env bash
# Apache 2.4 + mod_fcgid (deploy/apache/chat-fcgi.conf, this very file with
# the test's values), end to end with PostgreSQL over TLS: the parameters
# reach the workers (REQUEST_URI, QUERY_STRING, CONTENT_*, REMOTE_ADDR,
# HTTP_AUTHORIZATION through CGIPassAuth), the auth flow, the body caps
# (worker's 413 JSON below twice MAX_BODY_BYTES, Apache's own 413 above),
# 415/400, and the rate limit holding across the processes mod_fcgid spawns.
# The door (issue 12): every answer Apache or mod_fcgid gives on its own is
# the API's JSON error envelope (400, 408, 413, 414, 500, 501, 503, and 400
# for oversized header fields: Apache has no 431), a body-less POST reaches
# the worker, and mod_qos caps the connections of one address: 300
# slowloris connections or 200 at once from 127.0.0.2 leave 127.0.0.3
# served (tests/e2e/door.py, raw sockets).  About 65 s longer than before:
# mod_fcgid's own 503 takes 64 s to come (in a second instance, meanwhile).
#
# As root (CI), Apache's children and so the workers run as www-data: the
# binary and the secrets are copied into the test directory for that user,
# and every worker's uids are checked not to be 0.
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
[ -f "$APACHE_MODULES/mod_qos.so" ] || { echo "Bail out! mod_qos is missing (libapache2-mod-qos)"; exit 99; }
command -v python3 >/dev/null || { echo "Bail out! python3 is missing"; exit 99; }
# Debian 12's mod_qos needs PCRE1 loaded first (the template's LoadFile).
LIBPCRE1=$(ldconfig -p 2>/dev/null | awk '$1 == "libpcre.so.3" { print $NF; exit }')
[ -n "$LIBPCRE1" ] || { echo "Bail out! libpcre.so.3 is missing (libpcre3, a dependency of libapache2-mod-qos)"; exit 99; }

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
	ap503_stop
	if [ "$E2E_FAILED" -gt 0 ] || [ -n "${E2E_KEEP:-}" ]; then
		tail -n 30 "$APACHE_LOG" 2>/dev/null | sed 's/^/# apache: /' >&2
	fi
	e2e_cleanup
}
trap apache_cleanup EXIT
AP2=$STACK_DIR/apache-503
AP2_PID=
ap503_stop() {
	[ -n "$AP2_PID" ] || return 0
	kill "$AP2_PID" 2>/dev/null || true
	wait "$AP2_PID" 2>/dev/null || true
	AP2_PID=
	# Its worker was stopped (SIGSTOP): only SIGKILL ends it for sure.
	local pids
	pids=$(pgrep -f "^$AP2/bin/chat-fcgi" || true)
	# shellcheck disable=SC2086
	[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
}

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
# would edit it.  127.0.0.1 is exempt from the per-address connection cap,
# as a proxy in front would be: the rate-limit checks below send 40
# requests at once from it; the cap is tested from 127.0.0.2 and .3.
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
		-e "s|^Define CHAT_LIBPCRE1 .*|Define CHAT_LIBPCRE1 $LIBPCRE1|" \
		-e "s|^Define CHAT_CONN_EXEMPT .*|Define CHAT_CONN_EXEMPT 127.0.0.1|" \
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

# raw_parse FILE METHOD PATH: an HTTP answer read off a socket into STATUS,
# HDRS and BODY, and recorded like req()'s.
raw_parse() {
	local file=$1
	STATUS=$(head -n 1 "$file" | awk '{ print $2 }')
	STATUS=${STATUS:-0}
	awk '{ sub(/\r$/, "") } /^$/ { exit } { print }' "$file" >"$HDRS"
	BODY=$(awk 'f { print } /^\r?$/ { f = 1 }' "$file")
	e2e_record "$2" "$3"
}
# raw_req METHOD PATH BYTES: BYTES (printf escapes) sent as they are from
# 127.0.0.1, the answer parsed as above.  For what curl will not send.
raw_req() {
	printf "$3" | python3 "$DOOR" raw "$HTTP_PORT" 127.0.0.1 10 >"$STACK_DIR/raw.out"
	raw_parse "$STACK_DIR/raw.out" "$1" "$2"
}
DOOR=$E2E_SRCDIR/tests/e2e/door.py

# envelope STATUS CODE [REQUEST-ID]: the answer is the contract's error
# envelope (docs/NOTES.md, issue 12): that status, {"error": CODE, "detail":
# text} and nothing else (413: also max_bytes), exactly one JSON value,
# Content-Type application/json, nosniff, no-store, X-Request-ID the given
# one or 32 generated hex digits, Retry-After on 503, no Vary.
ENVELOPE_WHY=
envelope() {
	local want_id=${3:-}
	local keys='["detail","error"]'
	[ "$1" = 413 ] && keys='["detail","error","max_bytes"]'
	ENVELOPE_WHY=
	[ "$STATUS" = "$1" ] || ENVELOPE_WHY="$ENVELOPE_WHY status $STATUS;"
	[ "$(printf '%s' "$BODY" | jq -s 'length' 2>/dev/null)" = 1 ] || ENVELOPE_WHY="$ENVELOPE_WHY not one JSON value;"
	printf '%s' "$BODY" | jq -e --arg c "$2" --argjson k "$keys" \
		'.error == $c and (.detail | type == "string" and length > 0) and (keys == $k)' >/dev/null 2>&1 ||
		ENVELOPE_WHY="$ENVELOPE_WHY body $BODY;"
	[ "$(header Content-Type)" = application/json ] || ENVELOPE_WHY="$ENVELOPE_WHY Content-Type $(header Content-Type);"
	[ "$(grep -ci '^Content-Type:' "$HDRS")" = 1 ] || ENVELOPE_WHY="$ENVELOPE_WHY Content-Type twice;"
	[ "$(header X-Content-Type-Options)" = nosniff ] || ENVELOPE_WHY="$ENVELOPE_WHY no nosniff;"
	[ "$(header Cache-Control)" = no-store ] || ENVELOPE_WHY="$ENVELOPE_WHY Cache-Control $(header Cache-Control);"
	if [ -n "$want_id" ]; then
		[ "$(header X-Request-ID)" = "$want_id" ] || ENVELOPE_WHY="$ENVELOPE_WHY X-Request-ID $(header X-Request-ID), not $want_id;"
	else
		[[ "$(header X-Request-ID)" =~ ^[0-9a-f]{32}$ ]] || ENVELOPE_WHY="$ENVELOPE_WHY X-Request-ID '$(header X-Request-ID)';"
	fi
	if [ "$1" = 503 ]; then
		[[ "$(header Retry-After)" =~ ^[1-9][0-9]*$ ]] || ENVELOPE_WHY="$ENVELOPE_WHY no Retry-After;"
	else
		[ -z "$(header Retry-After)" ] || ENVELOPE_WHY="$ENVELOPE_WHY Retry-After on $STATUS;"
	fi
	[ -z "$(header Vary)" ] || ENVELOPE_WHY="$ENVELOPE_WHY Vary $(header Vary);"
	[ -z "$ENVELOPE_WHY" ]
}
# check_envelope DESCRIPTION STATUS CODE [REQUEST-ID]
check_envelope() {
	local desc=$1
	shift
	if envelope "$@"; then pass "$desc"; else fail "$desc" "$ENVELOPE_WHY"; fi
}

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

# --- mod_fcgid's own 503, started now: it takes a minute to come ----------------------
# A second instance with one worker, stopped (SIGSTOP) under a request: the
# next request waits for a process slot (mod_fcgid 2.3.9 tries 64 times, a
# second apart) and then gets 503.  Here FcgidIOTimeout is raised past that
# minute, or the held request would time out first (a 500) and free the slot.
mkdir -p "$AP2/run" "$AP2/bin"
chmod 755 "$AP2" "$AP2/run" "$AP2/bin"
cp "$AP/bin/chat-fcgi" "$AP2/bin/chat-fcgi"
P503=$(stack_free_port)
sed -e "s|^Define CHAT_PORT .*|Define CHAT_PORT $P503|" -e "s|^Define CHAT_WORKERS .*|Define CHAT_WORKERS 1|" \
	-e "s|^Define CHAT_BIN .*|Define CHAT_BIN $AP2/bin/chat-fcgi|" -e "s|^Define CHAT_STATE .*|Define CHAT_STATE $AP2/run|" \
	-e "s|^Define CHAT_LOG .*|Define CHAT_LOG $STACK_DIR/apache-503.log|" \
	-e "s|^FcgidIOTimeout .*|FcgidIOTimeout 150|" -e "s|^FcgidBusyTimeout .*|FcgidBusyTimeout 200|" \
	"$AP/chat-fcgi.conf" >"$AP2/chat-fcgi.conf"
"$APACHE" -f "$AP2/chat-fcgi.conf" -DFOREGROUND 2>>"$STACK_DIR/apache-503.stderr" &
AP2_PID=$!
stack_wait_port "$P503" 20 || { echo "Bail out! the second apache did not start"; exit 99; }
curl -s -o /dev/null --max-time 10 "http://127.0.0.1:$P503/healthz"
w503=$(pgrep -f "^$AP2/bin/chat-fcgi" || true)
[ -n "$w503" ] && kill -STOP $w503
curl -s -o /dev/null --max-time 200 "http://127.0.0.1:$P503/healthz" &
sleep 0.5
t503=$(date +%s)
{
	printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: wait-503\r\nConnection: close\r\n\r\n' |
		python3 "$DOOR" raw "$P503" 127.0.0.1 120 >"$AP2/503.out"
	date +%s >"$AP2/503.done"
} &

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
# Real, effective, saved and file-system uids and gids of every worker: none 0.
ids=$(for pid in $(worker_pids); do awk '/^(Uid|Gid):/ { print $2, $3, $4, $5 }' "/proc/$pid/status"; done | tr ' ' '\n' | sort -un | tr '\n' ' ')
check "no worker has uid or gid 0 (ids: $ids)" bash -c '[ -n "$0" ] && ! [[ " $0" == *" 0 "* ]]' "$ids"
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
# A POST with neither Content-Length nor Transfer-Encoding has an empty
# body (RFC 9112 6.3): Apache passes it on, the worker answers.
raw_req POST /auth/logout "POST /auth/logout HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $t1\r\nConnection: close\r\n\r\n"
check "logout with no body at all (no Content-Length, no Transfer-Encoding): the worker's 204" \
	bash -c '[ "$0" = 204 ] && [ -n "$1" ]' "$STATUS" "$(header X-Request-ID)"
raw_req POST /auth/register "POST /auth/register HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
check "register with no body and no Content-Type: the worker's own 415" \
	bash -c '[ "$0" = 415 ] && [ "$(printf "%s" "$1" | jq -r .error)" = unsupported_media_type ] && [ -n "$2" ]' "$STATUS" "$BODY" "$(header X-Request-ID)"
raw_req POST /auth/register "POST /auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
check "register with Content-Type JSON and no body: the worker's own 400 ($(printf '%s' "$BODY" | jq -r .detail 2>/dev/null))" \
	bash -c '[ "$0" = 400 ] && [ "$(printf "%s" "$1" | jq -r .error)" = bad_request ] && [ -n "$2" ]' "$STATUS" "$BODY" "$(header X-Request-ID)"
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
req POST /auth/register -H 'Content-Type: application/json' -H 'X-Request-ID: big.1' --data-binary @"$STACK_DIR/huge.json"
check_envelope "a body over twice MAX_BODY_BYTES (200 kB): Apache's own 413 envelope, the client's X-Request-ID" 413 payload_too_large big.1
check "... it says the limit: \"$(printf '%s' "$BODY" | jq -r .detail)\", max_bytes $(printf '%s' "$BODY" | jq -r .max_bytes)" \
	is_json '[.detail, .max_bytes] | @text' '["request body over 65536 bytes",65536]'
start=$(date +%s%N)
code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 -X POST -H 'Content-Type: application/json' \
	-H 'Content-Length: 10485760' --data-binary '{"email"' "$BASE/auth/register")
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "10 MB Content-Length that never arrives: 413 from the headers at once (${ms} ms)" \
	[ "$code" = 413 -a "$ms" -lt 2000 ]
req POST /auth/register -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$STACK_DIR/huge.json"
check_envelope "a chunked body growing past the cap: mod_fcgid's 500 envelope, not passed on" 500 internal
head -c 70000 "$STACK_DIR/huge.json" >"$STACK_DIR/big.json"
req POST /auth/register -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$STACK_DIR/big.json"
check "a chunked body under the cap but over MAX_BODY_BYTES: the worker's 413 (mod_fcgid sets CONTENT_LENGTH)" is_error 413 payload_too_large
check "... its headers once each, none added by Apache" bash -c '[ "$(grep -ci "^X-Content-Type-Options:" "$0")" = 1 ] && [ "$(grep -ci "^Content-Type:" "$0")" = 1 ]' "$HDRS"
req POST /auth/login -H 'Transfer-Encoding: chunked' --data-urlencode 'username=alice@x.io' --data-urlencode 'password=battery staple 2'
check "a small chunked body reaches the worker whole: login 200" is_status 200
req POST /auth/register -H 'Content-Type: text/plain' --data-binary '{"email":"t@x.io","password":"pass word 1"}'
check "text/plain body: 415" is_error 415 unsupported_media_type
json POST /auth/register '{"email": "t@x.io", "password": '
check "invalid JSON: 400 bad_request" is_error 400 bad_request
json POST /auth/register '["t@x.io","password1"]'
check "JSON array: 400 bad_request" is_error 400 bad_request
check "no bad body stored anything" [ "$(stack_psql chat -tA -c "SELECT count(*) FROM chat.users WHERE email IN ('big@x.io','huge@x.io','t@x.io')")" = 0 ]
check "the workers survive all of it" still_serving

# --- the door: Apache's own answers in the envelope -----------------------------------------
# Also for requests refused before they were read whole: the ErrorDocument
# and Header lines are server-wide, and Apache applies both there too.
raw_req GET / 'GARBAGE\r\nX-Request-ID: garbage.1\r\n\r\n'
check_envelope "a malformed request line: 400 bad_request (headers never parsed: a generated id)" 400 bad_request
id1=$(header X-Request-ID)
raw_req GET /healthz 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: bad-header.1\r\nNo colon here\r\n\r\n'
check_envelope "a header line without a colon: 400 bad_request, the id sent before it echoed" 400 bad_request bad-header.1
raw_req GET /healthz 'GET /healthz HTTP/1.1\r\n\r\n'
check_envelope "HTTP/1.1 without Host: 400 bad_request" 400 bad_request
check "... generated ids differ ($id1, $(header X-Request-ID))" [ "$id1" != "$(header X-Request-ID)" ]
raw_req GET /healthz 'GET /healthz\r\n'
check_envelope "HTTP/0.9 (HttpProtocolOptions Require1.0): 400 with a status line and headers, not a bare body" 400 bad_request
long=$(head -c 9000 /dev/zero | tr '\0' a)
req GET /healthz -H "X-Request-ID: long-field" -H "X-Long: $long"
check_envelope "a 9000-byte header field (LimitRequestFieldSize 8190): Apache's 400 bad_request (it has no 431)" 400 bad_request
fields=()
for i in $(seq 1 101); do fields+=(-H "X-F$i: $i"); done
req GET /healthz -H "X-Request-ID: many-fields" "${fields[@]}"
check_envelope "101 header fields (LimitRequestFields 100): 400 bad_request, the id read before the limit echoed" 400 bad_request many-fields
req GET "/$long"
check_envelope "a 9000-byte request target (LimitRequestLine 8190): 414 uri_too_long" 414 uri_too_long
req BREW /index.html -H 'X-Request-ID: brew.1'
check_envelope "an unknown method on a static path: Apache's 501 not_implemented" 501 not_implemented brew.1
req BREW /auth/me
check "... on an API path the worker answers it: 405 with Allow" bash -c '[ "$0" = 405 ] && [ -n "$1" ] && [ -n "$2" ]' "$STATUS" "$(header Allow)" "$(header X-Request-ID)"
req GET /assets/no-such.js -H "X-Request-ID: $(head -c 129 /dev/zero | tr '\0' a)"
check_envelope "a missing static file: 404 not_found (no-store, not the static no-cache); a 129-char id is replaced" 404 not_found
req GET /assets/no-such.js -H 'X-Request-ID: not valid!'
check_envelope "... an id with a space and '!' is replaced too" 404 not_found
printf '{"email":"x@x.io","password":"%s' "$long" >"$STACK_DIR/slow.json"
{ printf 'POST /auth/register HTTP/1.1\r\nHost: x\r\nX-Request-ID: slow-body.1\r\nContent-Type: application/json\r\n'
  printf 'Content-Length: 20000\r\nConnection: close\r\n\r\n'; head -c 100 "$STACK_DIR/slow.json"; } >"$STACK_DIR/slow.req"

# --- slow and flooding clients: mod_qos ------------------------------------------------------
# 127.0.0.2 is the abuser, 127.0.0.3 everyone else (tests/e2e/door.py).
per_ip=$(sed -n 's/^Define CHAT_CONN_PER_IP  *//p' "$TEMPLATE")
per_ip_max=$(sed -n 's/^Define CHAT_CONN_PER_IP_MAX  *//p' "$TEMPLATE")
# A body that stops arriving holds no worker (mod_fcgid reads it first) and
# ends at RequestReadTimeout's body stage; sent now, checked after slowloris.
python3 "$DOOR" raw "$HTTP_PORT" 127.0.0.3 40 <"$STACK_DIR/slow.req" >"$STACK_DIR/slow-body.out" &
slow_body=$!
# 300 connections sending a header byte every 3 s: mod_qos closes those past
# the cap as they send their first bytes; the rest end at the header
# timeout (20 s) with the 408 envelope.
out=$(python3 "$DOOR" slowloris "$HTTP_PORT" 300 127.0.0.2 127.0.0.3 26 "$STACK_DIR")
echo "# slowloris: $out"
j() { printf '%s' "$out" | jq -r "$1"; }
check "300 slowloris connections from 127.0.0.2: $(j .refused) closed at once, $(j .held) held (the cap, $per_ip_max)" \
	[ "$(j .refused)" = $((300 - per_ip_max)) -a "$(j .held)" = "$per_ip_max" -a "$(j .held_after_probes)" = "$per_ip_max" ]
check "... meanwhile 127.0.0.3 is served: 5 x 200 in $(j '.probe_ms | map(tostring) | join(", ")') ms" \
	[ "$(j '.probe_status | map(tostring) | join(" ")')" = "200 200 200 200 200" -a "$(j '.probe_ms | max')" -lt 2000 ]
check "... the held ones end at the header timeout: $(j '.answers | tostring') after $(j .ended_after_s) s" \
	[ "$(j '.answers["408"]')" = "$per_ip_max" ]
raw_parse "$STACK_DIR/slowloris.raw" GET /healthz
check_envelope "... with the 408 request_timeout envelope" 408 request_timeout
wait "$slow_body"
raw_parse "$STACK_DIR/slow-body.out" POST /auth/register
check_envelope "a body that stops coming (100 of 20000 bytes): mod_fcgid's 500 internal at the body timeout (never 408)" 500 internal slow-body.1

# 200 connections at once from one address, each with its first byte sent;
# then the rest of a request on those still open.
out=$(python3 "$DOOR" flood "$HTTP_PORT" 200 127.0.0.2 127.0.0.3 "$STACK_DIR")
echo "# flood: $out"
check "200 connections at once from 127.0.0.2: $(j .refused) closed without an answer (200 - $per_ip_max)" \
	[ "$(j .refused)" = $((200 - per_ip_max)) ]
check "... of the $(j .held) kept, $(j '.answers["200"]') served and $(j '.answers["503"]') refused with 503 (the soft cap, $per_ip)" \
	[ "$(j '.answers["200"]')" = "$per_ip" -a "$(j '.answers["503"]')" = $((per_ip_max - per_ip)) ]
check "... while 127.0.0.3 is served: $(j .probe_status) in $(j .probe_ms) ms" [ "$(j .probe_status)" = 200 -a "$(j .probe_ms)" -lt 2000 ]
raw_parse "$STACK_DIR/flood503.raw" GET /healthz
check_envelope "... the 503 is the too_many_connections envelope, the client's id echoed" 503 too_many_connections \
	"$(header X-Request-ID | grep -x 'flood-[0-9]*')"
check "... with Retry-After: 5" has_header Retry-After 5
check "mod_qos logs the refusals" grep -q "mod_qos(031): access denied, QS_SrvMaxConnPerIP rule: max=$per_ip_max" "$APACHE_LOG"
check "the workers survive the door tests" still_serving

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

# --- a worker that dies under a request --------------------------------------------------------
# The one worker stopped with a request on it, then killed: mod_fcgid's
# 500 envelope at once, and the next request gets a new worker.
victim2=$(worker_pids | head -n 1)
kill -STOP "$victim2"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: dies.1\r\nConnection: close\r\n\r\n' |
	python3 "$DOOR" raw "$HTTP_PORT" 127.0.0.1 20 >"$STACK_DIR/dies.out" &
held=$!
sleep 0.5
kill -9 "$victim2"
wait "$held"
raw_parse "$STACK_DIR/dies.out" GET /healthz
check_envelope "a worker killed under a request: mod_fcgid's 500 internal envelope (not 502)" 500 internal dies.1
check "... and the next request gets a new worker" still_serving

# --- end -------------------------------------------------------------------------------------------
apache_stop
sleep 0.2
check "Apache stopped its workers" [ -z "$(worker_pids)" ]
check "mod_fcgid logs its workers' starts and exits (LogLevel fcgid:info)" grep -q 'chat-fcgi([0-9]*) started' "$APACHE_LOG"
# The workers killed above were ours; any other death or report is a bug.
check "no sanitizer report and no worker crash in the log" \
	bash -c '! grep -v -E "\(($0|$1)\)" "$2" | grep -E "AddressSanitizer|LeakSanitizer|runtime error:|unexpected signal|return code: [1-9]|AH00052"' "$victim" "$victim2" "$APACHE_LOG"

# --- no worker can start -------------------------------------------------------------------------
# The secret unreadable: each worker mod_fcgid spawns exits 78 at once.
# mod_fcgid answers 500 (it connected, then lost the process), not 503.
chmod 000 "$AP/secrets/secret_key"
apache_start 1
req GET /healthz -H 'X-Request-ID: no-worker.1'
check_envelope "no worker can start (its secret unreadable): mod_fcgid's 500 internal envelope" 500 internal no-worker.1
check "... the worker said why, in one line" grep -q '"event":"config_rejected","security":true,"msg":"SECRET_KEY_FILE: ' "$APACHE_LOG"
apache_stop
chmod 600 "$AP/secrets/secret_key"

# --- mod_fcgid's own 503 (the second instance, started at the top) -----------------------------
for _ in $(seq 1 90); do
	[ -s "$AP2/503.done" ] && break
	sleep 1
done
raw_parse "$AP2/503.out" GET /healthz
waited=$(( $(cat "$AP2/503.done" 2>/dev/null || date +%s) - t503 ))
check_envelope "no worker free for a minute: mod_fcgid's 503 service_unavailable envelope, Retry-After" 503 service_unavailable wait-503
check "... after $waited s (mod_fcgid's fixed 64 one-second tries)" [ "$waited" -ge 55 -a "$waited" -le 80 ]
check "... and Retry-After: 1" has_header Retry-After 1
check "... mod_fcgid logs it" grep -q "can't apply process slot" "$STACK_DIR/apache-503.log"
ap503_stop
e2e_check_responses
echo "$E2E_PASSED passed, $E2E_FAILED failed"
[ "$E2E_FAILED" -eq 0 ]
exit $?
