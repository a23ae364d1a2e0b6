#!/usr/bin/env bash
# openapi.yaml is the API's contract and cannot drift from the code:
#   - tests/web/check-openapi.mjs: a valid OpenAPI 3.1.0 document (the 3.1
#     schema validator), every schema strict JSON Schema 2020-12, every
#     example true to its schema, and the router's table (printed by
#     tests/tools/routes from router_count()/router_at()) documented route
#     for route and no more: method, security, x-rate-limit-class, request
#     body media types, operationId, the statuses the pipeline gives;
#   - each of those checks fails on a doctored copy of the table or of the
#     document, so a green run means something;
#   - tests/web/validate-responses.mjs refuses answers outside the document
#     (every other e2e suite runs it over all the answers it received);
#   - req() records what a live stack answers, the way that validator reads.
. "$(dirname "$0")/lib.sh"

ROUTES=$E2E_BUILDDIR/tests/tools/routes
CHECK=$E2E_SRCDIR/tests/web/check-openapi.mjs
VALIDATE=$E2E_SRCDIR/tests/web/validate-responses.mjs
DOC=$E2E_SRCDIR/openapi.yaml
[ -x "$ROUTES" ] || { echo "Bail out! $ROUTES is missing (built by make check, or: make tests/tools/routes)"; exit 99; }
command -v node >/dev/null || { echo "Bail out! node is missing (scripts/install-deps.sh)"; exit 99; }
W=$STACK_DIR/openapi
mkdir -p "$W"

# tap_lines OUTPUT: a tool's "ok - " / "not ok - " lines as this script's tests.
tap_lines() {
	local line
	while IFS= read -r line; do
		case $line in
		"ok - "*) pass "${line#ok - }" ;;
		"not ok - "*) fail "${line#not ok - }" ;;
		"Bail out!"*) echo "$line"; exit 99 ;;
		*) echo "$line" ;;
		esac
	done <<<"$1"
}

# --- the real table against the real document ---------------------------------
"$ROUTES" >"$W/routes"
rc=$?
check "tests/tools/routes prints the router's table ($(wc -l <"$W/routes") routes)" \
	[ "$rc" = 0 -a "$(wc -l <"$W/routes")" -gt 0 ]
sed 's/^/#   /' "$W/routes"
out=$(node "$CHECK" --doc "$DOC" --routes "$W/routes")
rc=$?
tap_lines "$out"
[ "$rc" = 0 ] || [[ "$out" == *"not ok - "* ]] || fail "check-openapi.mjs exited $rc"

# --- the checks fail when they should ---------------------------------------------
# must_fail DESCRIPTION TEXT CHECK-ARGS...: check-openapi exits 1 and says TEXT.
must_fail() {
	local desc=$1 want=$2 out rc
	shift 2
	out=$(node "$CHECK" "$@" 2>&1)
	rc=$?
	if [ "$rc" = 1 ] && grep -qF -- "$want" <<<"$out"; then
		pass "$desc"
	else
		fail "$desc" "exit $rc, and no line with: $want"
		grep '^not ok\|^#' <<<"$out" | head -n 5 | sed 's/^/#   /'
	fi
}
# table NAME AWK-PROGRAM: a doctored copy of the table.
table() {
	awk -F'\t' -v OFS='\t' "$2" "$W/routes" >"$W/routes.$1"
	cmp -s "$W/routes" "$W/routes.$1" && fail "doctoring the table ($1) changed nothing"
}
# document NAME SED-SCRIPT: a doctored copy of the document.
document() {
	sed "$2" "$DOC" >"$W/doc.$1.yaml"
	cmp -s "$DOC" "$W/doc.$1.yaml" && fail "doctoring the document ($1) changed nothing"
}

table added '{ print } END { print "DELETE", "/chat/conversations/{id}", "token", "none", "chat", "chat_conversation_delete" }'
must_fail "drift: a route added to the router but not to the document fails" \
	"DELETE /chat/conversations/{id} (chat_conversation_delete) is in the router's table but not in the document" \
	--doc "$DOC" --routes "$W/routes.added"
table removed '!($1 == "GET" && $2 == "/auth/me")'
must_fail "drift: a route the document has but the router lost fails" \
	"GET /auth/me is in the document but not in the router's table" --doc "$DOC" --routes "$W/routes.removed"
table public '$1 == "GET" && $2 == "/auth/me" { $3 = "public" } { print }'
must_fail "drift: a route whose token need changed fails (security)" \
	"GET /auth/me: the router says public" --doc "$DOC" --routes "$W/routes.public"
table class '$1 == "POST" && $2 == "/auth/register" { $5 = "chat" } { print }'
must_fail "drift: a route whose rate-limit class changed fails (x-rate-limit-class)" \
	"POST /auth/register: the router's class is chat, the document says auth" --doc "$DOC" --routes "$W/routes.class"
