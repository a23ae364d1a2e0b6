#!/usr/bin/env bash
# The man pages: mandoc -Tlint clean, and complete against the code: every
# variable src/config.c reads is in chat-fcgi(8) (with its _FILE form for a
# secret), every chat-admin command of src/admin.c is in chat-admin(8).
# Needs mandoc only: no PostgreSQL, no web server.
set -uo pipefail

src=${CHAT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
fcgi_page=$src/docs/man/chat-fcgi.8
admin_page=$src/docs/man/chat-admin.8
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "not ok - $1"; [ -n "${2:-}" ] && echo "#   $2"; return 0; }

command -v mandoc >/dev/null || { echo "Bail out! mandoc is not installed (scripts/install-deps.sh)"; exit 99; }

for page in "$fcgi_page" "$admin_page"; do
	out=$(mandoc -Tlint -W warning "$page" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
		pass "mandoc -Tlint -W warning ${page##*/}"
	else
		fail "mandoc -Tlint -W warning ${page##*/}" "status $rc: ${out//$'\n'/ | }"
	fi
done

# The variables: every loader call in config.c names its variable as its
# second argument (util_env_get(ld->envp, "X"), load_int(&ld, "X", ...)).
vars=$(grep -oE '(util_env_get|load_int|load_rate|load_secret|load_nonempty|load_cidrs)\((&?ld|ld->envp), "[A-Z_]+"' \
	"$src/src/config.c" | sed -E 's/.*"([A-Z_]+)"$/\1/' | sort -u)
secrets=$(grep -oE 'load_secret\(&?ld, "[A-Z_]+"' "$src/src/config.c" | sed -E 's/.*"([A-Z_]+)"$/\1/' | sort -u)
# A broken extraction (config.c rewritten) must not pass as "nothing missing".
if [ "$(printf '%s\n' "$vars" | grep -c .)" -ge 20 ] && [ "$(printf '%s\n' "$secrets" | grep -c .)" -ge 4 ]; then
	pass "config.c names $(printf '%s\n' "$vars" | grep -c .) variables, $(printf '%s\n' "$secrets" | grep -c .) secrets"
else
	fail "extracting the variables of src/config.c" "got: $(echo $vars)"
fi
for s in $secrets; do vars+=$'\n'"${s}_FILE"; done
for v in $vars; do
	# Documented as an entry of the ENVIRONMENT list: ".It Ev NAME".
	if grep -qE "^\.It (.*[ ,])?Ev $v( |,|$)" "$fcgi_page"; then
		pass "chat-fcgi.8 documents $v"
	else
		fail "chat-fcgi.8 documents $v" "no '.It Ev $v' entry"
	fi
done

# The commands: main() and cmd_ratelimit() of admin.c compare argv with
# string literals.
cmds=$(grep -oE 'strcmp\(argv\[[0-9]\], "[a-z-]+"\)' "$src/src/admin.c" | sed -E 's/.*"([a-z-]+)"\)$/\1/' | sort -u)
if [ "$(printf '%s\n' "$cmds" | grep -c .)" -ge 5 ]; then
	pass "admin.c has $(printf '%s\n' "$cmds" | grep -c .) command words"
else
	fail "extracting the commands of src/admin.c" "got: $(echo $cmds)"
fi
for c in $cmds; do
	if [[ $c == -* ]]; then
		# An option (--help, --version): ".Fl -help" in the page.
		if grep -qE "^\.(It )?Fl ${c#-}( |$)" "$admin_page"; then
			pass "chat-admin.8 documents $c"
		else
			fail "chat-admin.8 documents $c" "no '.Fl ${c#-}'"
		fi
		continue
	fi
	if grep -qE "^\.It Cm (ratelimit )?$c( |$)" "$admin_page" && grep -qE "^\.Cm (ratelimit )?$c( |$)" "$admin_page"; then
		pass "chat-admin.8 documents $c (synopsis and list)"
	else
		fail "chat-admin.8 documents $c (synopsis and list)"
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
