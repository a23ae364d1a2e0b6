#!/usr/bin/env bash
# Login cost and throughput (issue 3): the time of one hash at the default
# parameters (2^15/8/3), then login throughput through lighttpd with 4
# workers against the machine's ceiling of cores / hash time.  Prints
# figures; asserts nothing.  Needs a build (CHAT_BUILDDIR, default _build).
#   bench/bench_auth.sh [SECONDS] [CONNECTIONS]
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export CHAT_SRCDIR=$top CHAT_BUILDDIR=${CHAT_BUILDDIR:-$top/_build}
secs=${1:-15}
conns=${2:-8}
command -v wrk >/dev/null || { echo "wrk is missing: scripts/install-deps.sh"; exit 1; }
. "$top/tests/e2e/lib.sh"

cc -O2 -o "$STACK_DIR/bench_scrypt" "$top/bench/bench_scrypt.c" -lscrypt
hash_line=$("$STACK_DIR/bench_scrypt" 15 8 3 5)
echo "$hash_line"
hash_ms=$(printf '%s' "$hash_line" | sed -E 's/.*mean ([0-9.]+) ms.*/\1/')

export RATE_LIMIT_AUTH=off RATE_LIMIT_READ=off RATE_LIMIT_CHAT=off
export SCRYPT_N=15 SCRYPT_R=8 SCRYPT_P=3
e2e_start 4
json POST /auth/register '{"email":"bench@x.io","password":"bench password"}'
export LOGIN_BODY='{"email":"bench@x.io","password":"bench password"}'
cores=$(nproc)
echo "login throughput: wrk -t2 -c$conns -d${secs}s, lighttpd with 4 workers, $cores cores"
out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$top/bench/login.lua" "$BASE/auth/login")
echo "$out" | grep -E 'Requests/sec|Latency|99%|50%|Non-2xx'
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
awk -v rps="$rps" -v ms="$hash_ms" -v c="$cores" 'BEGIN {
	ceiling = c * 1000 / ms
	printf "ceiling (cores / hash time) = %d / %.1f ms = %.2f logins/s; measured %.2f/s = %.0f%% of it\n", c, ms, ceiling, rps, 100 * rps / ceiling
}'
E2E_PASSED=1
e2e_finish >/dev/null
