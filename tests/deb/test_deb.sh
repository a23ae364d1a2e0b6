#!/usr/bin/env bash
# The Debian package on a clean system (issue 14): builds chat-fcgi's .deb,
# lints it, makes a fresh Debian 12 root with debootstrap, installs the
# package there with apt, sets it up as README ("Installing the Debian
# package") tells an administrator to, runs the service as its systemd unit
# would, drives register -> login -> conversation -> message over HTTP from
# the host, then purges the package and checks that what it added is gone.
#
# Not part of `make check`: it needs root and the Debian archive over the
# network (CHAT_DEB_MIRROR, default http://deb.debian.org/debian).  Run by
# scripts/test.sh after distcheck, or `make check-deb` in a build tree
# (which hands it the `make dist` tarball: the tarball must build the
# package).  Otherwise it builds from a copy of the source tree
# (CHAT_DEB_SRC, default this tree's files as git lists them).
#
# Everything runs in a private mount namespace (unshare --mount): the
# chroot's /proc, /run and /dev/shm mounts vanish with it, whatever
# happens.  PostgreSQL (TLS) runs on the host, as in the end-to-end tests;
# the root shares the host's network.  E2E_KEEP=1 keeps the root and logs.
# CHAT_DEB_CACHE=DIR keeps debootstrap's downloaded packages there between
# runs (the root is made afresh each time either way).
set -uo pipefail

if [ "${CHAT_DEB_IN_NS:-}" != 1 ]; then
	[ "$(id -u)" -eq 0 ] || { echo "Bail out! needs root (debootstrap, chroot, mounts)"; exit 99; }
	command -v unshare >/dev/null || { echo "Bail out! unshare is missing (util-linux)"; exit 99; }
	CHAT_DEB_IN_NS=1 exec unshare --mount --propagation private --fork -- bash "$0" "$@"
fi

# shellcheck source=../e2e/lib.sh
. "$(cd "$(dirname "$0")/.." && pwd)/e2e/lib.sh"
# lib.sh's check, without the last HTTP answer when no request was made
# since (most checks here are about files).
check() {
	local desc=$1
	shift
	if "$@"; then
		pass "$desc"
	elif [ -n "$STATUS" ]; then
		fail "$desc" "status=$STATUS body=${BODY:0:300}"
	else
		fail "$desc"
	fi
}

for tool in dpkg-buildpackage dh lintian debootstrap curl jq openssl chroot; do
	command -v "$tool" >/dev/null || { echo "Bail out! $tool is missing (scripts/install-deps.sh)"; exit 99; }
done

MIRROR=${CHAT_DEB_MIRROR:-http://deb.debian.org/debian}
ROOT=$STACK_DIR/root
WORK=$STACK_DIR/build
UNIT=/lib/systemd/system/chat-fcgi.service
CRED=/run/credentials/chat-fcgi.service
LIGHTTPD_PID=
T0=$SECONDS
timing() { echo "# time: $1 $((SECONDS - T0)) s"; T0=$SECONDS; }

# Every process whose root is our chroot: lighttpd, workers, anything an
# apt maintainer script might have left.
root_pids() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && echo "${p#/proc/}"
	done
}

deb_cleanup() {
	local left
	if [ -n "$LIGHTTPD_PID" ]; then
		kill -INT "$LIGHTTPD_PID" 2>/dev/null
		wait "$LIGHTTPD_PID" 2>/dev/null
		LIGHTTPD_PID=
	fi
	left=$(root_pids)
	if [ -n "$left" ]; then
		echo "# still running in the root, killed: $left" >&2
		# shellcheck disable=SC2086
		kill -9 $left 2>/dev/null
		sleep 0.2
	fi
	# The mounts would vanish with the namespace anyway; unmounted here so
	# that removing the root can never reach into /proc or a tmpfs.
	local m
	for m in dev/shm run proc; do
		mountpoint -q "$ROOT/$m" 2>/dev/null && umount -l "$ROOT/$m"
	done
	# The root and the build (about 500 MB) stay only on demand; lib.sh
	# keeps the logs of a failed run.
	[ -n "${E2E_KEEP:-}" ] || rm -rf --one-file-system "$ROOT" "$WORK"
}
trap 'deb_cleanup; e2e_cleanup' EXIT

