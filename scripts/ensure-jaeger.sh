#!/usr/bin/env bash
# Builds the Jaeger v2 binary (cmd/jaeger, an OpenTelemetry Collector
# distribution) from its Go module and caches it under
# <repo>/.cache/jaeger/<module version>/jaeger. Idempotent: when the binary is
# already there it is reused. The last line on stdout is the binary's path;
# progress goes to stderr.
#
# Pin: module github.com/jaegertracing/jaeger@v1.76.0, which is the release
# commit of Jaeger v2.13.0 (CHANGELOG: "v1.76.0 / v2.13.0 (2025-12-03)";
# Jaeger tags every release twice). Why this form:
# - the v2.x tags are not valid Go module versions (the module path has no
#   /v2 suffix), and the module proxy refuses bare commit hashes such as the
#   v2.20.0 release commit with "403 ... This module version is not available";
# - v1.76.0 is what `go list -m github.com/jaegertracing/jaeger@latest`
#   resolves to through the proxy, and cmd/jaeger at that tag is the v2 binary
#   (jaeger_storage, jaeger_query, healthcheckv2, OTLP receivers...).
# The module's go.mod has replace directives, so `go install pkg@version`
# refuses it; we build inside a copy of the module instead (see below).
#
# Exit codes:
#   0  ready; the last stdout line is the binary
#   3  this machine cannot provide Jaeger (no Go toolchain, or the module proxy
#      cannot be reached); the reason is on stderr
#   other  the build itself failed
set -euo pipefail

readonly UNAVAILABLE=3

readonly JAEGER_MODULE=github.com/jaegertracing/jaeger
readonly JAEGER_MODULE_VERSION=v1.76.0
readonly JAEGER_RELEASE=v2.13.0

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly repo_root
readonly install_dir="$repo_root/.cache/jaeger/$JAEGER_MODULE_VERSION"
readonly binary="$install_dir/jaeger"

log() { printf 'ensure-jaeger: %s\n' "$*" >&2; }
unavailable() { log "$*"; exit "$UNAVAILABLE"; }

# Everything runs from one function, so bash has parsed the whole script before
# the long build starts: editing or checking out this file mid-build is safe.
main() {
  if [[ -x $binary ]]; then
    echo "$binary"
    exit 0
  fi

  if ! command -v go >/dev/null 2>&1; then
    unavailable "no 'go' on PATH: install Go >= 1.24 to build Jaeger $JAEGER_RELEASE, then re-run $0"
  fi

  mkdir -p "$install_dir"

  # Serialise concurrent callers (a setup step and a test run) so the module is
  # built once; the second caller finds the binary after the lock is released.
  exec 9>"$install_dir/.lock"
  if ! flock -n 9; then
    log "another build of Jaeger $JAEGER_RELEASE is running; waiting for it"
    flock 9
  fi
  if [[ -x $binary ]]; then
    echo "$binary"
    exit 0
  fi

  local download module_dir start_seconds
  # Globals, not locals: the EXIT trap runs after main has returned.
  build_dir=$(mktemp -d)
  partial="$install_dir/jaeger.partial.$$"
  trap 'rm -rf "$build_dir" "$partial"' EXIT

  start_seconds=$SECONDS
  log "building $JAEGER_MODULE/cmd/jaeger@$JAEGER_MODULE_VERSION (Jaeger $JAEGER_RELEASE); this takes several minutes on 2 cores"

  # Build inside a copy of the released module so its own go.mod (with its
  # replace directives) and go.sum decide every dependency version: the result
  # matches the release, and the checksums come from go.sum rather than from
  # checksum-database look-ups, which the proxy here does not serve for all of
  # Jaeger's dependencies.
  if ! download=$(go mod download -json "$JAEGER_MODULE@$JAEGER_MODULE_VERSION"); then
    unavailable "could not download $JAEGER_MODULE@$JAEGER_MODULE_VERSION through the Go module proxy ($(go env GOPROXY))"
  fi
  module_dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$download")
  if [[ -z $module_dir || ! -f $module_dir/go.mod ]]; then
    log "go mod download reported no module directory:"$'\n'"$download"
    exit 1
  fi
  cp -R "$module_dir/." "$build_dir/"
  chmod -R u+w "$build_dir"
  cd "$build_dir"

  go build -trimpath \
    -ldflags "-X $JAEGER_MODULE/internal/version.latestVersion=$JAEGER_RELEASE" \
    -o "$partial" ./cmd/jaeger >&2
  mv -f "$partial" "$binary"

  log "built Jaeger $JAEGER_RELEASE in $((SECONDS - start_seconds)) s"
  echo "$binary"
}

main "$@"
