#!/usr/bin/env bash
# `make image`: builds the operator's OCI image without a registry or a container engine, with the
# same contents as the Dockerfile's image (a static musl release build on distroless/static's
# nonroot base), and, when the test environment's node runs, imports it into the node's
# containerd (`ctr -n k8s.io images import`), where the chart's default image name finds it.
#
#   - the binary: `cargo build --release --locked --target x86_64-unknown-linux-musl --bin
#     apigw-operator` (the Dockerfile's command, the real release profile with fat LTO), with its
#     target directory in a cache outside the clone keyed by Cargo.lock:
#     ~/.cache/apigw-operator/musl-target-<sha256(Cargo.lock) 12 hex>, so a warm run rebuilds only
#     the crate itself (a new Cargo.lock starts from a copy of the newest older one);
#   - the base: what distroless/static-debian12:nonroot provides that the operator uses (the
#     nonroot user 65532 in /etc/passwd and /etc/group, Debian's CA bundle at
#     /etc/ssl/certs/ca-certificates.crt, /tmp, /home/nonroot), written by hack/oci-image.py;
#   - the config: the Dockerfile's USER, ENTRYPOINT, CMD, EXPOSE and LABELs (read from the
#     Dockerfile itself), distroless's PATH and SSL_CERT_FILE.
# Output: target/image/apigw-operator-<version>.oci.tar (an OCI image layout, tagged
# ghcr.io/apigw-operator/apigw-operator:<version>, the chart's default image). Prints its path.
#
# Environment: IMAGE_IMPORT=0 skips the import; APIGW_MUSL_TARGET_DIR overrides the cache.
set -euo pipefail
# shellcheck source=hack/errtrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/errtrap.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=hack/lib.sh
. hack/lib.sh

TARGET=x86_64-unknown-linux-musl
log() { printf '[image] %s\n' "$*" >&2; }

command -v cargo >/dev/null || testenv_die "cargo not found: install Rust with rustup"
if ! command -v musl-gcc >/dev/null; then
    log "installing musl-tools (musl-gcc compiles aws-lc-sys's C part for musl)"
    apt_install musl-tools
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    log "rustup target add $TARGET"
    rustup target add "$TARGET" >&2
fi
[ -r /etc/ssl/certs/ca-certificates.crt ] || apt_install ca-certificates

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
[ -n "$version" ] || testenv_die "cannot read the package version from Cargo.toml"
lock_hash="$(sha256sum Cargo.lock | cut -c1-12)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/apigw-operator"
# The cached musl target directories, newest first (none on a new machine: prints nothing, exit 0).
musl_targets_newest_first() {
    local dirs=() d
    for d in "$cache_root"/musl-target-*; do
        case "$d" in *.tmp) continue ;; esac
        [ -d "$d" ] && dirs+=("$d")
    done
    [ ${#dirs[@]} -gt 0 ] || return 0
    ls -dt "${dirs[@]}"
}
target_dir="${APIGW_MUSL_TARGET_DIR:-$cache_root/musl-target-$lock_hash}"
if [ ! -d "$target_dir" ] && [ -z "${APIGW_MUSL_TARGET_DIR:-}" ]; then
    # A new Cargo.lock: start from the newest target dir of an older one, so that cargo rebuilds
    # only what changed (the fat-LTO build of every dependency takes many minutes here); keep
    # the two newest.
    # (On a machine that never built the image there is no musl-target-* yet: every step below
    # must hold with none, one, or many; tests/testenv/test_first_run.py runs all three.)
    olds=()
    while IFS= read -r d; do olds+=("$d"); done < <(musl_targets_newest_first)
    if [ ${#olds[@]} -gt 0 ]; then
        log "seeding $target_dir from ${olds[0]}"
        rm -rf "$target_dir.tmp"
        cp -a "${olds[0]}" "$target_dir.tmp" && mv "$target_dir.tmp" "$target_dir"
        # cp -a keeps the old mtime: make the new one the newest, so the pruning keeps it.
        touch "$target_dir"
    fi
    musl_targets_newest_first | tail -n +3 | while IFS= read -r old; do
        log "pruning $old"
        rm -rf "$old"
    done
fi
mkdir -p "$target_dir"

start=$(date +%s)
log "cargo build --release --locked --target $TARGET (target dir $target_dir)"
CARGO_TARGET_DIR="$target_dir" cargo build --release --locked --target "$TARGET" --bin apigw-operator >&2
binary="$target_dir/$TARGET/release/apigw-operator"
[ -x "$binary" ] || testenv_die "the build produced no $binary"
log "binary built in $(($(date +%s) - start)) s"
if file_out="$(command -v file >/dev/null && file -b "$binary")"; then
    case "$file_out" in *"statically linked"* | *"static-pie linked"*) ;; *) testenv_die "$binary is not static: $file_out" ;; esac
fi

mkdir -p target/image
out="target/image/apigw-operator-$version.oci.tar"
python3 hack/oci-image.py operator --binary "$binary" --dockerfile Dockerfile \
    --name "ghcr.io/apigw-operator/apigw-operator:$version" --out "$out" >&2
log "wrote $out"

if [ "${IMAGE_IMPORT:-1}" = 1 ] && [ -S "$(node_containerd_socket 0)" ]; then
    for sock in $(node_containerd_sockets); do
        log "importing into the node's containerd ($sock)"
        ctr --address "$sock" -n k8s.io images import "$out" >&2
    done
elif [ "${IMAGE_IMPORT:-1}" = 1 ]; then
    log "no node is running (TESTENV_NODE=1 make testenv-up starts one): not imported"
fi
echo "$out"
