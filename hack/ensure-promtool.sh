#!/usr/bin/env bash
# Builds (once, then reuses) Prometheus's promtool, which tests/ship/test_monitoring.py uses to
# check the chart's PrometheusRule (`promtool check rules`) and to unit-test its alerts
# (`promtool test rules tests/ship/monitoring/alerts_test.yaml`).
#
# promtool is built from the Go module proxy (no GitHub release download) with
#   go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_MODULE_VERSION
# into target/tools/promtool-<version>/promtool. The tag remove_all_sd leaves out the service
# discovery plugins (AWS, Azure, GCE, ...), which promtool's rule commands do not use, and which
# would make the build several times longer. A cold build takes a few minutes on 2 cores; a
# second run does nothing.
#
# Prometheus's Go module is versioned v0.<minor>.<patch> for Prometheus 3.<minor>.<patch>.
#
# Prints ONLY the absolute path of promtool on stdout; progress goes to stderr.
# Environment: PROMTOOL_MODULE_VERSION overrides the pinned version.
set -euo pipefail
# shellcheck source=hack/errtrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/errtrap.sh"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${PROMTOOL_MODULE_VERSION:-v0.316.0}" # Prometheus 3.16.0
dir="$repo/target/tools/promtool-$version"
bin="$dir/promtool"

log() { printf '[ensure-promtool] %s\n' "$*" >&2; }
die() { printf '[ensure-promtool] ERROR: %s\n' "$*" >&2; exit 1; }

ready() { [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; }

if ready; then
    printf '%s\n' "$bin"
    exit 0
fi

command -v go >/dev/null 2>&1 \
    || die "Go is not on PATH; it is needed to build promtool. Install Go 1.26 or newer, then rerun: hack/ensure-promtool.sh"
mkdir -p "$dir"

# One builder at a time; others wait here and then reuse its binary.
exec 9>"$dir.lock"
if command -v flock >/dev/null 2>&1; then flock -w 1200 9 || die "timed out waiting for $dir.lock"; fi
if ready; then
    printf '%s\n' "$bin"
    exit 0
fi

# Prometheus's version (for `promtool --version`): v0.316.0 is 3.16.0.
m="${version#v0.}"; m="${m%%-*}"; mm="${m%%.*}"
prom_version="${mm:0:1}.$((10#${mm:1})).${m#*.}"
log "building promtool (github.com/prometheus/prometheus@$version) into $dir (cold build: a few minutes)"
start=$(date +%s)
tmp="$dir/tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
(
    export GOWORK=off CGO_ENABLED=0 GO111MODULE=on GOFLAGS="-trimpath" GOBIN="$tmp"
    go install -tags remove_all_sd \
        -ldflags "-s -w -X github.com/prometheus/common/version.Version=$prom_version" "github.com/prometheus/prometheus/cmd/promtool@$version" >&2
) || { rm -rf "$tmp"; die "go install of promtool@$version failed (is the Go module proxy, $(go env GOPROXY), reachable? see above); rerun: hack/ensure-promtool.sh"; }
[[ -x "$tmp/promtool" ]] || die "go install produced no $tmp/promtool"
mv -f "$tmp/promtool" "$bin"
rm -rf "$tmp"
ready || die "$bin does not run"
log "built $("$bin" --version 2>&1 | head -n1) in $(($(date +%s) - start)) s"
printf '%s\n' "$bin"
