#!/usr/bin/env bash
# One command for a development stack on a fresh Debian machine:
# install what building and running need (scripts/install-deps.sh --run:
# no test toolchain, no system service left enabled), build, start
# PostgreSQL with TLS (generated CA, verify-full), apply migrations, then
# run lighttpd with 4 chat-fcgi workers on http://127.0.0.1:8080 until
# Ctrl-C.  The install and build output goes to $CHAT_DEV_DIR/build.log,
# lighttpd's and the workers' to $CHAT_DEV_DIR/lighttpd.log; the terminal
# gets a short summary (URL, state, how to stop, the rate limits, the
# chat-admin command for this stack), or the end of the log on a failure.
#
# Ctrl-C stops everything: lighttpd stops gracefully (requests in flight
# get their answers), every worker leaves, then PostgreSQL stops; nothing
# is left running.  A second Ctrl-C makes lighttpd stop at once.  SIGTERM
# or SIGHUP to this script do the same as one Ctrl-C.
#
# As root, lighttpd switches to the unprivileged user chat-fcgi (created
# when missing) before it spawns the workers: they never run as root.
#
# Environment: CHAT_PORT (8080), CHAT_WORKERS (4), CHAT_DEV_DIR (the
# state: database, certificates, secrets, logs; kept between runs: .dev/ in
# the tree, or /var/tmp/chat-fcgi-dev as root, because PostgreSQL runs as
# the "postgres" user then and must reach its files), CHAT_BUILD_DIR (the
# build tree, _build/ in the tree; an existing one is only brought up to
# date), and every variable
# of the workers' configuration lighttpd.conf passes on (bin-copy-
# environment), e.g. RATE_LIMIT_AUTH=100/minute RATE_LIMIT_CHAT=100/minute.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "$(id -u)" -eq 0 ]; then
	STACK_DIR=${CHAT_DEV_DIR:-/var/tmp/chat-fcgi-dev}
else
	STACK_DIR=${CHAT_DEV_DIR:-$top/.dev}
fi
mkdir -p "$STACK_DIR"
STACK_DIR=$(cd "$STACK_DIR" && pwd)
log=$STACK_DIR/build.log
: >"$log"
port=${CHAT_PORT:-8080}
build=${CHAT_BUILD_DIR:-$top/_build}
mkdir -p "$build"
build=$(cd "$build" && pwd) # the summary's chat-admin path works from anywhere
PG_STARTED=
READY=

# Whatever ends this script (Ctrl-C, SIGTERM, an error): lighttpd gone,
# then its workers (they leave by themselves: stop.h; any still there
# after 5 s are killed and named), then PostgreSQL.  A failure before the
# stack was up shows the end of the build log.
dev_stop() {
	local status=$?
	set +e # clean up all the way, whatever fails
	if [ -n "${LIGHTTPD_PID:-}" ] && kill -0 "$LIGHTTPD_PID" 2>/dev/null; then
		kill -INT "$LIGHTTPD_PID" 2>/dev/null || true
		wait "$LIGHTTPD_PID" 2>/dev/null || true
	fi
	LIGHTTPD_PID=
	if [ -n "$PG_STARTED" ]; then
		stack_workers_gone
		stack_pg_stop
		echo "chat-fcgi: stopped (lighttpd, workers, PostgreSQL)" >&2
	fi
	if [ -z "$READY" ] && [ "$status" -ne 0 ]; then
		echo "chat-fcgi: dev stack failed (exit $status); the end of $log:" >&2
		tail -n 25 "$log" >&2
	fi
}
trap dev_stop EXIT
step() { echo "=== $*" >>"$log"; }

echo "chat-fcgi: installing what is missing and building (output in $log)..." >&2
step "scripts/install-deps.sh --run"
scripts/install-deps.sh --run >>"$log" 2>&1
step build
{
	[ -x configure ] || autoreconf -fi
	mkdir -p "$build"
	(cd "$build" && { [ -f Makefile ] || "$top/configure"; } && make -j"$(nproc)")
} >>"$log" 2>&1

STACK_SRCDIR=$top
# shellcheck source=stack.sh
. "$top/scripts/stack.sh"

step PostgreSQL
PG_STARTED=1
if [ -f "$STACK_DIR/pg_port" ] && [ -d "$STACK_DIR/pg/data" ]; then
	PG_PORT=$(cat "$STACK_DIR/pg_port")
	stack_pg_start >>"$log" 2>&1
else
	rm -rf "$STACK_DIR/pg" "$STACK_DIR/secrets"
	stack_pg_init >>"$log" 2>&1
	echo "$PG_PORT" >"$STACK_DIR/pg_port"
fi
step migrations
stack_migrate "$build" >>"$log" 2>&1

APP_MODE=DEV
stack_env chat_app
export LOG_LEVEL=${LOG_LEVEL:-info}
# A segment per workers' user: one made by another user is not theirs to
# open (as root, the workers run as chat-fcgi).
export RATE_LIMIT_SHM=${RATE_LIMIT_SHM:-/chat-fcgi-dev-$(id -u "$(stack_worker_user)")}
step lighttpd
stack_lighttpd_conf "$build" "$port" "${CHAT_WORKERS:-4}" >>"$log" 2>&1
# In the background, so that this shell can wait for it and still act on
# signals.  Ctrl-C reaches lighttpd directly (same process group): its
# SIGINT is a graceful stop, and a second one an immediate stop, so this
# shell does not forward SIGINT; SIGTERM and SIGHUP sent to this script
# alone become a graceful stop.
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
	READY=1 # nothing to show from the build log
	echo "chat-fcgi: port $port is taken; choose another with CHAT_PORT=..." >&2
	exit 1
fi
trap ':' INT
trap '[ -z "${LIGHTTPD_PID:-}" ] || kill -INT "$LIGHTTPD_PID" 2>/dev/null || true' TERM HUP
lighttpd -D -f "$STACK_DIR/lighttpd.conf" 2>>"$STACK_DIR/lighttpd.log" &
LIGHTTPD_PID=$!
if ! stack_wait_port "$port" 20 || ! kill -0 "$LIGHTTPD_PID" 2>/dev/null; then
	READY=1 # the lighttpd log says more than the build log
	echo "chat-fcgi: lighttpd did not start; the end of $STACK_DIR/lighttpd.log:" >&2
	tail -n 25 "$STACK_DIR/lighttpd.log" >&2
	exit 1
fi
READY=1
rate() { printf '%s' "${!1:-$2}"; }
cat >&2 <<SUMMARY

chat-fcgi is running: http://127.0.0.1:$port/  (API docs: http://127.0.0.1:$port/docs)
  state      $STACK_DIR (PostgreSQL on 127.0.0.1:$PG_PORT, TLS verify-full)
  logs       $STACK_DIR/lighttpd.log (workers), $log (install and build)
  stop       Ctrl-C (stops lighttpd, the $(stack_worker_user) workers and PostgreSQL)
  limits     auth $(rate RATE_LIMIT_AUTH 5/minute), chat $(rate RATE_LIMIT_CHAT 5/minute), read $(rate RATE_LIMIT_READ 60/minute); to try things out:
             RATE_LIMIT_AUTH=100/minute RATE_LIMIT_CHAT=100/minute scripts/dev.sh
  chat-admin RATE_LIMIT_SHM=$RATE_LIMIT_SHM $build/chat-admin ratelimit stats
SUMMARY
while kill -0 "$LIGHTTPD_PID" 2>/dev/null; do
	wait "$LIGHTTPD_PID" || true
done