# inroot CMD...: a command in the root, with a clean environment.
inroot() {
	chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# ---------------------------------------------------------------- build
mkdir -p "$WORK"
if [ -n "${CHAT_DEB_TARBALL:-}" ]; then
	tar -C "$WORK" -xzf "$CHAT_DEB_TARBALL" || { echo "Bail out! cannot unpack $CHAT_DEB_TARBALL"; exit 99; }
	SRC=$(echo "$WORK"/chat-fcgi-*/)
	SRC=${SRC%/}
else
	from=${CHAT_DEB_SRC:-$E2E_SRCDIR}
	SRC=$WORK/chat-fcgi
	mkdir -p "$SRC"
	if git -C "$from" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		# What git knows of (committed or not), without build products.
		(cd "$from" && git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$SRC")
	else
		tar -C "$from" --exclude=./_build --exclude=./.git --exclude=node_modules -cf - . | tar -C "$SRC" -xf -
	fi
fi
[ -f "$SRC/debian/control" ] || { echo "Bail out! no debian/ in $SRC"; exit 99; }
(cd "$SRC" && DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
	dpkg-buildpackage -us -uc -b) >"$STACK_DIR/build.log" 2>&1
check "dpkg-buildpackage -us -uc -b builds the package" test "$?" = 0
DEB=$(ls "$WORK"/chat-fcgi_*_*.deb 2>/dev/null | head -n 1)
CHANGES=$(ls "$WORK"/chat-fcgi_*_*.changes 2>/dev/null | head -n 1)
[ -f "$DEB" ] || { tail -n 40 "$STACK_DIR/build.log"; echo "Bail out! no .deb built"; exit 1; }
timing build

# The version is configure's, the first AC_INIT argument after the name.
ac_version=$(sed -n 's/^AC_INIT(\[chat-fcgi\], *\[\([^]]*\)\].*/\1/p' "$SRC/configure.ac")
check "the package's version is configure.ac's ($ac_version)" \
	test "$(dpkg-deb -f "$DEB" Version)" = "$ac_version"

# No error, no warning (overrides, if any, are justified in debian/).
lintian --allow-root --fail-on error,warning "$CHANGES" >"$STACK_DIR/lintian.log" 2>&1
check "lintian: no error and no warning on the .changes and .deb" test "$?" = 0
grep -E '^[EW]:' "$STACK_DIR/lintian.log" | head -n 20 | sed 's/^/#   /'

# The package ships no secret: no key, no password, no private key.
dpkg-deb -c "$DEB" | awk '{print $6}' >"$STACK_DIR/contents"
check "no secret file in the package" \
	bash -c '! grep -E "secret_key|password$|\.key$|\.pem$" "$0"' "$STACK_DIR/contents"
timing lintian

# ---------------------------------------------------------------- a clean root
debootstrap --variant=minbase ${CHAT_DEB_CACHE:+--cache-dir="$CHAT_DEB_CACHE"} \
	bookworm "$ROOT" "$MIRROR" >"$STACK_DIR/debootstrap.log" 2>&1 ||
	{ tail -n 20 "$STACK_DIR/debootstrap.log"; echo "Bail out! debootstrap failed"; exit 99; }
timing debootstrap
mount -t proc proc "$ROOT/proc"
mount -t tmpfs -o mode=0755 tmpfs "$ROOT/run"
mount -t tmpfs -o mode=1777 tmpfs "$ROOT/dev/shm"
# A booted system has these; a debootstrapped root lacks /etc/hosts.
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' >"$ROOT/etc/hosts"
# No service may start in the root (it shares the host's network):
# lighttpd's own package would start lighttpd.service on port 80.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

# The package's Depends, resolved by apt (no Recommends: Depends alone
# must be enough), then a snapshot of the root: after the purge, the root
# must be back to it.
cp "$DEB" "$ROOT/tmp/"
debname=/tmp/${DEB##*/}
inroot apt-get satisfy -y -q --no-install-recommends "$(dpkg-deb -f "$DEB" Depends)" \
	>"$STACK_DIR/apt.log" 2>&1 ||
	{ tail -n 20 "$STACK_DIR/apt.log"; echo "Bail out! apt cannot install the package's Depends"; exit 1; }
snapshot() {
	(cd "$ROOT" && find . -xdev \( -path ./proc -o -path ./tmp -o -path ./var/log -o -path ./var/cache \
		-o -path ./var/lib/apt -o -path ./var/lib/dpkg \) -prune -o -print | LC_ALL=C sort)
}
snapshot >"$STACK_DIR/before"
cp "$ROOT/etc/passwd" "$STACK_DIR/passwd.before"
npkg_before=$(inroot dpkg-query -W -f '${Package}\n' | wc -l)
inroot apt-get install -y -q --no-install-recommends "$debname" >>"$STACK_DIR/apt.log" 2>&1
check "apt installs the .deb in a fresh Debian 12 root" test "$?" = 0
check "the install added one package, chat-fcgi" \
	test "$(inroot dpkg-query -W -f '${Package}\n' | wc -l)" = $((npkg_before + 1))
timing "apt (Depends, then the .deb)"

# What the package installed and created.
inroot dpkg -L chat-fcgi >"$STACK_DIR/dpkg-L"
for f in /usr/bin/chat-fcgi /usr/bin/chat-admin /usr/share/chat-fcgi/sql/001_init.sql \
	/usr/share/man/man8/chat-fcgi.8.gz /usr/share/man/man8/chat-admin.8.gz \
	/etc/chat-fcgi/lighttpd.conf /usr/share/chat-fcgi/door.lua /usr/share/chat-fcgi/web/index.html \
	/usr/share/chat-fcgi/apache/chat-fcgi.conf /usr/share/chat-fcgi/grant-worker-role.sql \
	$UNIT /lib/systemd/system/chat-fcgi-spawn.service; do
	check "installed: $f" test -f "$ROOT$f"
done
check "the binaries run: chat-admin with no command prints its usage" \
	bash -c 'chroot "$0" /usr/bin/chat-admin 2>&1 | grep -q check-config' "$ROOT"
check "no path of the package or its templates names /usr/local" \
	bash -c '! grep -rl /usr/local "$0/etc/chat-fcgi" "$0/lib/systemd/system/"chat-fcgi* "$0/usr/share/chat-fcgi/apache" "$0/usr/share/chat-fcgi/nginx"' "$ROOT"
pw=$(inroot getent passwd chat-fcgi)
gid=$(inroot getent group chat-fcgi | cut -d: -f3)
check "system user chat-fcgi: no home, no login shell" \
	bash -c '[[ $0 == *:/nonexistent:/usr/sbin/nologin ]] && [ "$(echo "$0" | cut -d: -f3)" -lt 1000 ]' "$pw"
check "/etc/chat-fcgi is root:chat-fcgi 0750, the settings file 0640" \
	test "$(stat -c '%u:%g %a' "$ROOT/etc/chat-fcgi" "$ROOT/etc/chat-fcgi/chat-fcgi.env" | tr '\n' ' ')" = \
	"0:$gid 750 0:$gid 640 "
check "nothing enabled: no unit linked in /etc/systemd/system" \
	bash -c '! find "$0/etc/systemd/system" -name "chat-fcgi*" | grep -q .' "$ROOT"
check "nothing started: no process in the root" test -z "$(root_pids)"

# ---------------------------------------------------------------- set up as README says
stack_pg_init >/dev/null || { echo "Bail out! PostgreSQL did not start"; exit 99; }
HTTP_PORT=$(stack_free_port)
BASE=http://127.0.0.1:$HTTP_PORT
etc=$ROOT/etc/chat-fcgi
sed -i -e 's|^#\?POSTGRES_HOST=.*|POSTGRES_HOST=localhost|' -e "s|^#\\?POSTGRES_PORT=.*|POSTGRES_PORT=$PG_PORT|" \
	-e 's|^#\?POSTGRES_USER=.*|POSTGRES_USER=chat_app|' -e 's|^#\?POSTGRES_DB=.*|POSTGRES_DB=chat|' "$etc/chat-fcgi.env"
sed -i "s|^var.chat_port .*|var.chat_port    = $HTTP_PORT|" "$etc/lighttpd.conf"
install -m 0640 -g "$(stat -c %g "$etc")" "$STACK_DIR/pg/ca.crt" "$etc/postgres-ca.crt"

# The environment chat-fcgi.service gives lighttpd and its workers, read
# from the installed unit: EnvironmentFile=, Environment= (%d: the
# credentials directory), with the LoadCredential= files copied there,
# readable by the service's user only, as systemd does.
unit_env() {
	local line name path
	UNIT_ENV=(PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
	while IFS= read -r line; do
		case $line in "" | "#"*) continue ;; esac
		UNIT_ENV+=("$line")
	done <"$ROOT$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$ROOT$UNIT")"
	while IFS= read -r line; do
		UNIT_ENV+=("${line//%d/$CRED}")
	done < <(sed -n 's/^Environment=//p' "$ROOT$UNIT")
	rm -rf "${ROOT:?}$CRED" && install -d -m 0500 -o "$UID_SVC" "$ROOT$CRED" || return 1
	while IFS=: read -r name path; do
		install -m 0400 -o "$UID_SVC" "$ROOT$path" "$ROOT$CRED/$name" || return 1
	done < <(sed -n 's/^LoadCredential=//p' "$ROOT$UNIT")
}
# Names resolved in the root (the host may have a chat-fcgi of its own,
# with other ids): numeric ids from here on.
SVC_USER=$(sed -n 's/^User=//p' "$ROOT$UNIT")
SVC_GROUP=$(sed -n 's/^Group=//p' "$ROOT$UNIT")
UID_SVC=$(inroot getent passwd "$SVC_USER" | cut -d: -f3)
GID_SVC=$(inroot getent group "$SVC_GROUP" | cut -d: -f3)
SVC=$UID_SVC:$GID_SVC

# Without secrets the service cannot start: check-config names them.
touch "$etc/secret_key" "$etc/postgres_password" # LoadCredential= needs the files
unit_env
out=$(chroot --userspec="$SVC" "$ROOT" /usr/bin/env -i "${UNIT_ENV[@]}" chat-admin check-config 2>&1)
rc=$?
check "without secrets, check-config fails (exit $rc) and names SECRET_KEY" \
	bash -c '[ "$0" -ne 0 ] && [[ $1 == *SECRET_KEY* ]]' "$rc" "$out"

# The secrets, made in the root as README says (0600 root; openssl is not
# in a minimal system, od is).
inroot sh -c 'umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n" >/etc/chat-fcgi/secret_key'
printf '%s' "$PG_APP_PASSWORD" >"$etc/postgres_password"
printf '%s' "$PG_OWNER_PASSWORD" >"$etc/owner_password"
chmod 600 "$etc/secret_key" "$etc/postgres_password" "$etc/owner_password"
check "the secret key is 64 hex digits, 0600 root" \
	bash -c '[ "$(stat -c "%U %a %s" "$0")" = "root 600 64" ]' "$etc/secret_key"
unit_env
out=$(chroot --userspec="$SVC" "$ROOT" /usr/bin/env -i "${UNIT_ENV[@]}" chat-admin check-config 2>&1)
check "chat-admin check-config passes with the unit's environment, as $SVC_USER" test "$?" = 0
[ "$E2E_FAILED" -eq 0 ] || echo "$out" | head -n 10 | sed 's/^/#   /'

# migrate: the owner role, the migrations from where the package put
# them (chat-admin's default directory), TLS verify-full against the CA.
owner_env=()
for v in "${UNIT_ENV[@]}"; do
	case $v in POSTGRES_USER=* | POSTGRES_PASSWORD_FILE=*) ;; *) owner_env+=("$v") ;; esac
