#!/usr/bin/env bash
# Install the Debian packages chat-fcgi needs; installs only what is missing.
# Works as root or as a user with sudo.
#
#   scripts/install-deps.sh --run   building and running (scripts/dev.sh)
#   scripts/install-deps.sh         that plus the test and benchmark
#                                   toolchain (scripts/test.sh, CI)
#
# No system service is left enabled at boot: apt enables the services of
# the packages it installs (lighttpd and apache2 would take port 80 on the
# next boot, PostgreSQL 5432), and we run our own instances on our own
# ports, so whatever this run newly enabled is disabled again.
set -euo pipefail

# Building (configure wants Check too: make check is part of the build) and
# running: lighttpd with mod_magnet (deploy/lighttpd/door.lua), PostgreSQL,
# openssl for the dev certificates, curl and jq for trying the API.
RUN_PACKAGES=(
	build-essential autoconf automake libtool pkg-config
	libfcgi-dev libpq-dev libjson-c-dev libscrypt-dev check libssl-dev libseccomp-dev
	lighttpd lighttpd-modules-lua postgresql postgresql-contrib openssl curl jq ca-certificates
)
# The tests: Apache + mod_fcgid (the second template), formatting, static
# analysis, valgrind, the benchmarks, the sanitizer and fuzz builds, the
# metrics scrape test and the browser tests.
TEST_PACKAGES=(
	apache2 libapache2-mod-fcgid libapache2-mod-qos
	clang-format cppcheck valgrind wrk mandoc haproxy iproute2
	debhelper dh-autoreconf lintian debootstrap
	clang libclang-rt-14-dev llvm
	prometheus
	chromium
)

case "${1:-}" in
--run) PACKAGES=("${RUN_PACKAGES[@]}") ;;
"")
	PACKAGES=("${RUN_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
	# Node.js runs the OpenAPI checks and drives chromium in the browser
	# tests (tests/web/).  Any Node.js 18 or later does; Debian's when there
	# is none.
	command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
	;;
*)
	echo "usage: scripts/install-deps.sh [--run]" >&2
	exit 64
	;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

# Services enabled at boot, by name: systemd's wants links and the SysV
# start links (Debian's postinst scripts make both).
enabled_services() {
	{
		find /etc/systemd/system -path '*.wants/*.service' -printf '%f\n' 2>/dev/null |
			sed 's/\.service$//'
		find /etc/rc2.d /etc/rc3.d /etc/rc4.d /etc/rc5.d -name 'S*' -printf '%f\n' 2>/dev/null |
			sed 's/^S[0-9]*//'
	} | sort -u
}

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing: ${missing[*]}" >&2
enabled_before=$(enabled_services)
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# policy-rc.d keeps the packaged PostgreSQL, lighttpd and Apache services from
# starting: we run our own instances on our own ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
	trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
# policy-rc.d only stops them starting now; the postinst scripts still
# enabled them for the next boot.  Undo that for what this run enabled.
for s in $(comm -13 <(echo "$enabled_before") <(enabled_services)); do
	echo "disabling the system service $s (enabled at boot by its package)" >&2
	if [ -e "/etc/init.d/$s" ]; then
		$SUDO update-rc.d "$s" disable >/dev/null 2>&1 || true # also systemd's links
	fi
	if command -v systemctl >/dev/null 2>&1; then
		$SUDO systemctl disable --quiet "$s.service" 2>/dev/null || true
	fi
done
# libapache2-mod-qos enables itself in the system's /etc/apache2, where on
# Debian 12 it cannot even load (it wants PCRE1, Apache links PCRE2): the
# system Apache would refuse to start.  Our template loads it itself
# (deploy/apache/chat-fcgi.conf), so undo the package's enabling.
if [[ " ${missing[*]} " == *" libapache2-mod-qos "* ]] && [ -e /etc/apache2/mods-enabled/qos.load ]; then
	$SUDO a2dismod -q qos >/dev/null || true
fi
