#!/usr/bin/env bash
# scripts/dev.sh as a newcomer runs it: quiet (the build in a log, a short
# summary on the terminal), a working stack behind the URL it prints, a
# chat-admin command that finds the dev segment, limits relaxed by the
# variables the summary names, and Ctrl-C leaving nothing running.
#
# Not part of make check: dev.sh builds in the source tree and installs
# packages.  scripts/test.sh runs it after the checked builds, with
# CHAT_BUILD_DIR pointing at one of them (already built: make is a no-op).
#   tests/dev/test_dev.sh [BUILD_DIR]
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/_build}
passed=0
failed=0
check() { # NAME COMMAND...
	local name=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok - $name"
	else
		failed=$((failed + 1))
		echo "not ok - $name"
	fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=$((20000 + RANDOM % 20000))
while ! port_free "$port"; do port=$((port + 1)); done
# As root PostgreSQL runs as "postgres", which must reach the state.
dir=$(mktemp -d /var/tmp/chat-dev-test.XXXXXX)
chmod 755 "$dir"
out=$dir.out
DEV_PID=
# A segment of its own: a developer's dev stack may be using the default.
export RATE_LIMIT_SHM=/chat-dev-test-$$

# Whatever happens, nothing of this stack survives the test.
cleanup() {
	if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
		kill -INT -- "-$DEV_PID" 2>/dev/null
		sleep 5
		kill -KILL -- "-$DEV_PID" 2>/dev/null
	fi
	pkill -KILL -f "$dir" 2>/dev/null
	rm -rf "$dir" "$out" "/dev/shm$RATE_LIMIT_SHM"
}
trap cleanup EXIT

# Started in its own process group, as a terminal would run it, so that
# "Ctrl-C" below is SIGINT to the whole group.
start_dev() { # VAR=VALUE...
	setsid env CHAT_DEV_DIR="$dir" CHAT_PORT="$port" CHAT_WORKERS=2 CHAT_BUILD_DIR="$build" "$@" \
		"$top/scripts/dev.sh" >"$out" 2>&1 </dev/null &
	DEV_PID=$!
	for _ in $(seq 1 300); do
		grep -q '^chat-fcgi is running' "$out" && return 0
		kill -0 "$DEV_PID" 2>/dev/null || return 1
		sleep 0.5
	done
	return 1
}

# Ctrl-C: the group gets SIGINT; the script must end by itself and take
# lighttpd, the workers and PostgreSQL with it.
ctrl_c() {
	kill -INT -- "-$DEV_PID"
	for _ in $(seq 1 60); do
		kill -0 "$DEV_PID" 2>/dev/null || break
		sleep 0.25
	done
	! kill -0 "$DEV_PID" 2>/dev/null
}
nothing_left() { ! pgrep -f "$dir" >/dev/null; }

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
json_post() { # PATH BODY [TOKEN]
	curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
		${3:+-H "Authorization: Bearer $3"} --data "$2" "http://127.0.0.1:$port$1"
}

# --- first start: quiet, a summary, a working stack --------------------------
start=$SECONDS
start_dev
rc=$?
check "dev.sh comes up and prints its summary ($((SECONDS - start)) s)" [ "$rc" = 0 ]
sed 's/^/# /' "$out"
lines=$(grep -c . "$out")
check "the terminal gets a few lines, not the build ($lines non-empty lines)" [ "$lines" -le 12 ]
check "... no configure, compiler or apt output among them" \
	bash -c '! grep -Eiq "^(checking |gcc|cc |make|libtool|Reading package|Setting up|Get:)" "$0"' "$out"
check "... the build went to build.log instead" grep -q '^=== build' "$dir/build.log"
check "the summary gives the URL with CHAT_PORT" grep -q "http://127.0.0.1:$port/" "$out"
check "... where the state is" grep -q "state *$dir" "$out"
check "... how to stop" grep -q 'Ctrl-C' "$out"
check "... the limits and how to relax them" \
	bash -c 'grep -q "chat 5/minute" "$0" && grep -q "RATE_LIMIT_CHAT=100/minute" "$0"' "$out"

check "the URL serves the web client" [ "$(code "http://127.0.0.1:$port/")" = 200 ]
check "... and the API (healthz)" [ "$(code "http://127.0.0.1:$port/healthz")" = 200 ]
check "register through the dev stack: 201" \
	[ "$(json_post /auth/register '{"email":"dev@example.org","password":"pass word 1"}')" = 201 ]

# The chat-admin line of the summary, run as printed.
admin=$(sed -n 's/^  chat-admin *//p' "$out")
stats=$(bash -c "$admin" 2>&1)
rc=$?
check "the summary's chat-admin command reads the dev segment (exit $rc)" \
	bash -c '[ "$0" = 0 ] && [[ "$1" == *slots* ]]' "$rc" "$stats"
check "... it names the test's segment, and it is the workers': it counted the registration" \
	bash -c '[[ "$0" == *"RATE_LIMIT_SHM=$1 "* ]] && printf "%s\n" "$2" | grep -Eq "^auth +[1-9]"' \
	"$admin" "$RATE_LIMIT_SHM" "$stats"

check "Ctrl-C ends dev.sh" ctrl_c
check "... with its closing line" grep -q 'stopped (lighttpd, workers, PostgreSQL)' "$out"
check "... and nothing of the stack is left running" nothing_left
check "... the port is free again" port_free "$port"

# --- second start: the state is kept, the limits relaxed as the summary says -
check "dev.sh starts again on the kept state, chat limit relaxed" start_dev RATE_LIMIT_CHAT=100/minute
check "... the summary shows the relaxed limit" grep -q 'chat 100/minute' "$out"
check "... the account registered before is there: login 200" \
	bash -c 'curl -s -H "Content-Type: application/json" --data "{\"email\":\"dev@example.org\",\"password\":\"pass word 1\"}" \
		"http://127.0.0.1:$0/auth/login" >"$1.login" && jq -e ".access_token" "$1.login" >/dev/null' "$port" "$dir"
token=$(jq -r '.access_token // empty' "$dir.login" 2>/dev/null)
rm -f "$dir.login"
conv=$(curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
	--data '{"title":"try"}' "http://127.0.0.1:$port/chat/conversations" | jq -r '.id // empty')
codes=
for i in $(seq 1 8); do
	codes+=" $(json_post "/chat/conversations/$conv/messages" "{\"body\":\"message $i\"}" "$token")"
done
check "eight messages in a row, all 201 with the relaxed limit:$codes" \
	bash -c '[ "$(echo $0 | tr " " "\n" | grep -c "^201$")" = 8 ]' "$codes"
check "Ctrl-C again ends dev.sh" ctrl_c
check "... and nothing is left running" nothing_left

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
