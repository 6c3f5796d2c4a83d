#!/usr/bin/env bash
# Installs the two test emulators into <repo>/.emulators (git-ignored):
#   azurite@3.35.0                 Azure Blob Storage
#   @vercel/cosmosdb-server@1.0.1  Cosmos DB NoSQL API (patched at run time by cosmos-launcher.js)
# Idempotent: does nothing when both are already installed at those versions.
# Needs node >= 20 and npm, and the npm registry.  Never reads stdin.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX="${EMULATORS_PREFIX:-$ROOT/.emulators}"
AZURITE_VERSION="3.35.0"
COSMOS_VERSION="1.0.1"

die() { echo "install.sh: ERROR: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node is not installed (Node.js >= 20 is required for the emulators)"
command -v npm >/dev/null 2>&1 || die "npm is not installed (needed to install the emulators)"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 20 ] || die "Node.js >= 20 required, found $(node --version)"

installed_version() {  # $1 = package name
  local pj="$PREFIX/node_modules/$1/package.json"
  [ -f "$pj" ] || { echo ""; return; }
  node -p "require(process.argv[1]).version" "$pj" 2>/dev/null || echo ""
}

is_installed() {
  [ "$(installed_version azurite)" = "$AZURITE_VERSION" ] &&
    [ "$(installed_version @vercel/cosmosdb-server)" = "$COSMOS_VERSION" ] &&
    [ -x "$PREFIX/node_modules/.bin/azurite-blob" ]
}

if is_installed; then
  echo "install.sh: azurite@$AZURITE_VERSION and @vercel/cosmosdb-server@$COSMOS_VERSION already installed in $PREFIX" >&2
  exit 0
fi

mkdir -p "$PREFIX"
# Serialise concurrent installs (two test processes starting at once).
exec 9>"$PREFIX/.install.lock"
if command -v flock >/dev/null 2>&1; then
  flock -w 600 9 || die "timed out waiting for another install to finish"
  if is_installed; then
    echo "install.sh: installed by a concurrent run" >&2
    exit 0
  fi
fi

echo "install.sh: installing azurite@$AZURITE_VERSION @vercel/cosmosdb-server@$COSMOS_VERSION into $PREFIX (about 30 s)" >&2
attempt=1
until npm install --prefix "$PREFIX" --no-audit --no-fund --save-exact --no-progress --loglevel=error \
      "azurite@$AZURITE_VERSION" "@vercel/cosmosdb-server@$COSMOS_VERSION" </dev/null >&2; do
  [ "$attempt" -ge 3 ] && die "npm install failed $attempt times"
  echo "install.sh: npm install failed (attempt $attempt), retrying in 5 s" >&2
  attempt=$((attempt + 1))
  sleep 5
done

is_installed || die "npm install finished but the expected versions are not in $PREFIX/node_modules"
echo "install.sh: done" >&2
