#!/usr/bin/env bash
# Runs commands inside the qemu guest (scripts/vm/) and fails if any of them fails.
#   run_vm_lane.sh [--stack bookworm|backports] CACHE_DIR -- COMMAND [ARGS...] [-- COMMAND [ARGS...]]...
# The stack chooses the guest (scripts/vm/prepare.sh): Debian 12's 6.1 kernel with the host's
# Mesa 22.3 (bookworm, the default) or bookworm-backports' 6.12 kernel with Mesa 25.
# A GoogleTest binary (name ending in _test) gets --gtest_brief=1.
# Under CI (CI=true) every problem is a failure. A developer may skip the lane locally with
# TEXSHARE_SKIP_VM=1 (reported to ctest as skipped, exit 77); it is never skipped silently.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
stack=(--stack bookworm)
if [[ "${1:-}" == --stack ]]; then
    [[ $# -ge 2 && "$2" =~ ^(bookworm|backports)$ ]] || { echo "run_vm_lane.sh: --stack takes bookworm or backports" >&2; exit 2; }
    stack=(--stack "$2")
    shift 2
fi
cache="$1"
shift
[[ "${1:-}" == -- ]] || { echo "usage: run_vm_lane.sh [--stack S] CACHE_DIR -- COMMAND [ARGS...] [-- ...]" >&2; exit 2; }

if [[ "${TEXSHARE_SKIP_VM:-0}" == 1 ]]; then
    if [[ "${CI:-}" == true ]]; then
        echo "vm lane: TEXSHARE_SKIP_VM=1 is not allowed under CI" >&2
        exit 1
    fi
    echo "vm lane: skipped because TEXSHARE_SKIP_VM=1"
    exit 77
fi

"$repo/scripts/vm/prepare.sh" "${stack[@]}" "$cache"

# One boot for all binaries: booting costs more than the tests themselves.
runner="$(mktemp /tmp/texshare-vm-lane.XXXXXX)"
trap 'rm -f "$runner"' EXIT
emit_command() {
    local -a command=("$@")
    [[ "${command[0]}" == *_test ]] && command+=(--gtest_brief=1)
    printf 'echo "=== %s"; ' "$(basename "${command[0]}")"
    printf '%q ' "${command[@]}"
    printf '|| status=1\n'
}
{
    echo 'status=0'
    current=()
    for word in "$@" --; do
        if [[ "$word" == -- ]]; then
            [[ ${#current[@]} -gt 0 ]] && emit_command "${current[@]}"
            current=()
        else
            current+=("$word")
        fi
    done
    echo 'exit $status'
} > "$runner"
# Within ctest's TIMEOUT (900 s, VmLane.cmake), leaving room to boot and report: the backports
# guest's run took 250 s on a loaded 2-core machine.
"$repo/scripts/vm/run-in-guest.sh" "$cache" --timeout 840 -- bash "$runner"
