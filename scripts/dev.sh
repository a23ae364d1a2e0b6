#!/usr/bin/env bash
# One command for a development stack on a fresh Debian machine:
# install what is missing, build, start PostgreSQL with TLS (generated CA,
# verify-full), apply migrations, then run lighttpd with 4 chat-fcgi workers
# on http://127.0.0.1:8080 in the foreground.  Ctrl-C stops everything:
# lighttpd stops gracefully (requests in flight get their answers), every
# worker leaves, then PostgreSQL stops; nothing is left running.  A second
# Ctrl-C makes lighttpd stop at once.  SIGTERM or SIGHUP to this script do
# the same as one Ctrl-C.
#
# As root, lighttpd switches to the unprivileged user chat-fcgi (created
# when missing) before it spawns the workers: they never run as root.
#
# State (database, certificates, secrets) persists between runs in
# $CHAT_DEV_DIR: .dev/ in the tree, or /var/tmp/chat-fcgi-dev as root
# (PostgreSQL runs as the "postgres" user then, and must reach its files).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

scripts/install-deps.sh
[ -x configure ] || autoreconf -fi
mkdir -p _build
(cd _build && { [ -f Makefile ] || ../configure; } && make -j"$(nproc)")

if [ "$(id -u)" -eq 0 ]; then
	STACK_DIR=${CHAT_DEV_DIR:-/var/tmp/chat-fcgi-dev}
else
	STACK_DIR=${CHAT_DEV_DIR:-$top/.dev}
fi
mkdir -p "$STACK_DIR"
STACK_SRCDIR=$top
# shellcheck source=stack.sh
. "$top/scripts/stack.sh"

if [ -f "$STACK_DIR/pg_port" ] && [ -d "$STACK_DIR/pg/data" ]; then
	PG_PORT=$(cat "$STACK_DIR/pg_port")
	stack_pg_start
else
	rm -rf "$STACK_DIR/pg" "$STACK_DIR/secrets"
	stack_pg_init
	echo "$PG_PORT" >"$STACK_DIR/pg_port"
fi
# Whatever ends this script (Ctrl-C, SIGTERM, an error): lighttpd gone,
# then its workers (they leave by themselves: stop.h; any still there
# after 5 s are killed and named), then PostgreSQL.
dev_stop() {
	set +e # clean up all the way, whatever fails
	if [ -n "${LIGHTTPD_PID:-}" ] && kill -0 "$LIGHTTPD_PID" 2>/dev/null; then
		kill -INT "$LIGHTTPD_PID" 2>/dev/null || true
		wait "$LIGHTTPD_PID" 2>/dev/null || true
	fi
	LIGHTTPD_PID=
	stack_workers_gone
	stack_pg_stop
	echo "chat-fcgi: stopped (lighttpd, workers, PostgreSQL)" >&2
}
trap dev_stop EXIT
stack_migrate "$top/_build"

APP_MODE=DEV
stack_env chat_app
export LOG_LEVEL=${LOG_LEVEL:-info}
# A segment per workers' user: one made by another user is not theirs to
# open (as root, the workers run as chat-fcgi).
export RATE_LIMIT_SHM=${RATE_LIMIT_SHM:-/chat-fcgi-dev-$(id -u "$(stack_worker_user)")}
port=${CHAT_PORT:-8080}
stack_lighttpd_conf "$top/_build" "$port" "${CHAT_WORKERS:-4}"
echo "chat-fcgi: http://127.0.0.1:$port  (PostgreSQL on 127.0.0.1:$PG_PORT, TLS verify-full; state in $STACK_DIR; workers run as $(stack_worker_user))" >&2
# In the background, so that this shell can wait for it and still act on
# signals.  Ctrl-C reaches lighttpd directly (same process group): its
# SIGINT is a graceful stop, and a second one an immediate stop, so this
# shell does not forward SIGINT; SIGTERM and SIGHUP sent to this script
# alone become a graceful stop.
lighttpd -D -f "$STACK_DIR/lighttpd.conf" &
LIGHTTPD_PID=$!
trap ':' INT
trap 'kill -INT "$LIGHTTPD_PID" 2>/dev/null || true' TERM HUP
while kill -0 "$LIGHTTPD_PID" 2>/dev/null; do
	wait "$LIGHTTPD_PID" || true
done
