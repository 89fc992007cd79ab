#!/usr/bin/env bash
# Builds texshare and runs its example: a host spawns a renderer child, the two share a
# 3-image memfd swapchain once, then exchange only image ids per frame while the host
# checks every pixel. On a fresh Debian 12 machine it first installs what it needs with
# apt-get, and only what is missing.
#   scripts/demo.sh [host_renderer arguments, e.g. --frames=300 --size=640x480]
# BUILD_DIR (default build/ in the repository) chooses the build tree; the PNG of the last
# frame is written into it unless --output=PATH is given.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/common.sh
source "$repo/scripts/common.sh"

# shellcheck disable=SC2086  # a list of package names, split on purpose
texshare_need_packages $TEXSHARE_CORE_PACKAGES $TEXSHARE_GPU_PACKAGES
build_dir="${BUILD_DIR:-$repo/build}"
mkdir -p "$build_dir"
build_dir="$(cd "$build_dir" && pwd)"
texshare_configure_and_build "$build_dir"

# The PNG goes into the build tree unless the caller chose a path.
output="$build_dir/host_renderer_last_frame.png"
extra=("--output=$output")
for argument in "$@"; do
    if [[ "$argument" == --output=* ]]; then
        output="${argument#--output=}"
        extra=()
    fi
done

"$build_dir/examples/host_renderer/texshare_host_renderer" "${extra[@]}" "$@"
echo "demo: the last frame is in $output"