done
inroot "${owner_env[@]}" POSTGRES_USER=chat_owner POSTGRES_PASSWORD_FILE=/etc/chat-fcgi/owner_password \
	chat-admin migrate >"$STACK_DIR/migrate.log" 2>&1
check "chat-admin migrate applies the packaged migrations over TLS" test "$?" = 0
check "the schema has every migration" \
	test "$(stack_psql chat -At -c 'SELECT count(*) FROM chat.schema_migrations')" = \
	"$(ls "$ROOT/usr/share/chat-fcgi/sql/" | grep -c '\.sql$')"
as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$STACK_DIR/pg/sock" -p "$PG_PORT" -U chat_owner -d chat \
	-v worker=chat_app -f - <"$ROOT/usr/share/chat-fcgi/grant-worker-role.sql" >/dev/null
check "the packaged grant-worker-role.sql grants the workers' role" test "$?" = 0
timing "setup, check-config, migrate"

# ---------------------------------------------------------------- the service, as its unit runs it
# RuntimeDirectory=, then ExecStartPre= and ExecStart= as User=/Group=,
# UMask= applied: what systemd would do (there is no systemd in the root).
rdir=$(sed -n 's/^RuntimeDirectory=//p' "$ROOT$UNIT")
rmode=$(sed -n 's/^RuntimeDirectoryMode=//p' "$ROOT$UNIT")
install -d -m "${rmode:-0755}" -o "$UID_SVC" -g "$GID_SVC" "$ROOT/run/$rdir"
umask_svc=$(sed -n 's/^UMask=//p' "$ROOT$UNIT")
nofile=$(sed -n 's/^LimitNOFILE=//p' "$ROOT$UNIT")
read -ra pre < <(sed -n 's/^ExecStartPre=//p' "$ROOT$UNIT")
read -ra start < <(sed -n 's/^ExecStart=//p' "$ROOT$UNIT")
(umask "${umask_svc:-0022}" && ulimit -n "${nofile:-1024}" && chroot --userspec="$SVC" "$ROOT" /usr/bin/env -i \
	"${UNIT_ENV[@]}" "${pre[@]}") >"$STACK_DIR/lighttpd-tt.log" 2>&1
