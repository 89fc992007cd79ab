#!/usr/bin/env bash
# Builds texshare's benchmark in Release and runs it: Markdown tables of medians and ratios
# (texshare against raw sockets, libwayland and copying; throughput and 64 children), then
# the VM lane's part (EGL import cost, a 4-plane DMA-BUF's first share) inside the qemu
# guest, reported separately. On a fresh Debian 12 machine it first installs what it needs
# with apt-get, and only what is missing. About 2-3 minutes on a 2-core machine.
#   scripts/bench.sh [texshare_bench arguments, e.g. --sections=13 --scale=0.2]
#   scripts/bench.sh --guest [--scale=F]
# --guest runs only the guest section instead (a CPU-rendered 1920x1080 frame to Vulkan:
# staging copy against udmabuf import) in the 6.12 guest with Mesa 25's lavapipe, the one
# with /dev/udmabuf (scripts/vm/prepare.sh --stack backports, cached in
# BUILD_DIR/vm-cache-backports); about a minute once the guest is prepared.
# BUILD_DIR (default build-bench/) chooses the build tree; the tables are also written to
# BUILD_DIR/bench-latest.md (with --guest: BUILD_DIR/bench-guest-latest.md).
# TEXSHARE_BENCH_SKIP_VM=1 leaves the guest out.
set -euo pipefail
guest=0
if [[ "${1:-}" == --guest ]]; then
    guest=1
    shift
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/common.sh
source "$repo/scripts/common.sh"

# shellcheck disable=SC2086  # lists of package names, split on purpose
texshare_need_packages $TEXSHARE_CORE_PACKAGES $TEXSHARE_GPU_PACKAGES $TEXSHARE_BENCH_PACKAGES
build_dir="${BUILD_DIR:-$repo/build-bench}"
cmake -S "$repo" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTEXSHARE_BUILD_TESTS=OFF \
    -DTEXSHARE_BUILD_EXAMPLES=OFF -DTEXSHARE_BUILD_TOOLS=OFF -DTEXSHARE_INSTALL=OFF -DTEXSHARE_BUILD_BENCH=ON >/dev/null
cmake --build "$build_dir" --target texshare_bench texshare_import_bench
[[ -x "$build_dir/bench/texshare_bench" ]] || {
    texshare_log "the benchmark was not built (see cmake's message about its dependencies)"
    exit 1
}

results="$build_dir/bench-latest.md"
if [[ $guest == 1 ]]; then
    results="$build_dir/bench-guest-latest.md"
    "$repo/scripts/vm/prepare.sh" --stack backports "$build_dir/vm-cache-backports" >&2
    "$repo/scripts/vm/run-in-guest.sh" "$build_dir/vm-cache-backports" --timeout 300 -- \
        "$build_dir/bench/texshare_bench" --sections=guest --require-guest "$@" | tee "$results"
    exit "${PIPESTATUS[0]}"
fi
"$build_dir/bench/texshare_bench" "$@" | tee "$results"

if [[ "${TEXSHARE_BENCH_SKIP_VM:-0}" == 1 ]]; then
    printf '\n(VM lane part skipped: TEXSHARE_BENCH_SKIP_VM=1)\n' | tee -a "$results"
    exit 0
fi
# The guest: Debian's 6.1 kernel with vgem and virtio-gpu under qemu TCG (scripts/vm/).
"$repo/scripts/vm/prepare.sh" "$build_dir/vm-cache" >&2
printf '\n' | tee -a "$results"
# Mesa's complaints while GBM probes the render nodes (which refuse dumb buffers) are noise here.
"$repo/scripts/vm/run-in-guest.sh" "$build_dir/vm-cache" --timeout 240 -- \
    "$build_dir/bench/texshare_import_bench" |
    grep -v -e '^KMS: ' -e '^MESA-LOADER: ' -e '^failed to load driver' | tee -a "$results"
