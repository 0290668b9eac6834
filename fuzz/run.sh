#!/usr/bin/env bash
# `make fuzz`: runs every fuzz target for FUZZ_SECONDS each (default 200: 10 minutes for the
# three), one after the other, and prints a line per target (runs, corpus, crashes).
#   FUZZ_SECONDS=30 fuzz/run.sh          # a quick pass
#   fuzz/run.sh plan                     # one target
# Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Crashes are written to fuzz/artifacts/<target>/ (reproduce: cargo +nightly fuzz run <target> <file>).
set -euo pipefail
# shellcheck source=hack/errtrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/../hack/errtrap.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${FUZZ_SECONDS:-200}"
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(plan plan_json escape)

rustup toolchain list 2>/dev/null | grep -q '^nightly' || {
    echo "fuzz: no nightly toolchain; install it: rustup toolchain install nightly" >&2; exit 1; }
cargo +nightly fuzz --version >/dev/null 2>&1 || {
    echo "fuzz: cargo-fuzz is missing; install it: cargo install cargo-fuzz" >&2; exit 1; }

mkdir -p target/fuzz
echo "== cargo +nightly fuzz build" >&2
cargo +nightly fuzz build >target/fuzz/build.log 2>&1 || { tail -n 40 target/fuzz/build.log >&2; exit 1; }
status=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    if [ -d "fuzz/seeds/$t" ]; then cp -n "fuzz/seeds/$t"/* "fuzz/corpus/$t/" 2>/dev/null || true; fi
    log="target/fuzz/$t.log"
    echo "== fuzz $t for ${seconds}s (log: $log)" >&2
    set +e
    cargo +nightly fuzz run "$t" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    corpus="$(find "fuzz/corpus/$t" -type f | wc -l)"
    crashes="$(find "fuzz/artifacts/$t" -type f 2>/dev/null | wc -l)"
    line="$t: exit $rc, ${seconds}s, ${runs:-?} runs, corpus $corpus, artifacts $crashes"
    summary+=("$line")
    if [ "$rc" != 0 ]; then
        status=1
        tail -n 40 "$log" >&2
    fi
done
printf '%s\n' "${summary[@]}"
exit "$status"
