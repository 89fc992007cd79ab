# shellcheck shell=bash
# Functions shared by texshare's scripts (demo.sh, test.sh). Source it; it runs nothing.
# The scripts target Debian 12 and install only what is missing, so on a machine that
# already has everything they never touch apt or need root.

# What building texshare, its tests and its example needs. A plain string, split on
# purpose: texshare_need_packages $TEXSHARE_CORE_PACKAGES
# shellcheck disable=SC2034  # used by the scripts that source this file
TEXSHARE_CORE_PACKAGES="cmake ninja-build g++ pkg-config libfmt-dev libdrm-dev libgtest-dev libpng-dev"
# make: the README's install commands (run as written by the packaging tests) use CMake's
# default generator, and cmake only recommends make, which --no-install-recommends skips.
TEXSHARE_CORE_PACKAGES+=" make"
# What TEXSHARE_GPU=ON (the default at top level) adds: texshare::gbm and texshare::egl.
# shellcheck disable=SC2034  # used by the scripts that source this file
# Mesa's DRI drivers (kms_swrast) and EGL are what GBM and EGL load at run time, in the VM lane too.
TEXSHARE_GPU_PACKAGES="libgbm-dev libepoxy-dev libegl-dev libgl1-mesa-dri libegl-mesa0 libgles-dev"
# texshare-info (built with the GPU layers) writes its --json with nlohmann-json, and its tests parse it.
TEXSHARE_GPU_PACKAGES+=" nlohmann-json3-dev"
# The tests' Vulkan readback (tests/support/vulkan_readback.hpp: DMA-BUFs imported with lavapipe in the VM lane).
TEXSHARE_GPU_PACKAGES+=" libvulkan-dev"
# texshare::vulkan's host unit tests need a Vulkan driver: lavapipe (Debian 12's has no DMA-BUF
# extension, which those tests assert; the VM lane's backports guest brings Mesa 25's).
TEXSHARE_GPU_PACKAGES+=" mesa-vulkan-drivers"
# Khronos' validation layer: on in every Vulkan test where installed (tests/support/vulkan_test_device.hpp).
TEXSHARE_GPU_PACKAGES+=" vulkan-validationlayers"
# glslangValidator: the pattern shader test checks the committed SPIR-V against its GLSL source.
TEXSHARE_GPU_PACKAGES+=" glslang-tools"

# The benchmark (bench/, built by default, run by scripts/bench.sh): Google Benchmark, and
# libwayland with wayland-scanner for the comparison. Without them bench/ is skipped.
# shellcheck disable=SC2034  # used by the scripts that source this file
TEXSHARE_BENCH_PACKAGES="libbenchmark-dev libwayland-dev libwayland-bin"

# The sanitizer builds and the fuzz targets (scripts/sanitize.sh, scripts/fuzz.sh) use clang.
# shellcheck disable=SC2034  # used by the scripts that source this file
TEXSHARE_CLANG_PACKAGES="clang-14 libclang-rt-14-dev"

TEXSHARE_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

texshare_log() {
    printf 'texshare: %s\n' "$*" >&2
}

# Runs a command as root: directly when we are root, through sudo when it exists.
texshare_as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        texshare_log "need root to run '$*', and sudo is not installed"
        return 1
    fi
}

# texshare_need_packages PKG...: installs those of the Debian packages that are missing.
# `apt-get update` runs once per shell and only if something must be installed, since it
# is slow and needs the network.
texshare_need_packages() {
    local missing=() package status
    for package in "$@"; do
        # One line per installed architecture; any of them installed will do.
        status="$(dpkg-query -W -f='${db:Status-Status}\n' "$package" 2>/dev/null || true)"
        grep -qx installed <<<"$status" || missing+=("$package")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        return 0
    fi
    texshare_log "installing missing packages: ${missing[*]}"
    if [[ -z "${TEXSHARE_APT_UPDATED:-}" ]]; then
        texshare_as_root env DEBIAN_FRONTEND=noninteractive apt-get update
        TEXSHARE_APT_UPDATED=1
    fi
    texshare_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
}

# What demo.sh and test.sh both configure with, so that test.sh after demo.sh reuses every
# object the demo compiled: a flag only one of them passed (once -Werror, set by test.sh
# alone) changes every compile line and made test.sh recompile 134 of 137 targets.
# tests/packaging/scripts_share_build_test.sh checks that both pass exactly these.
# shellcheck disable=SC2034  # used by the scripts that source this file
TEXSHARE_SHARED_CMAKE_ARGS=(-DTEXSHARE_WERROR=ON)

# texshare_configure BUILD_DIR [CMAKE_ARGS...]: configures the repository with Ninja into
# BUILD_DIR (re-running cmake on an existing tree applies new arguments; the same
# arguments change nothing, so nothing is rebuilt).
texshare_configure() {
    if [[ $# -lt 1 || -z "$1" ]]; then
        texshare_log "usage: texshare_configure BUILD_DIR [CMAKE_ARGS...]"
        return 2
    fi
    local build_dir="$1"
    shift
    cmake -S "$TEXSHARE_REPO" -B "$build_dir" -G Ninja "$@"
}

# texshare_build BUILD_DIR [TARGET...]: builds those targets, or everything without any.
texshare_build() {
    local build_dir="$1"
    shift
    if [[ $# -gt 0 ]]; then
        cmake --build "$build_dir" --target "$@"
    else
        cmake --build "$build_dir"
    fi
}

# texshare_configure_and_build BUILD_DIR [CMAKE_ARGS...]: both, building everything.
texshare_configure_and_build() {
    texshare_configure "$@" || return
    texshare_build "$1"
}
