#!/usr/bin/env bash
# The unit and integration suites again on Node 22, the oldest line package.json's
# `engines` allows (npm scripts run on the project's Node 24). Installs the `node`
# npm package of major 22 into .cache/node22 (the package fetches the Node binary
# from the npm registry) and runs vitest on it: the same vitest.config.ts, so the
# tests load isotrace from sdk/src there too, and every `node` they start is 22.
# Run it after `npm test`, which has set up the Redis, Python and Jaeger the
# integration tests use. Arguments, when given, replace the two suites (e.g. one test file).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=.cache/node22
node22="$prefix/node_modules/.bin/node"
if ! "$node22" --version 2>/dev/null | grep -q '^v22\.'; then
  rm -rf "$prefix" && mkdir -p "$prefix"
  # The package's install script fetches the binary: allowed by name, as package.json does for Node 24.
  echo '{ "private": true, "allowScripts": { "node": true } }' >"$prefix/package.json"
  npm install --prefix "$prefix" --no-audit --no-fund node@22
fi
# package.json's engines is ">=22.N": refuse to report a pass from a Node it does not allow.
engines="$("$node22" -p "require('./package.json').engines.node")"
if ! [[ $engines =~ ^\>=22\.([0-9]+)$ ]]; then
  echo "test-node22: engines.node is '$engines'; this script knows only '>=22.N'" >&2
  exit 1
fi
floor="${BASH_REMATCH[1]}"
version="$("$node22" --version)"
if ! [[ $version =~ ^v22\.([0-9]+)\. ]] || ((BASH_REMATCH[1] < floor)); then
  echo "test-node22: $node22 is Node '$version', not 22.$floor or newer of line 22" >&2
  exit 1
fi
echo "test-node22: ${*:-the unit and integration suites} on Node $version"
(($# > 0)) || set -- test/unit test/integration
PATH="$PWD/$prefix/node_modules/.bin:$PATH" exec "$node22" node_modules/vitest/vitest.mjs run "$@"
