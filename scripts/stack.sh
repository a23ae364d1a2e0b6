# shellcheck shell=bash
# The local stack, shared by scripts/dev.sh and the end-to-end tests:
# PostgreSQL with TLS (a CA and a server certificate made on the spot) and
# lighttpd spawning chat-fcgi workers from the top-level lighttpd.conf.
#
# Source it, then call the stack_* functions.  Everything lives under
# $STACK_DIR.  PostgreSQL refuses to run as root, so when we are root its
# files belong to the "postgres" user (from the postgresql package) and its
# commands run through runuser.

STACK_SRCDIR=${STACK_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

# Passwords of the two database roles: long and random (TEST/PROD rules).
stack_random() { openssl rand -hex 24; }

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A TCP port nobody listens on, below the kernel's ephemeral range (32768+),
# so no client socket can hold it either.
stack_free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((10000 + RANDOM % 22000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

stack_wait_port() { # PORT SECONDS
	local i
	for i in $(seq 1 $(($2 * 10))); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# stack_pg_init: a fresh cluster in $STACK_DIR/pg with TLS, roles and a
# database.  Sets PG_PORT (if unset), PG_OWNER_PASSWORD, PG_APP_PASSWORD.
stack_pg_init() {
	local d=$STACK_DIR/pg
	PG_PORT=${PG_PORT:-$(stack_free_port)}
	mkdir -p "$d/sock" "$STACK_DIR/secrets"
	chmod 755 "$STACK_DIR" "$d"

	# TLS: a throw-away CA and a server certificate for 127.0.0.1/localhost,
	# so clients can use sslmode=verify-full.
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=chat-fcgi test CA" \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
		-keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/san.ext"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-CAcreateserial -days 30 -extfile "$d/san.ext" -out "$d/server.crt" 2>/dev/null
	chmod 600 "$d/server.key" "$d/ca.key"
	chmod 644 "$d/ca.crt" "$d/server.crt"
	if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$d"; fi

	as_pg "$PGBIN/initdb" -D "$d/data" -U postgres --auth-local=trust \
		--auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$d/initdb.log" 2>&1 ||
		{ cat "$d/initdb.log" >&2; return 1; }
	as_pg tee -a "$d/data/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$d/sock'
ssl = on
ssl_cert_file = '$d/server.crt'
ssl_key_file = '$d/server.key'
ssl_ca_file = '$d/ca.crt'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
max_connections = 100
${STACK_PG_EXTRA:-}
CONF
	# Plain "host" lines too: a test turns ssl off to prove the worker
	# refuses an unencrypted server in TEST/PROD.
	as_pg tee "$d/data/pg_hba.conf" >/dev/null <<HBA
local all all trust
hostssl all all 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
HBA
	stack_pg_start || return 1

	PG_OWNER_PASSWORD=$(stack_random)
	PG_APP_PASSWORD=$(stack_random)
	stack_psql postgres -v owner_pw="$PG_OWNER_PASSWORD" -v app_pw="$PG_APP_PASSWORD" <<'SQL' >/dev/null
CREATE ROLE chat_owner LOGIN PASSWORD :'owner_pw';
CREATE ROLE chat_app LOGIN PASSWORD :'app_pw';
CREATE DATABASE chat OWNER chat_owner;
SQL
	printf '%s' "$PG_OWNER_PASSWORD" >"$STACK_DIR/secrets/pg_owner_password"
	printf '%s' "$PG_APP_PASSWORD" >"$STACK_DIR/secrets/pg_app_password"
	chmod 600 "$STACK_DIR"/secrets/*
}

stack_pg_start() {
	as_pg "$PGBIN/pg_ctl" -D "$STACK_DIR/pg/data" -l "$STACK_DIR/pg/server.log" -w -t 30 \
		start >/dev/null || { tail -n 20 "$STACK_DIR/pg/server.log" >&2; return 1; }
}

stack_pg_stop() {
	[ -d "$STACK_DIR/pg/data" ] || return 0
	as_pg "$PGBIN/pg_ctl" -D "$STACK_DIR/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

# stack_pg_set NAME VALUE: change a reloadable setting (e.g. ssl) and reload.
stack_pg_set() {
	stack_psql postgres -c "ALTER SYSTEM SET $1 = '$2'" >/dev/null &&
		stack_psql postgres -c "SELECT pg_reload_conf()" >/dev/null
}

# stack_psql DB [psql args...]: superuser psql over the private socket.
stack_psql() {
	local db=$1
	shift
	as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$STACK_DIR/pg/sock" -p "$PG_PORT" -U postgres \
		-d "$db" "$@"
}

# The environment a worker (or chat-admin) gets: APP_MODE=TEST, TLS with
# verify-full against our CA, secrets by *_FILE.  ROLE is chat_app or
# chat_owner.
stack_env() { # ROLE
	local role=${1:-chat_app} pwfile
	[ "$role" = chat_owner ] && pwfile=pg_owner_password || pwfile=pg_app_password
	if [ ! -f "$STACK_DIR/secrets/secret_key" ]; then
		openssl rand -hex 32 >"$STACK_DIR/secrets/secret_key"
		chmod 600 "$STACK_DIR/secrets/secret_key"
	fi
	export APP_MODE=${APP_MODE:-TEST}
	export SECRET_KEY_FILE=$STACK_DIR/secrets/secret_key
	export POSTGRES_HOST=localhost POSTGRES_PORT=$PG_PORT POSTGRES_DB=chat POSTGRES_USER=$role
	export POSTGRES_PASSWORD_FILE=$STACK_DIR/secrets/$pwfile
	export POSTGRES_SSLMODE=verify-full POSTGRES_SSLROOTCERT=$STACK_DIR/pg/ca.crt
	unset SECRET_KEY POSTGRES_PASSWORD DATABASE_URL DATABASE_URL_FILE
}

# stack_migrate BUILDDIR: apply sql/ as the owner, then grant DML to chat_app.
stack_migrate() {
	(
		stack_env chat_owner
		"$1/chat-admin" migrate "$STACK_SRCDIR/sql"
	) || return 1
	# Through stdin: the postgres user may not be able to read our tree.
	as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$STACK_DIR/pg/sock" -p "$PG_PORT" -U chat_owner \
		-d chat -v worker=chat_app -f - <"$STACK_SRCDIR/scripts/grant-worker-role.sql" >/dev/null
}

# The workers' user when the stack runs as root: lighttpd starts as root,
# binds its port, then switches to this user (server.username) before it
# spawns a single worker, so no worker ever runs as root (a worker in
# APP_MODE TEST or PROD refuses to: exit status 78).  A system user with no
# home and no shell, created when missing; in /etc/passwd, as the workers
# need (README, "Worker confinement").  Run as anyone else, the stack's
# lighttpd and workers run as that user.
STACK_USER=${STACK_USER:-chat-fcgi}

# The user the workers run as.
stack_worker_user() {
	if [ "$(id -u)" -eq 0 ]; then echo "$STACK_USER"; else id -un; fi
}

stack_service_user() {
	[ "$(id -u)" -eq 0 ] || return 0
	for _ in $(seq 1 25); do
		id -u "$STACK_USER" >/dev/null 2>&1 && return 0
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$STACK_USER" 2>/dev/null && return 0
		sleep 0.2 # another stack creating it right now holds the passwd lock
	done
	echo "stack: cannot create the workers' user $STACK_USER" >&2
	return 1
}

# stack_worker_files BUILDDIR: what the workers, and lighttpd after its
# switch to the workers' user, must reach, made reachable without handing
# the tree to that user (a checkout under /root is mode 0700):
#   - their own copy of the binary, $STACK_DIR/bin/chat-fcgi (renamed
#     into place, so workers still running keep their file); the copy also
#     tells this stack's workers from any other chat-fcgi (/proc/PID/exe);
#   - the socket directory, $STACK_DIR/run, theirs to create sockets in;
#   - as root, the static files (copied) and the secrets the workers read,
#     by group (0640, directory 0750): never world-readable.  The
#     database owner's password stays root's alone (0600).
stack_worker_files() {
	local build=$1 user f
	user=$(stack_worker_user)
	mkdir -p "$STACK_DIR/bin" "$STACK_DIR/run" || return 1
	chmod 755 "$STACK_DIR" "$STACK_DIR/bin"
	cp "$build/chat-fcgi" "$STACK_DIR/bin/.chat-fcgi.new" &&
		chmod 755 "$STACK_DIR/bin/.chat-fcgi.new" &&
		mv -f "$STACK_DIR/bin/.chat-fcgi.new" "$STACK_DIR/bin/chat-fcgi" || return 1
	STACK_WEB=$STACK_SRCDIR/web STACK_OPENAPI=$STACK_SRCDIR/openapi.yaml
	STACK_DOOR=$STACK_SRCDIR/deploy/lighttpd/door.lua
	[ "$(id -u)" -eq 0 ] || return 0
	stack_service_user || return 1
	chown "$user:" "$STACK_DIR/run" && chmod 750 "$STACK_DIR/run"
	rm -rf "$STACK_DIR/web" && cp -R "$STACK_SRCDIR/web" "$STACK_DIR/web" &&
		cp "$STACK_SRCDIR/openapi.yaml" "$STACK_DIR/openapi.yaml" &&
		cp "$STACK_SRCDIR/deploy/lighttpd/door.lua" "$STACK_DIR/door.lua" &&
		chmod -R a+rX "$STACK_DIR/web" "$STACK_DIR/openapi.yaml" "$STACK_DIR/door.lua" || return 1
	STACK_WEB=$STACK_DIR/web STACK_OPENAPI=$STACK_DIR/openapi.yaml STACK_DOOR=$STACK_DIR/door.lua
	if [ -d "$STACK_DIR/secrets" ]; then
		chgrp "$user" "$STACK_DIR/secrets" && chmod 750 "$STACK_DIR/secrets"
		for f in "$STACK_DIR"/secrets/*; do
			[ -f "$f" ] || continue
			case ${f##*/} in
			pg_owner_password) chown root: "$f" && chmod 600 "$f" ;;
			*) chgrp "$user" "$f" && chmod 640 "$f" ;;
			esac
		done
	fi
	runuser -u "$user" -- test -x "$STACK_DIR/bin/chat-fcgi" -a -w "$STACK_DIR/run" \
		-a -r "$STACK_WEB/index.html" -a -r "$STACK_DOOR" ${SECRET_KEY_FILE:+-a -r "$SECRET_KEY_FILE"} \
		${POSTGRES_PASSWORD_FILE:+-a -r "$POSTGRES_PASSWORD_FILE"} \
		${POSTGRES_SSLROOTCERT:+-a -r "$POSTGRES_SSLROOTCERT"} || {
		echo "stack: user $user cannot reach the files under $STACK_DIR (every directory above it must be searchable by all: set TMPDIR)" >&2
		return 1
	}
}

# stack_lighttpd_conf BUILDDIR PORT WORKERS: the top-level template with our
# var.* values; as root, lighttpd switches to the workers' user.
# MAX_BODY_BYTES and STACK_PER_ADDR, when set, become var.chat_max_body and
# var.chat_per_addr.
stack_lighttpd_conf() {
	local build=$1 port=$2 workers=$3 user=""
	stack_worker_files "$build" || return 1
	[ "$(id -u)" -ne 0 ] || user=$STACK_USER
	sed -e "s|^var.chat_port .*|var.chat_port    = $port|" \
		-e "s|^var.chat_workers .*|var.chat_workers = $workers|" \
		-e "s|^var.chat_bin .*|var.chat_bin     = \"$STACK_DIR/bin/chat-fcgi\"|" \
		-e "s|^var.chat_state .*|var.chat_state   = \"$STACK_DIR/run\"|" \
		-e "s|^var.chat_user .*|var.chat_user    = \"$user\"|" \
		-e "s|^var.chat_web .*|var.chat_web     = \"$STACK_WEB\"|" \
		-e "s|^var.chat_openapi .*|var.chat_openapi = \"$STACK_OPENAPI\"|" \
		-e "s|^var.chat_door .*|var.chat_door    = \"$STACK_DOOR\"|" \
		-e "s|^var.chat_max_body .*|var.chat_max_body = ${MAX_BODY_BYTES:-65536}|" \
		-e "s|^var.chat_per_addr .*|var.chat_per_addr = ${STACK_PER_ADDR:-64}|" \
		"$STACK_SRCDIR/lighttpd.conf" >"$STACK_DIR/lighttpd.conf"
	lighttpd -tt -f "$STACK_DIR/lighttpd.conf" >/dev/null
}

# stack_lighttpd_start BUILDDIR PORT WORKERS: lighttpd in the background; the
# workers inherit the current environment (see stack_env).  Its stderr (and
# so the workers' log lines) goes to $STACK_DIR/lighttpd.log.
stack_lighttpd_start() {
	stack_lighttpd_conf "$@" || return 1
	local port=$2
	lighttpd -D -f "$STACK_DIR/lighttpd.conf" 2>>"$STACK_DIR/lighttpd.log" &
	LIGHTTPD_PID=$!
	stack_wait_port "$port" 20 || { cat "$STACK_DIR/lighttpd.log" >&2; return 1; }
}

# Stop lighttpd, then wait (up to 5 s) for its workers to leave: they do
# by themselves (lighttpd sends them SIGTERM as it exits, and an orphaned
# worker leaves on its own); whatever is left after that is killed and
# named on stderr, so that one test's workers never outlive it.
stack_lighttpd_stop() {
	if [ -n "${LIGHTTPD_PID:-}" ]; then
		kill "$LIGHTTPD_PID" 2>/dev/null || true
		wait "$LIGHTTPD_PID" 2>/dev/null || true
		LIGHTTPD_PID=
	fi
	stack_workers_gone
}

# Wait up to 5 s for every process of this stack's chat-fcgi to end; kill
# and name what is left.
stack_workers_gone() {
	local left
	for _ in $(seq 1 50); do
		left=$(stack_chat_pids)
		[ -z "$left" ] && return 0
		sleep 0.1
	done
	echo "stack: chat-fcgi still running 5 s after lighttpd stopped, killed: $left" >&2
	# shellcheck disable=SC2086
	kill -9 $left 2>/dev/null || true
}

# Worker pids under the running lighttpd.
stack_worker_pids() {
	pgrep -P "$LIGHTTPD_PID" -f chat-fcgi || true
}

# Every process running this stack's copy of chat-fcgi, whoever its parent
# (orphans included): by /proc/PID/exe, not by name.
stack_chat_pids() {
	local exe=$STACK_DIR/bin/chat-fcgi
	# find fails on processes that end while it looks: not an error here.
	{ find /proc -mindepth 2 -maxdepth 2 -name exe \( -lname "$exe" -o -lname "$exe (deleted)" \) \
		2>/dev/null || true; } | cut -d/ -f3
}
