#!/usr/bin/env bash
# Builds the pinned test-environment binaries (etcd, kube-apiserver, kubectl,
# helm) from the Go module proxy into
#   ~/.cache/apigw-operator/testenv/<kube>-<etcd>-<helm>/bin/
# Versions come from hack/versions.env. A binary that is already there is not
# rebuilt, so a second run does nothing. Prints the bin directory on stdout.
#
# Each part is built from a small throw-away wrapper Go module that requires
# the upstream module at the pinned version:
#   - kube-apiserver, kubectl: k8s.io/kubernetes, plus a replace for each
#     staging module (k8s.io/api, k8s.io/client-go, ...) to v0.<minor>.<patch>,
#     the list read from k8s.io/kubernetes's own go.mod;
#   - etcd: a main package calling go.etcd.io/etcd/server/v3/etcdmain.Main
#     (what etcd's own main.go does), with the etcd sibling modules at the
#     same version;
#   - helm: helm.sh/helm/v3/cmd/helm.
# Node mode (`--node`, or TESTENV_NODE=1): also kubelet, kube-scheduler and
# kube-controller-manager, from the same k8s.io/kubernetes module and wrapper
# scheme (their own wrapper directory, src/kube-node), into the same bin dir.
# Environment: APIGW_TESTENV_CACHE overrides the cache root.
set -euo pipefail
# shellcheck source=hack/errtrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/errtrap.sh"

# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
testenv_load_versions

BIN_DIR="$(testenv_bin_dir)"
CACHE_DIR="$(dirname "$BIN_DIR")"

WANTED="$TESTENV_BINARIES"
if [ "${1:-}" = "--node" ] || [ "${TESTENV_NODE:-}" = 1 ]; then
    WANTED="$WANTED $TESTENV_NODE_BINARIES"
fi

missing=""
for b in $WANTED; do
    [ -x "$BIN_DIR/$b" ] || missing="$missing $b"
done
if [ -z "$missing" ]; then
    testenv_log "binaries for kube $KUBE_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION already built in $BIN_DIR"
    echo "$BIN_DIR"
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    testenv_die "Go is not installed or not on PATH; it is needed to build$missing. Install Go 1.26 or newer (Debian: apt-get install golang-go, if new enough), then run: hack/build-testenv.sh"
fi

testenv_log "building$missing into $BIN_DIR (cold build: expect 10-30 minutes on 2 cores)"

export GOWORK=off
export CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"
export GO111MODULE=on

mkdir -p "$BIN_DIR" "$CACHE_DIR/src"

# Runs a command, and on failure dies naming the command and how to retry.
run() {
    if ! "$@"; then
        testenv_die "command failed (in $PWD): $* -- fix the cause above, then rerun: hack/build-testenv.sh"
    fi
}

# Prints the path of the downloaded go.mod of module@version.
gomod_path() {
    local out
    out="$(go mod download -json "$1")" || testenv_die "cannot download $1 from the Go module proxy (GOPROXY=$(go env GOPROXY)); rerun hack/build-testenv.sh when it is reachable"
    printf '%s\n' "$out" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p'
}

# Prints "YYYY-MM-DDTHH:MM:SSZ", the proxy's time of module@version (used as
# the build date so the binaries are reproducible).
module_time() {
    go list -m -json "$1" | sed -n 's/^[[:space:]]*"Time": "\([^".Z]*\)\(\.[0-9]*\)\{0,1\}Z\{0,1\}",\{0,1\}$/\1Z/p'
}

# Fresh wrapper module directory $CACHE_DIR/src/<name> with a go.mod.
new_wrapper() {
    local dir="$CACHE_DIR/src/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    printf 'module apigw-operator.testenv/%s\n\ngo %s\n' "$1" "$2" >"$dir/go.mod"
    echo "$dir"
}

# Moves the freshly built binaries from $1 into $BIN_DIR (atomically each).
install_bins() {
    local from="$1" b
    shift
    for b in "$@"; do
        [ -x "$from/$b" ] || testenv_die "build produced no $from/$b; rerun: hack/build-testenv.sh"
        mv -f "$from/$b" "$BIN_DIR/$b"
    done
}

need() {
    local b
    for b in "$@"; do
        case " $missing " in *" $b "*) return 0 ;; esac
    done
    return 1
}

