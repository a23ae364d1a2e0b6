#!/usr/bin/env bash
# Install the Debian packages chat-fcgi needs to build, test and run.
# Works as root or as a user with sudo; installs only what is missing.
set -euo pipefail

PACKAGES=(
	build-essential autoconf automake libtool pkg-config
	libfcgi-dev libpq-dev libjson-c-dev libscrypt-dev check libssl-dev libseccomp-dev
	lighttpd lighttpd-modules-lua postgresql postgresql-contrib openssl curl jq ca-certificates
	apache2 libapache2-mod-fcgid libapache2-mod-qos
	clang-format cppcheck valgrind wrk mandoc haproxy
	clang libclang-rt-14-dev llvm
	prometheus
	chromium
)
# Node.js runs the OpenAPI checks and drives chromium in the browser tests
# (tests/web/).  Any Node.js 18 or later does; Debian's when there is none.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing: ${missing[*]}" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# policy-rc.d keeps the packaged PostgreSQL, lighttpd and Apache services from
# starting: we run our own instances on our own ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
	trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
# libapache2-mod-qos enables itself in the system's /etc/apache2, where on
# Debian 12 it cannot even load (it wants PCRE1, Apache links PCRE2): the
# system Apache would refuse to start.  Our template loads it itself
# (deploy/apache/chat-fcgi.conf), so undo the package's enabling.
if [[ " ${missing[*]} " == *" libapache2-mod-qos "* ]] && [ -e /etc/apache2/mods-enabled/qos.load ]; then
	$SUDO a2dismod -q qos >/dev/null || true
fi