check "ExecStartPre: lighttpd -tt accepts the packaged lighttpd.conf" test "$?" = 0
(umask "${umask_svc:-0022}" && ulimit -n "${nofile:-1024}" && exec chroot --userspec="$SVC" "$ROOT" /usr/bin/env -i \
	"${UNIT_ENV[@]}" "${start[@]}") 2>>"$STACK_DIR/lighttpd.log" &
LIGHTTPD_PID=$!
up=no
for _ in $(seq 1 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ] && { up=yes; break; }
	kill -0 "$LIGHTTPD_PID" 2>/dev/null || break
	sleep 0.1
done
check "lighttpd from the unit's ExecStart answers /healthz" test "$up" = yes
[ "$up" = yes ] || tail -n 20 "$STACK_DIR/lighttpd.log" | sed 's/^/#   /'

req GET /readyz
check "GET /readyz: 200, the workers reach PostgreSQL over TLS" is_json .status ready
workers=$(pgrep -P "$LIGHTTPD_PID" 2>/dev/null | tr '\n' ' ')
check "4 workers, each running as $SVC_USER" \
	bash -c 'n=0; for p in $0; do [ "$(stat -c %u /proc/$p)" = "$1" ] || exit 1; n=$((n + 1)); done; [ "$n" = 4 ]' \
	"$workers" "$UID_SVC"
