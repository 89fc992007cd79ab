#!/usr/bin/env bash
# Runs test binaries inside the qemu guest (scripts/vm/) and fails if any of them fails.
#   run_vm_lane.sh CACHE_DIR BINARY...
# Under CI (CI=true) every problem is a failure. A developer may skip the lane locally with
# TEXSHARE_SKIP_VM=1 (reported to ctest as skipped, exit 77); it is never skipped silently.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="$1"
shift

if [[ "${TEXSHARE_SKIP_VM:-0}" == 1 ]]; then
    if [[ "${CI:-}" == true ]]; then
        echo "vm lane: TEXSHARE_SKIP_VM=1 is not allowed under CI" >&2
        exit 1
    fi
    echo "vm lane: skipped because TEXSHARE_SKIP_VM=1"
    exit 77
fi

"$repo/scripts/vm/prepare.sh" "$cache"

# One boot for all binaries: booting costs more than the tests themselves.
runner="$(mktemp /tmp/texshare-vm-lane.XXXXXX)"
trap 'rm -f "$runner"' EXIT
{
    echo 'status=0'
    for binary in "$@"; do
        printf 'echo "=== %s"; %q --gtest_brief=1 || status=1\n' "$(basename "$binary")" "$binary"
    done
    echo 'exit $status'
} > "$runner"
"$repo/scripts/vm/run-in-guest.sh" "$cache" --timeout 600 -- bash "$runner"
