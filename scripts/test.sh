#!/usr/bin/env bash
# Builds texshare and runs its whole test suite (ctest). On a fresh Debian 12 machine it
# first installs what it needs with apt-get, and only what is missing.
#   scripts/test.sh [extra ctest arguments, e.g. -L unit or -R AuxChannel]
# BUILD_DIR (default build/) chooses the build tree. Under CI=true (or TEXSHARE_FULL=1) it
# then also runs the host lane under ASan + UBSan and the multi-process tests under TSan
# (scripts/sanitize.sh) and each fuzz target for a minute (scripts/fuzz.sh).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/common.sh
source "$repo/scripts/common.sh"

# shellcheck disable=SC2086  # lists of package names, split on purpose
texshare_need_packages $TEXSHARE_CORE_PACKAGES $TEXSHARE_GPU_PACKAGES $TEXSHARE_BENCH_PACKAGES
build_dir="${BUILD_DIR:-$repo/build}"
# The same arguments as demo.sh, so what the demo built is reused, not recompiled.
texshare_configure "$build_dir" "${TEXSHARE_SHARED_CMAKE_ARGS[@]}"
texshare_build "$build_dir"
cd "$build_dir"
ctest --output-on-failure --parallel "$(nproc)" "$@"

if [[ "${CI:-}" == true || -n "${TEXSHARE_FULL:-}" ]]; then
    "$repo/scripts/sanitize.sh" asan
    "$repo/scripts/sanitize.sh" tsan
    "$repo/scripts/fuzz.sh" "${TEXSHARE_FUZZ_SECONDS:-60}"
fi