# shellcheck disable=SC2086
check "every worker confined (seccomp filter, no_new_privs)" test -z "$(confined_as_expected $workers)"

# The flow of README's walkthrough, from the host.
for who in alice bob; do
	json POST /auth/register "{\"email\":\"$who@example.io\",\"password\":\"correct horse $who\"}"
	check "register $who: 201 with the email" bash -c '[ "$0" = 201 ] && [ "$(jq -r .email <<<"$1")" = "$2@example.io" ]' \
		"$STATUS" "$BODY" "$who"
done
json POST /auth/login '{"email":"alice@example.io","password":"correct horse alice"}'
ALICE=$(jq -r '.access_token // empty' <<<"$BODY")
check "login alice: 200 with a bearer token" bash -c '[ "$0" = 200 ] && [ "$(jq -r .token_type <<<"$1")" = bearer ] && [ -n "$2" ]' \
	"$STATUS" "$BODY" "$ALICE"
req POST /auth/login --data-urlencode username=bob@example.io --data-urlencode 'password=correct horse bob'
BOB=$(jq -r '.access_token // empty' <<<"$BODY")
check "login bob (OAuth2 form): 200 with a token" bash -c '[ "$0" = 200 ] && [ -n "$1" ]' "$STATUS" "$BOB"
req GET /auth/me -H "Authorization: Bearer $ALICE"
check "GET /auth/me: alice" is_json .email alice@example.io
json POST /chat/conversations '{"title":"lunch","members":["bob@example.io"]}' -H "Authorization: Bearer $ALICE"
CONV=$(jq -r '.id // empty' <<<"$BODY")
check "create a conversation with bob: 201, two members" \
	bash -c '[ "$0" = 201 ] && [ "$(jq -r ".members | length" <<<"$1")" = 2 ]' "$STATUS" "$BODY"
