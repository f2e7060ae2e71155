#!/usr/bin/env bash
# Makes sure a `redis-server` binary is available for the RedisStore tests and
# prints its path as the last line on stdout (progress goes to stderr).
# Idempotent: when redis-server is already on PATH nothing is installed.
# Otherwise it installs Debian's `redis-server` package with apt-get, which
# needs root (CI and the dev container run as root); it does not start the
# system service — the tests start their own server on a free port.
set -euo pipefail

log() { printf 'ensure-redis: %s\n' "$*" >&2; }

find_redis() {
  # Debian installs to /usr/bin; check it too in case PATH is minimal.
  command -v redis-server 2>/dev/null || { [[ -x /usr/bin/redis-server ]] && echo /usr/bin/redis-server; } || true
}

binary=$(find_redis)
if [[ -n $binary ]]; then
  echo "$binary"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  log "redis-server is not installed and apt-get is not available; install Redis >= 6.2 and put redis-server on PATH"
  exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
  log "redis-server is not installed; run this script as root (it uses apt-get) or install the redis-server package yourself"
  exit 1
fi

# Serialise concurrent callers (several test files at once): apt holds its own
# lock and would fail the second caller instead of waiting.
lock_file=/tmp/isotrace-ensure-redis.lock
exec 9>"$lock_file"
if ! flock -n 9; then
  log "another install of redis-server is running; waiting for it"
  flock 9
fi
binary=$(find_redis)
if [[ -n $binary ]]; then
  echo "$binary"
  exit 0
fi

log "installing Debian's redis-server package with apt-get"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 keeps the package's post-install from starting the system service.
policy=/usr/sbin/policy-rc.d
created_policy=false
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created_policy=true
fi
cleanup() { if [[ $created_policy == true ]]; then rm -f "$policy"; fi; }
trap cleanup EXIT

apt-get update >&2
apt-get install -y --no-install-recommends redis-server >&2

binary=$(find_redis)
if [[ -z $binary ]]; then
  log "apt-get installed redis-server but no redis-server binary was found"
  exit 1
fi
log "installed $("$binary" --version)"
echo "$binary"
