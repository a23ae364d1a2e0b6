#!/usr/bin/env bash
# GET /metrics (SPEC §6): counters summed over 4 workers through shared
# memory, exact for known traffic, valid Prometheus text, and only for
# clients in METRICS_ALLOW.
. "$(dirname "$0")/lib.sh"

export RATE_LIMIT_AUTH=5/minute RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
e2e_start 4
# e2e_start polls /healthz until a worker answers: count from a clean slate.
fresh_table() { rm -f "/dev/shm$RATE_LIMIT_SHM"; export RATE_LIMIT_SHM=/chat-e2e-$$-$RANDOM; }
fresh_table
e2e_lighttpd 4
req GET /metrics
baseline_healthz=$(printf '%s\n' "$BODY" | awk '/^chat_http_requests_total\{route="healthz",status="200"\}/ {print $2}')
baseline_healthz=${baseline_healthz:-0}

# Known traffic, spread by lighttpd over the 4 workers.
for _ in $(seq 1 20); do req GET /healthz; done
for _ in $(seq 1 7); do req GET /nope; done
for _ in 1 2 3; do req DELETE /healthz; done
for _ in 1 2; do req GET /readyz; done
for _ in 1 2 3 4 5 6; do json POST /auth/login '{"email":"nobody@x.io","password":"wrong password"}'; done
check "the 6th login was rate limited" is_error 429 rate_limited

req GET /metrics
check "metrics: 200 text/plain version 0.0.4" \
	[ "$STATUS" = 200 -a "$(header Content-Type)" = "text/plain; version=0.0.4; charset=utf-8" ]
M=$BODY
printf '%s' "$M" >"$STACK_DIR/metrics.txt"
value() { printf '%s\n' "$M" | awk -v k="$1" '$1 == k {print $2}'; }
check "healthz 200 counted exactly (20)" [ "$(value 'chat_http_requests_total{route="healthz",status="200"}')" = $((baseline_healthz + 20)) ]
check "unknown paths counted as unmatched 404 (7)" [ "$(value 'chat_http_requests_total{route="unmatched",status="404"}')" = 7 ]
check "405s counted on their route (3)" [ "$(value 'chat_http_requests_total{route="healthz",status="405"}')" = 3 ]
check "readyz 200 (2)" [ "$(value 'chat_http_requests_total{route="readyz",status="200"}')" = 2 ]
check "login 401 (5)" [ "$(value 'chat_http_requests_total{route="auth_login",status="401"}')" = 5 ]
check "login 429 (1)" [ "$(value 'chat_http_requests_total{route="auth_login",status="429"}')" = 1 ]
check "rate-limit rejections of class auth (1)" [ "$(value 'chat_rate_limit_rejections_total{class="auth"}')" = 1 ]
check "histogram count of healthz = all its answers (23)" [ "$(value 'chat_http_request_duration_seconds_count{route="healthz"}')" = $((baseline_healthz + 23)) ]
check "histogram +Inf bucket = count" [ "$(value 'chat_http_request_duration_seconds_bucket{route="healthz",le="+Inf"}')" = "$(value 'chat_http_request_duration_seconds_count{route="healthz"}')" ]
check "buckets are cumulative (never decrease)" bash -c 'grep "^chat_http_request_duration_seconds_bucket{route=\"healthz\"" "$0" | awk "{ if (\$2 < prev) exit 1; prev = \$2 }"' "$STACK_DIR/metrics.txt"
check "database connects counted (>= 1)" [ "$(value chat_db_connects_total)" -ge 1 ]
sleep 0.2
workers=$(grep '"path":"/healthz"' "$STACK_DIR/lighttpd.log" | jq -r .pid | sort -u | wc -l)
check "the traffic was served by several workers ($workers), the counts are their sum" [ "$workers" -ge 2 ]

# The format, by Prometheus' own parser when the machine has it, and by a
# strict reading of the text format 0.0.4 in any case.
if command -v promtool >/dev/null; then
	check "promtool check metrics: parses, no lint problem" bash -c 'out=$(promtool check metrics <"$0" 2>&1) && [ -z "$out" ]' "$STACK_DIR/metrics.txt"
fi
strict_format() {
	awk '
	/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$/ { next }
	/^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped)$/ { typed[$3] = $4; next }
	/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? -?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ {
		name = $1; sub(/\{.*/, "", name); base = name
		sub(/_(bucket|sum|count)$/, "", base)
		if (!(name in typed) && !(base in typed && typed[base] == "histogram")) { print "untyped sample: " $0; bad = 1 }
		if (typed[name] == "counter" && name !~ /_total$/) { print "counter without _total: " $0; bad = 1 }
		next
	}
	{ print "bad line: " $0; bad = 1 }
	END { exit bad }' "$1"
}
check "every line is HELP, TYPE or a well-formed sample of a declared family" strict_format "$STACK_DIR/metrics.txt"
printf '%s\n' "$M" | grep -E '^chat_(http_requests_total|rate_limit_rejections_total\{class="auth"|db_)' | sed 's/^/# /'

# --- who may read it ----------------------------------------------------------
export METRICS_ALLOW=10.0.0.0/8
e2e_lighttpd 2
req GET /metrics
check "a client outside METRICS_ALLOW gets 404 not_found" is_error 404 not_found
unset METRICS_ALLOW
export TRUSTED_PROXIES=127.0.0.1/32
e2e_lighttpd 2
req GET /metrics -H 'X-Forwarded-For: 203.0.113.5'
check "behind a trusted proxy the real client decides: 404 for a remote one" is_error 404 not_found
req GET /metrics
check "... and 200 for the proxy's own loopback request" is_status 200

e2e_finish
