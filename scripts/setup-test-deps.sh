#!/usr/bin/env bash
# Everything the test suite needs beyond npm packages, installed or built once
# and cached under .cache/: Debian's redis-server, the OpenTelemetry Python SDK
# (a venv, for the interop peer) and a Jaeger v2 binary built from its Go module.
# Runs before `vitest` in `npm test`. With CI=true any failure fails the run;
# elsewhere a missing piece is reported and the tests that need it say so.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
run() {
  local name=$1; shift
  if "$@" >"/tmp/isotrace-setup-$name.log" 2>&1; then
    echo "setup: $name ready ($(tail -n 1 "/tmp/isotrace-setup-$name.log"))"
  else
    echo "setup: $name FAILED; last lines of its log:" >&2
    tail -n 20 "/tmp/isotrace-setup-$name.log" >&2
    failed+=("$name")
  fi
}

run redis bash scripts/ensure-redis.sh
run python-peer bash scripts/ensure-python-peer.sh
run jaeger bash scripts/ensure-jaeger.sh

if [[ ${#failed[@]} -gt 0 ]]; then
  if [[ ${CI:-} == true ]]; then
    echo "setup: ${failed[*]} unavailable and CI=true: nothing may be skipped." >&2
    exit 1
  fi
  echo "setup: ${failed[*]} unavailable; the tests that need them will report it." >&2
fi
exit 0
