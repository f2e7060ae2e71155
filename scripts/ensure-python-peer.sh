#!/usr/bin/env bash
# Ensures the Python interop peer's venv exists with the pinned OpenTelemetry
# Python SDK, and prints the venv's python path as the last stdout line.
#
# Idempotent: the venv under <repo>/.cache/python-venv is reused while its
# stamp (hash of the pins and of the base interpreter) matches; otherwise it is
# rebuilt from scratch. Concurrent callers (parallel test workers) serialise on
# a lock file, so only one of them installs.
#
# Environment:
#   ISOTRACE_PYTHON  base interpreter to build the venv from (default: python3)
#
# Exit codes:
#   0  ready; last stdout line is the venv python
#   3  this machine cannot provide the peer (no python >= 3.9, no venv module,
#      or the pinned packages could not be installed); the reason is on stderr
#   other  a bug in this script or the requirements file
set -euo pipefail

readonly UNAVAILABLE=3

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="$repo_root/.cache"
venv_dir="$cache_dir/python-venv"
venv_python="$venv_dir/bin/python"
requirements="$repo_root/test/fixtures/python-peer/requirements.txt"
stamp_file="$venv_dir/.isotrace-stamp"
base_python="${ISOTRACE_PYTHON:-python3}"

log() { printf 'ensure-python-peer: %s\n' "$*" >&2; }
unavailable() { log "$*"; exit "$UNAVAILABLE"; }

if ! command -v "$base_python" >/dev/null 2>&1; then
  unavailable "no '$base_python' on PATH: install Python >= 3.9 with its venv module, or set ISOTRACE_PYTHON"
fi
if ! "$base_python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)'; then
  unavailable "'$base_python' is older than 3.9, which opentelemetry-sdk requires; set ISOTRACE_PYTHON to a newer one"
fi

# The venv is tied to the interpreter it was made from, so that is part of the stamp.
interpreter_id="$("$base_python" -c 'import os, sys; print(os.path.realpath(sys.executable), sys.version)')"
wanted_stamp="$({ cat "$requirements"; printf '%s\n' "$interpreter_id"; } | sha256sum | cut -d' ' -f1)"

venv_is_current() {
  [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$wanted_stamp" ]] &&
    "$venv_python" -c 'import opentelemetry.sdk.trace' >/dev/null 2>&1
}

mkdir -p "$cache_dir"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache_dir/python-venv.lock"
  flock -w 600 9 || unavailable "timed out after 600 s waiting for another install to finish (lock $cache_dir/python-venv.lock)"
else
  log "flock not found: concurrent first runs may race"
fi

if ! venv_is_current; then
  log "building $venv_dir from $requirements (first run, or the pins changed)"
  rm -rf "$venv_dir"
  "$base_python" -m venv "$venv_dir" >&2 ||
    unavailable "'$base_python -m venv' failed: install the venv module (Debian: apt-get install python3-venv)"
  "$venv_python" -m pip install --no-input --disable-pip-version-check --only-binary=:all: \
    --quiet --requirement "$requirements" >&2 ||
    unavailable "pip could not install $requirements (is PyPI reachable?)"
  # Written last: an interrupted install has no stamp and is redone next time.
  printf '%s\n' "$wanted_stamp" >"$stamp_file"
fi

printf '%s\n' "$venv_python"