# build_kube WRAPPER BINARY...: builds k8s.io/kubernetes/cmd/BINARY for each BINARY in the
# wrapper module src/WRAPPER.
build_kube() {
    local wrapper="$1" minor patch staging_version dir gomod mods m date ver_pkg ldflags cmds=() pkgs=() b
    shift
    for b in "$@"; do
        cmds+=("k8s.io/kubernetes/cmd/$b@$KUBE_VERSION")
        pkgs+=("k8s.io/kubernetes/cmd/$b")
    done
    minor="$(echo "$KUBE_VERSION" | cut -d. -f2)"
    patch="$(echo "$KUBE_VERSION" | cut -d. -f3)"
    staging_version="v0.$minor.$patch"

    gomod="$(gomod_path "k8s.io/kubernetes@$KUBE_VERSION")"
    if [ -z "$gomod" ] || [ ! -r "$gomod" ]; then testenv_die "could not find the go.mod of k8s.io/kubernetes@$KUBE_VERSION"; fi
    dir="$(new_wrapper "$wrapper" "1.$(go_minor_of "$gomod")")"
    cd "$dir"
    # Same GODEBUG defaults as upstream's build (its go.mod's godebug line).
    grep '^godebug ' "$gomod" >>go.mod || true
    # Staging modules: lines "k8s.io/<m> => ./staging/src/k8s.io/<m>" (in a
    # replace block or a one-line replace).
    mods="$(sed -n 's#^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(k8s\.io/[^[:space:]]*\)[[:space:]]\{1,\}=>[[:space:]]\{1,\}\./staging/src/.*#\2#p' "$gomod")"
    [ -n "$mods" ] || testenv_die "found no staging replace lines in $gomod"
    testenv_log "kube: $(echo "$mods" | wc -l) staging modules pinned to $staging_version"
    for m in $mods; do
        run go mod edit -replace "$m=$m@$staging_version"
    done

    testenv_log "kube: resolving k8s.io/kubernetes@$KUBE_VERSION"
    run go get -tool "${cmds[@]}"

    date="$(module_time "k8s.io/kubernetes@$KUBE_VERSION")"
    ldflags="-s -w"
    for ver_pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags="$ldflags -X $ver_pkg.gitVersion=$KUBE_VERSION -X $ver_pkg.gitMajor=1 -X $ver_pkg.gitMinor=$minor"
        # The upstream commit is not known from the module proxy: leave it
        # empty rather than the "$Format:%H$" placeholder.
        ldflags="$ldflags -X $ver_pkg.gitTreeState=clean -X $ver_pkg.gitCommit="
        [ -n "$date" ] && ldflags="$ldflags -X $ver_pkg.buildDate=$date"
    done
    testenv_log "kube: building $* (the slow part)"
    mkdir -p out
    run go build -trimpath -ldflags "$ldflags" -o out/ "${pkgs[@]}"
    install_bins out "$@"
}

# Prints the minor of the "go 1.N[.P]" line of a go.mod file.
go_minor_of() {
    sed -n 's/^go 1\.\([0-9]*\).*/\1/p' "$1" | head -n1
}

build_etcd() {
    local dir gomod sib
    gomod="$(gomod_path "go.etcd.io/etcd/server/v3@$ETCD_VERSION")"
    if [ -z "$gomod" ] || [ ! -r "$gomod" ]; then testenv_die "could not find the go.mod of go.etcd.io/etcd/server/v3@$ETCD_VERSION"; fi
    dir="$(new_wrapper etcd "1.$(go_minor_of "$gomod")")"
    cd "$dir"
    cat >main.go <<'EOF'
// The etcd binary: what etcd's own main.go does.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
EOF
    # The server's go.mod replaces its sibling modules with relative paths
    # (ignored outside etcd's repo); pin each of them to the same version.
    sib="$(sed -n 's#^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(go\.etcd\.io/etcd/[^[:space:]]*\)[[:space:]]\{1,\}=>[[:space:]]\{1,\}\.\./.*#\2#p' "$gomod")"
    testenv_log "etcd: resolving go.etcd.io/etcd/server/v3@$ETCD_VERSION (+ $(echo "$sib" | tr '\n' ' '))"
    local args=("go.etcd.io/etcd/server/v3@$ETCD_VERSION") m
    for m in $sib; do
        run go mod edit -replace "$m=$m@$ETCD_VERSION"
        args+=("$m@$ETCD_VERSION")
    done
    run go get "${args[@]}"
    run go mod tidy
    testenv_log "etcd: building"
    mkdir -p out
    run go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-$ETCD_VERSION" -o out/etcd .
    install_bins out etcd
}

build_helm() {
    local dir cg major minor ldflags
    dir="$(new_wrapper helm 1.25.0)"
    cd "$dir"
    testenv_log "helm: resolving helm.sh/helm/v3@$HELM_VERSION"
    run go get -tool "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    # Like helm's Makefile: the Kubernetes version helm assumes (lint
    # deprecations, default .Capabilities) is that of the client-go it uses.
    cg="$(go list -m -f '{{.Version}}' k8s.io/client-go)" || testenv_die "cannot read k8s.io/client-go version in $dir"
    major=$(($(echo "${cg#v}" | cut -d. -f1) + 1))
    minor="$(echo "${cg#v}" | cut -d. -f2)"
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    ldflags="$ldflags -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
    ldflags="$ldflags -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
    testenv_log "helm: building (client-go $cg, k8s $major.$minor)"
    mkdir -p out
    run go build -trimpath -ldflags "$ldflags" -o out/helm helm.sh/helm/v3/cmd/helm
    install_bins out helm
}

start=$(date +%s)
if need etcd; then (build_etcd); fi
if need helm; then (build_helm); fi
if need kube-apiserver kubectl; then (build_kube kube kube-apiserver kubectl); fi
if need $TESTENV_NODE_BINARIES; then (build_kube kube-node $TESTENV_NODE_BINARIES); fi

for b in $WANTED; do
    [ -x "$BIN_DIR/$b" ] || testenv_die "$BIN_DIR/$b is missing after the build; rerun: hack/build-testenv.sh"
done
testenv_log "built$missing in $(($(date +%s) - start)) s into $BIN_DIR"
echo "$BIN_DIR"
