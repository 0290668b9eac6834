# Sourced first by every hack/ script (and fuzz/run.sh, .ci/run): an error that ends the script
# prints the script, the file and line, the command and its exit status before the script exits,
# so no script exits without saying why. errtrace (-E) makes functions and subshells report too.
# shellcheck shell=bash
set -eEuo pipefail
# shellcheck disable=SC2154 # rc is assigned in the trap itself
trap 'rc=$?; printf "%s: ERROR: %s:%s: \`%s\` exited %s\n" "${0##*/}" "${BASH_SOURCE[0]:-$0}" "$LINENO" "$BASH_COMMAND" "$rc" >&2' ERR
