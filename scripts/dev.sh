#!/usr/bin/env bash
# One command for a development stack on a fresh Debian machine:
# install what is missing, build, start PostgreSQL with TLS (generated CA,
# verify-full), apply migrations, then run lighttpd with 4 chat-fcgi workers
# on http://127.0.0.1:8080 in the foreground.  Ctrl-C stops everything.
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
trap stack_pg_stop EXIT
stack_migrate "$top/_build"

APP_MODE=DEV
stack_env chat_app
export LOG_LEVEL=${LOG_LEVEL:-info}
# A segment per user: one made by root's dev stack is not ours to open.
export RATE_LIMIT_SHM=${RATE_LIMIT_SHM:-/chat-fcgi-dev-$(id -u)}
port=${CHAT_PORT:-8080}
stack_lighttpd_conf "$top/_build" "$port" "${CHAT_WORKERS:-4}"
echo "chat-fcgi: http://127.0.0.1:$port  (PostgreSQL on 127.0.0.1:$PG_PORT, TLS verify-full; state in $STACK_DIR)" >&2
lighttpd -D -f "$STACK_DIR/lighttpd.conf"