json POST "/chat/conversations/$CONV/messages" '{"body":"noon at the usual place?"}' \
	-H "Authorization: Bearer $ALICE" -H 'Idempotency-Key: lunch-1'
MSG=$(jq -r '.id // empty' <<<"$BODY")
check "post a message: 201 with its body" \
	bash -c '[ "$0" = 201 ] && [ "$(jq -r .body <<<"$1")" = "noon at the usual place?" ]' "$STATUS" "$BODY"
req GET "/chat/conversations/$CONV/messages?after=0" -H "Authorization: Bearer $BOB"
check "bob reads it: 200, one message, alice's, the same id and body" \
	bash -c '[ "$0" = 200 ] && [ "$(jq -c "[.items[] | [.id, .body]]" <<<"$1")" = "[[$2,\"noon at the usual place?\"]]" ]' \
	"$STATUS" "$BODY" "$MSG"
# The static files (not API answers: curl, not req) from the package's paths.
for f in /index.html /openapi.yaml /assets/app.js; do
	curl -s -o "$STACK_DIR/static" "$BASE$f"
	src=/usr/share/chat-fcgi/web$f
	[ "$f" = /openapi.yaml ] && src=/usr/share/chat-fcgi/openapi.yaml
	check "GET $f is the packaged $src" cmp -s "$STACK_DIR/static" "$ROOT$src"
done
req BREW /healthz
check "the door (door.lua, mod_magnet) answers an unknown method: 501 envelope" is_error 501 not_implemented
check "the rate-limit segment exists, the service user's" \
	test "$(stat -c '%u %a' "$ROOT/dev/shm/chat-fcgi" 2>/dev/null)" = "$UID_SVC 600"
timing "service and HTTP flow"
STATUS= BODY=

# ---------------------------------------------------------------- stop, purge
kill -INT "$LIGHTTPD_PID" # the unit's KillSignal=
for _ in $(seq 1 50); do [ -z "$(root_pids)" ] && break; sleep 0.1; done
wait "$LIGHTTPD_PID" 2>/dev/null
LIGHTTPD_PID=
check "SIGINT stops lighttpd and every worker" test -z "$(root_pids)"
# systemd removes the credentials at stop (RuntimeDirectory= too, but the
# purge must also clean up after a lighttpd started by hand: kept).
rm -rf "${ROOT:?}$CRED"

