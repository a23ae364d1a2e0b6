#!/usr/bin/env bash
# The static side of lighttpd.conf: the web client at /, Swagger UI at
# /docs and the API description at /openapi.yaml are the repository's files,
# byte for byte, under a strict Content-Security-Policy; every other URL
# still reaches the workers; nothing outside web/ can be fetched; and /docs
# renders the whole document in Debian's chromium with nothing loaded from
# elsewhere.  (The client itself is tested in test_browser.sh.)
. "$(dirname "$0")/lib.sh"

WEB=$E2E_SRCDIR/web
e2e_start 2

# static URL FILE: a GET answered from the file, by the web server itself.
static() {
	local url=$1 file=$2
	curl -s -S -D "$HDRS" -o "$STACK_DIR/static.out" -w '%{http_code}' "$BASE$url" >"$STACK_DIR/static.status"
	STATUS=$(cat "$STACK_DIR/static.status")
	BODY=
	[ "$STATUS" = 200 ] && cmp -s "$STACK_DIR/static.out" "$file" && [ -z "$(header X-Request-ID)" ]
}
csp_is_strict() {
	local csp
	csp=$(header Content-Security-Policy)
	case $csp in *unsafe-* | *"*"* | *http:* | *https:*) return 1 ;; esac
	case $csp in "default-src 'none';"*) ;; *) return 1 ;; esac
	for d in "script-src 'self'" "style-src 'self'" "connect-src 'self'" "base-uri 'none'" \
		"frame-ancestors 'none'" "form-action 'self'"; do
		case "$csp;" in *"$d;"*) ;; *) return 1 ;; esac
	done
	has_header X-Content-Type-Options nosniff
}
# (check runs its command directly; the compound ones go through bash -c.)
export -f static csp_is_strict header has_header
export HDRS STACK_DIR BASE

check "GET / is web/index.html, from the web server (no X-Request-ID)" static / "$WEB/index.html"
check "... text/html; charset=utf-8" has_header Content-Type "text/html; charset=utf-8"
check "... under a strict CSP (no inline script or style, same origin only, no frames), nosniff" csp_is_strict
check "GET /?any=query is the client too" static "/?from=bookmark" "$WEB/index.html"
for f in "$WEB"/assets/*; do
	check "GET /assets/$(basename "$f") is the file, under the same CSP" \
		bash -c 'static "$0" "$1" && csp_is_strict' "/assets/$(basename "$f")" "$f"
done
check "GET /docs is the docs page" static /docs "$WEB/docs/index.html"
check "GET /docs/ too, under the same CSP" bash -c 'static /docs/ "$0" && csp_is_strict' "$WEB/docs/index.html"
check "the vendored Swagger UI bundle, text/javascript" \
	bash -c 'static /docs/swagger-ui/swagger-ui-bundle.js "$0" && has_header Content-Type "text/javascript; charset=utf-8"' \
	"$WEB/docs/swagger-ui/swagger-ui-bundle.js"
check "GET /openapi.yaml is the repository's document" static /openapi.yaml "$E2E_SRCDIR/openapi.yaml"

# The vendored viewer: pinned, with its licence.
pinned=$(sed -n 's/^VERSION=//p' "$E2E_SRCDIR/scripts/vendor-swagger-ui.sh")
check "Swagger UI is vendored at the pinned version ($pinned), with its licence and notices" \
	bash -c 'grep -qx "swagger-ui-dist $0" "$1/VERSION" && grep -q "Apache License" "$1/LICENSE" && [ -s "$1/swagger-ui-bundle.js.LICENSE.txt" ]' \
	"$pinned" "$WEB/docs/swagger-ui"

# Every other URL is the API's: the workers answer, JSON.
req GET /healthz
check "GET /healthz still reaches a worker" bash -c '[ "$0" = 200 ] && [ -n "$1" ]' "$STATUS" "$(header X-Request-ID)"
req GET /index.htm
check "an unknown path outside the static ones: the worker's JSON 404" is_error 404 not_found
req GET /web/index.html
check "... /web/index.html is not a file here either" is_error 404 not_found

# Nothing outside web/ (and the one document) can be reached.
leaks=
for u in /assets/../../README.md /docs/../../README.md /docs/..%2f..%2fREADME.md \
	/docs/%2e%2e/%2e%2e/README.md /assets/%2e%2e/%2e%2e/configure.ac /docs/swagger-ui/../../../lighttpd.conf \
	/openapi.yaml/../README.md /assets//etc/passwd /assets/..%5c..%5cREADME.md; do
	out=$(curl -s --path-as-is "$BASE$u")
	case $out in *"# chat-fcgi"* | *AC_INIT* | *root:x:* | *"var.chat_"*) leaks="$leaks $u" ;; esac
done
check "dot-dot and encoded traversals reach no file outside web/:${leaks:- none}" [ -z "$leaks" ]

# The pages themselves: nothing the CSP would have to allow.
inline=$(grep -nE '<script>|<script[^>]*>[^<]|<style|[[:space:]]on[a-z]+=|[[:space:]]style=|javascript:' \
	"$WEB"/*.html "$WEB"/docs/*.html || true)
check "no inline script, style or event handler in our HTML${inline:+: $inline}" [ -z "$inline" ]
sinks=$(grep -nE 'innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function|setTimeout\([\x27"`]' \
	"$WEB"/assets/*.js "$WEB"/docs/*.js || true)
check "no HTML sink or string evaluation in our scripts${sinks:+: $sinks}" [ -z "$sinks" ]

# And in a browser: the whole document rendered, under the CSP.
if [ -x /usr/bin/chromium ] || [ -n "${CHROMIUM:-}" ]; then
	out=$(BASE=$BASE node "$E2E_SRCDIR/tests/web/docs-page.mjs" "$E2E_SRCDIR/openapi.yaml" 2>&1)
	rc=$?
	[ "$rc" = 99 ] && { echo "$out"; exit 99; }
	e2e_relay <<<"$out"
	[ "$rc" = 0 ] || [ "$E2E_FAILED" -gt 0 ] || fail "docs-page.mjs exited $rc"
else
	echo "Bail out! chromium is missing (scripts/install-deps.sh)"
	exit 99
fi

e2e_finish
