#!/usr/bin/env bash
# Regenerate data/common-passwords.txt from John the Ripper's password.lst
# (Debian package john-data), the list chat-fcgi refuses as passwords.
# Only entries of 8 bytes or more are kept (a shorter password already fails
# the length rule), lower-cased (the check is case-insensitive), sorted and
# without duplicates.  Needs apt (it downloads the .deb, installs nothing).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q john-data >/dev/null)
dpkg-deb -x "$tmp"/john-data_*.deb "$tmp/x"
version=$(dpkg-deb -f "$tmp"/john-data_*.deb Version)
lst=$tmp/x/usr/share/john/password.lst
out=$top/data/common-passwords.txt
{
	echo "#! Common passwords that chat-fcgi refuses at registration and password change."
	echo "#! Source: John the Ripper's password.lst, Debian package john-data $version"
	echo "#! (/usr/share/john/password.lst).  Its own header says:"
	grep '^#!comment: ' "$lst" | sed -n '1,2s/^#!comment: /#!   /p'
	echo "#! Kept: entries of 8 bytes or more, lower-cased, sorted (C locale), unique."
	echo "#! Made by scripts/update-common-passwords.sh; one entry per line after"
	echo "#! these #! lines (no entry starts with #!)."
	grep -v '^#!' "$lst" | awk 'length($0) >= 8' | tr 'A-Z' 'a-z' | LC_ALL=C sort -u
} >"$out"
echo "$out: $(grep -vc '^#!' "$out") entries" >&2