inroot apt-get purge -y -q chat-fcgi >>"$STACK_DIR/apt.log" 2>&1
check "apt purge chat-fcgi" test "$?" = 0
check "dpkg knows nothing of chat-fcgi any more" \
	bash -c '! chroot "$0" dpkg-query -W -f "\${db:Status-Status}" chat-fcgi 2>/dev/null | grep -qv not-installed' "$ROOT"
snapshot >"$STACK_DIR/after"
# The shadow tools keep a backup of each file they change (passwd-, ...):
# the user is kept (below), so those are expected.
LC_ALL=C comm -3 "$STACK_DIR/before" "$STACK_DIR/after" |
	grep -vE '^\s*\./etc/(passwd|group|shadow|gshadow)-$' >"$STACK_DIR/diff"
check "the root is as before the install: nothing added or removed" test ! -s "$STACK_DIR/diff"
sed 's/^/#   /' "$STACK_DIR/diff" | head -n 20
check "gone: every file the package shipped" \
	bash -c 'while read -r f; do [ -d "$0$f" ] && continue; [ -e "$0$f" ] && { echo "$f"; exit 1; }; done <"$1"; true' \
	"$ROOT" "$STACK_DIR/dpkg-L"
check "gone: /etc/chat-fcgi with the secrets, /run/chat-fcgi, the segment" \
	bash -c '! [ -e "$0/etc/chat-fcgi" ] && ! [ -e "$0/run/chat-fcgi" ] && ! [ -e "$0/dev/shm/chat-fcgi" ]' "$ROOT"
check "gone: the package's dpkg-statoverride entries" \
	bash -c '! chroot "$0" dpkg-statoverride --list | grep -q chat-fcgi' "$ROOT"
check "no file left anywhere owned by the user or named chat-fcgi" \
	bash -c '! find "$0" \( -path "$0/proc" -o -path "$0/tmp" \) -prune -o \( -uid "$1" -o -name "*chat-fcgi*" \) -print | grep -q .' \
	"$ROOT" "$UID_SVC"
# Policy (debian/chat-fcgi.postrm): the user stays, locked by expiry, so
# its uid is never handed to another account while files of it may exist.
check "the user chat-fcgi is kept, with the same uid, and expired (locked)" \
	bash -c '[ "$(chroot "$0" getent passwd chat-fcgi | cut -d: -f3)" = "$1" ] &&
		[ "$(chroot "$0" getent shadow chat-fcgi | cut -d: -f8)" = 1 ]' "$ROOT" "$UID_SVC"
check "/etc/passwd changed by that one line only" \
	bash -c '[ "$(diff "$0" "$1/etc/passwd" | grep -c "^[<>]")" = 1 ] && diff "$0" "$1/etc/passwd" | grep -q "^> chat-fcgi:"' \
	"$STACK_DIR/passwd.before" "$ROOT"

# A reinstall takes the user back, unlocked; a second purge is as clean.
inroot apt-get install -y -q --no-install-recommends "$debname" >>"$STACK_DIR/apt.log" 2>&1
check "reinstalled: the same user, unlocked" \
	bash -c '[ "$(chroot "$0" getent passwd chat-fcgi | cut -d: -f3)" = "$1" ] &&
		[ -z "$(chroot "$0" getent shadow chat-fcgi | cut -d: -f8)" ]' "$ROOT" "$UID_SVC"
inroot apt-get purge -y -q chat-fcgi >>"$STACK_DIR/apt.log" 2>&1
snapshot >"$STACK_DIR/after2"
check "purged again: the root as before" cmp -s "$STACK_DIR/after" "$STACK_DIR/after2"
check "nothing left running in the root" test -z "$(root_pids)"
timing "stop and purge"

e2e_finish