table body '$1 == "POST" && $2 == "/auth/login" { $4 = "json" } { print }'
must_fail "drift: a route whose body kind changed fails (request body media types)" \
	"POST /auth/login: the router takes json" --doc "$DOC" --routes "$W/routes.body"
table name '$6 == "auth_me" { $6 = "whoami" } { print }'
must_fail "drift: a route renamed (its metrics label) fails (operationId)" \
	"GET /auth/me: operationId auth_me, the route (and metrics label) is whoami" --doc "$DOC" --routes "$W/routes.name"

# In the document: edits inside the /auth/me path item, or first matches.
me_block='/^  \/auth\/me:$/,/^  \/auth\/password:$/'
document version 's/^openapi: 3\.1\.0$/openapi: 3.0.3/'
must_fail "the document must be OpenAPI 3.1.0" 'openapi is "3.0.3", not "3.1.0"' --doc "$W/doc.version.yaml" --routes "$W/routes"
document yaml11 's/^openapi: 3\.1\.0$/&\nx-flag: off/'
must_fail "a value that YAML 1.1 (Swagger UI's parser) reads otherwise fails" "reads differently under YAML 1.1" --doc "$W/doc.yaml11.yaml"
document invalid 's/^    get:$/    got:/'
must_fail "the document must be valid against the 3.1 schema" "valid against the 3.1 schema" --doc "$W/doc.invalid.yaml"
document typo '0,/maxLength:/s//maxLenght:/'
must_fail "a misspelt schema keyword fails (ajv strict mode)" 'unknown keyword: "maxLenght"' --doc "$W/doc.typo.yaml"
document nullable '0,/^    DisplayName:$/s//&\n      nullable: true/'
must_fail "an OpenAPI 3.0 keyword in a schema fails (nullable is not 3.1)" 'unknown keyword: "nullable"' --doc "$W/doc.nullable.yaml"
document example 's/^\(  *\)expires_in: 3600$/\1expires_in: 30/'
must_fail "an example that breaks its schema fails" "POST /auth/login 200 application/json example" --doc "$W/doc.example.yaml"
document security "$me_block"'{/^      security:$/{N;N;s/.*/      security: []/}}'
must_fail "drift: a token route documented as public fails (security)" \
	"GET /auth/me: the router says a token is required" --doc "$W/doc.security.yaml" --routes "$W/routes"
document limit "$me_block"'s/x-rate-limit-class: read/x-rate-limit-class: none/'
must_fail "drift: a wrong x-rate-limit-class in the document fails" \
	"GET /auth/me: the router's class is read, the document says none" --doc "$W/doc.limit.yaml" --routes "$W/routes"
document no429 "$me_block""{/^        '429':\$/{N;d}}"
must_fail "a limited route without its documented 429 fails" "GET /auth/me: 429 not documented" --doc "$W/doc.no429.yaml" --routes "$W/routes"
document tokenurl 's|tokenUrl: /auth/login|tokenUrl: /auth/token|'
must_fail "the OAuth2 tokenUrl must be a documented form login" "tokenUrl /auth/token is no POST that takes the OAuth2 form" --doc "$W/doc.tokenurl.yaml"

