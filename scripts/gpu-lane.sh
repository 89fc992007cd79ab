#!/usr/bin/env bash
# The GPU lane: texshare on a real NVIDIA GPU (the accelerator machine this workplace lends
# through its `device` tool; CI never runs it). Two halves, because that machine has the
# driver but no Debian packages and no network:
#
#   scripts/gpu-lane.sh stage [BUILD_DIR]   here, on Debian 12: builds the lane's binaries
#       (target texshare_gpu_lane, the example) and puts them, the shared libraries they need
#       beyond glibc and libstdc++, and the Vulkan/EGL loader packages into .gpu/ and .gl/
#       (both ignored by git, carried by the device tool).
#   scripts/gpu-lane.sh run OUT_DIR         there, in the repository root, as root: unpacks
#       the loaders, runs every lane binary and the example, and writes OUT_DIR/gpu-lane.log.
#       Exit status 0 only when every step passed.
#
# The device tool call (from the repository root here):
#   run(command="scripts/gpu-lane.sh run $OUT", carry=[".gl", ".gpu"])
# docs/gpu-lane.md holds the latest log, the machine and the commit it ran.
set -euo pipefail
cd "$(dirname "$0")/.."

stage() {
    local build="${1:-build}"
    ninja -C "$build" texshare_gpu_lane texshare_info texshare_host_renderer
    rm -rf .gpu && mkdir -p .gpu/bin .gpu/lib .gl
    local lane_tests vulkan_tests
    lane_tests=$(sed -n 's/^set(TEXSHARE_GPU_LANE_TESTS \(.*\))$/\1/p' tests/gpu/GpuLane.cmake)
    vulkan_tests=$(sed -n '/^set(TEXSHARE_GPU_LANE_VULKAN_TESTS/,/)/p' tests/gpu/GpuLane.cmake |
        sed 's/set(TEXSHARE_GPU_LANE_VULKAN_TESTS//; s/)//')
    for test in $lane_tests $vulkan_tests; do cp "$build/tests/$test" .gpu/bin/; done
    cp "$build/examples/host_renderer/texshare_host_renderer" .gpu/bin/host_renderer
    cp "$build/tools/texshare_info/texshare-info" .gpu/bin/
    strip .gpu/bin/*
    # Every library the binaries load beyond the C and C++ runtimes and the Vulkan/GL
    # loaders (those come from .gl/ and the driver): libfmt, libdrm, GBM, libepoxy and theirs.
    ldd .gpu/bin/* | awk '/=> \// {print $3}' | sort -u |
        grep -v -E '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|libvulkan|libEGL|libGL|libGLX|libGLdispatch|libOpenGL)\.so' |
        xargs -r -I{} cp -L {} .gpu/lib/
    git rev-parse HEAD >.gpu/commit
    git status --porcelain --untracked-files=no | grep -q . && echo "+ uncommitted changes" >>.gpu/commit
    if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
        local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
        mkdir -p /tmp/amd64/partial
        apt-get "${o[@]}" update >/dev/null
        (cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
    fi
    du -sh .gpu .gl
}

run() {
    local out="$1" log status=0
    mkdir -p "$out"
    log="$out/gpu-lane.log"
    for deb in .gl/*.deb; do dpkg -x "$deb" /; done
    ldconfig
    export LD_LIBRARY_PATH="$PWD/.gpu/lib"
    # NVIDIA's ICD and EGL vendor files where the workplace's image keeps them.
    [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] &&
        export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ] &&
        export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    {
        echo "# texshare GPU lane, $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "commit: $(cat .gpu/commit | tr '\n' ' ')"
        echo "machine: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1), $(nproc) cores, kernel $(uname -r)"
    } | tee "$log"
    echo "## texshare-info" | tee -a "$log"
    timeout 120 .gpu/bin/texshare-info 2>&1 | grep -v -E '^    [A-Z0-9]+ \(' | tee -a "$log" || status=1
    for binary in .gpu/bin/*_test; do
        echo "## $(basename "$binary")" | tee -a "$log"
        if ! timeout 480 "$binary" 2>&1 | tee -a "$log"; then status=1; echo "FAILED: $binary" | tee -a "$log"; fi
    done
    echo "## host_renderer --api=vulkan" | tee -a "$log"
    if ! timeout 120 .gpu/bin/host_renderer --api=vulkan --frames=1000 2>&1 | tee -a "$log"; then
        status=1; echo "FAILED: host_renderer --api=vulkan" | tee -a "$log"
    fi
    echo "result: $([ $status = 0 ] && echo PASSED || echo FAILED)" | tee -a "$log"
    return $status
}

case "${1:-}" in
    stage) shift; stage "$@" ;;
    run) shift; run "${1:?run needs an output directory}" ;;
    *) echo "usage: $0 stage [BUILD_DIR] | run OUT_DIR" >&2; exit 2 ;;
esac
