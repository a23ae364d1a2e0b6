#!/usr/bin/env bash
# Refresh the vendored Swagger UI under web/docs/swagger-ui/ from the npm
# registry, at the version and integrity pinned below (never "latest").
# The files are committed, so the docs page needs nothing at build or run
# time and loads nothing from elsewhere.  To upgrade: change both pins,
# run this, look at the diff, run the tests (tests/e2e/test_web.sh).
set -euo pipefail
VERSION=5.35.0
INTEGRITY=sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==

top=$(cd "$(dirname "$0")/.." && pwd)
dest=$top/web/docs/swagger-ui
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
got=$(npm pack "swagger-ui-dist@$VERSION" --json 2>/dev/null | jq -r '.[0].integrity')
[ "$got" = "$INTEGRITY" ] || { echo "integrity mismatch: $got" >&2; exit 1; }
tar xzf "swagger-ui-dist-$VERSION.tgz"
rm -rf "$dest"
mkdir -p "$dest"
# The bundle (React and every dependency inside), its stylesheet, and the
# licences: Apache-2.0 for Swagger UI, the bundled packages' notices.
for f in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE; do
	cp "package/$f" "$dest/$f"
done
printf 'swagger-ui-dist %s\nnpm integrity %s\nfetched by scripts/vendor-swagger-ui.sh\n' \
	"$VERSION" "$INTEGRITY" >"$dest/VERSION"
echo "web/docs/swagger-ui: swagger-ui-dist $VERSION"