# --- the response validator refuses what the document does not say ---------------------
# answer METHOD PATH STATUS HEADERS-JSON BODY: one recorded answer.
answer() {
	jq -nc --arg m "$1" --arg p "$2" --argjson s "$3" --argjson h "$4" --arg b "$5" \
		'{test: "doctored", method: $m, path: $p, status: $s, headers: $h, body: $b}'
}
std='["X-Request-ID","abc"],["X-Content-Type-Options","nosniff"],["Cache-Control","no-store"]'
json_std="[$std,[\"Content-Type\",\"application/json\"]]"
{
	answer GET /healthz 200 "$json_std" '{"status":"ok"}'
	answer GET '/healthz?x=1' 200 "$json_std" '{"status":"ok"}'
	answer GET /chat/conversations/abc 404 "$json_std" '{"error":"not_found","detail":"no such resource"}'
	answer GET /chat/conversations/9223372036854775808 404 "$json_std" '{"error":"not_found","detail":"no such resource"}'
	answer DELETE /healthz 405 "[$std,[\"Allow\",\"GET\"],[\"Content-Type\",\"application/json\"]]" '{"error":"method_not_allowed","detail":"method not allowed on this path"}'
	answer GET /auth/me 429 "[$std,[\"Content-Type\",\"application/json\"],[\"Retry-After\",\"12\"],[\"RateLimit-Limit\",\"5\"],[\"RateLimit-Remaining\",\"0\"],[\"RateLimit-Reset\",\"60\"]]" \
		'{"error":"rate_limited","detail":"too many requests; retry later","retry_after":12}'
	answer POST /auth/logout 204 "[$std]" ''
	answer GET /metrics 200 "[$std,[\"Content-Type\",\"text/plain; version=0.0.4; charset=utf-8\"]]" $'# HELP x y\nx 1\n'
	answer POST /auth/register 413 "$json_std" '{"error":"payload_too_large","detail":"request body over 65536 bytes","max_bytes":65536}'
	answer GET /healthz 503 "[$std,[\"Content-Type\",\"application/json\"],[\"Retry-After\",\"1\"]]" '{"error":"service_unavailable","detail":"no worker available, retry later"}'
} >"$W/good.jsonl"
out=$(node "$VALIDATE" --doc "$DOC" "$W/good.jsonl" 2>"$W/good.err")
rc=$?
[ "$rc" = 99 ] && { echo "$out"; exit 99; }
check "conforming answers pass the response validator (10, two of them the web server's own)" \
	bash -c '[ "$0" = 0 ] && [ "$1" = "ok - 10 responses conform to openapi.yaml" ]' "$rc" "$out"
{
	answer GET /healthz 418 "$json_std" '{"status":"ok"}'
	answer GET /healthz 200 "$json_std" '{"status":"fine"}'
	answer GET /healthz 200 '[["Content-Type","application/json"]]' '{"status":"ok"}'
	answer POST /auth/register 413 '[["Content-Type","text/html"]]' '<html>413</html>'
	answer DELETE /healthz 405 "[$std,[\"Allow\",\"GET, POST\"],[\"Content-Type\",\"application/json\"]]" '{"error":"method_not_allowed","detail":"method not allowed on this path"}'
	answer GET /auth/me 401 "$json_std" '{"error":"unauthorized","detail":"a bearer token is required"}'
	answer GET /chat/conversations/7/messages 200 "$json_std" '{"items":[{"id":1,"conversation_id":7,"sender_id":1,"body":"hi","created_at":"2026-11-28T21:04:05.123Z"}]}'
	answer GET /nope 200 "$json_std" '{"status":"ok"}'
	answer POST /auth/logout 204 "$json_std" '{"status":"ok"}'
	answer GET /auth/me 429 "$json_std" '{"error":"rate_limited","detail":"too many requests; retry later","retry_after":12}'
	answer GET /auth/me 200 "[$std,[\"Content-Type\",\"application/json\"],[\"RateLimit-Remaining\",\"-1\"]]" '{"id":1,"email":"a@x.io","display_name":"a","created_at":"2026-11-28T21:04:05.123Z"}'
} >"$W/bad.jsonl"
out=$(node "$VALIDATE" --doc "$DOC" "$W/bad.jsonl" 2>/dev/null)
rc=$?
check "11 answers outside the document: the response validator fails on each" \
	bash -c '[ "$0" = 1 ] && grep -qx "not ok - 11 of 11 responses do not conform to openapi.yaml" <<<"$1"' "$rc" "$out"
for why in "GET /healthz -> 418: status 418 is not documented" \
	"GET /healthz -> 200: body: /status must be equal to constant" \
	"GET /healthz -> 200: required header X-Request-ID is missing" \
	"POST /auth/register -> 413: required header X-Request-ID is missing" \
	'DELETE /healthz -> 405: Allow is "GET, POST", the document has GET on /healthz' \
	"GET /auth/me -> 401: required header WWW-Authenticate is missing" \
	"GET /chat/conversations/7/messages -> 200: body: /items/0 must have required property 'sender_name'" \
	"GET /nope -> 200: status 200 is not documented for an unknown path" \
	"POST /auth/logout -> 204: documented without a body" \
	"GET /auth/me -> 429: required header Retry-After is missing" \
	'GET /auth/me -> 200: header RateLimit-Remaining: "-1" is not an integer of the schema'; do
	check "... $why" grep -qF -- "$why" <<<"$out"
done

# --- req() records a live stack's answers the way the validator reads them ---------------
e2e_start 1
req GET '/healthz?probe=1' -H 'X-Request-ID: openapi-probe'
req GET /chat/conversations/abc
json POST /auth/login '{"email":"nobody@x.io","password":"wrong password"}'
login_body=$BODY
req BREW /healthz
recorded() { jq -rs "$1" "$E2E_RESPONSES"; }
check "req() recorded 4 answers" [ "$(recorded length)" = 4 ]
check "... method, path with its query, status, the client's X-Request-ID among the headers, the body" \
	[ "$(recorded '.[0] | "\(.method) \(.path) \(.status) \(.headers | map(select(.[0] | ascii_downcase == "x-request-id"))[0][1]) \(.body)"')" = 'GET /healthz?probe=1 200 openapi-probe {"status":"ok"}' ]
check "... a JSON body as text, byte for byte (the 401 of a failed login)" \
	[ "$(recorded '.[2].body')" = "$login_body" -a "$(recorded '.[2].body | fromjson | .error')" = invalid_credentials ]
check "... the web server's own answer like any other (the door's 501, in the envelope)" \
	[ "$(recorded '.[3] | "\(.status) \(.body | fromjson | .error)"')" = "501 not_implemented" ]

e2e_finish
