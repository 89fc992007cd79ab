#!/usr/bin/env bash
# Builds texshare's example (its target and what it links, nothing else) and runs it: a
# host allocates a 3-image swapchain (GBM DMA-BUFs where a DRM device can allocate, sealed
# memfds otherwise), shares it once with a renderer child it spawns, and from then on the
# two exchange only image ids per frame while the host checks every pixel (through EGL
# where it can import the DMA-BUFs, a CPU mapping otherwise); mid-way the host resizes the
# swapchain, SIGKILLs the renderer and spawns another, then prints a summary. On a fresh
# Debian 12 machine it first installs what it needs with apt-get, and only what is missing.
#   scripts/demo.sh [--vm[=bookworm|backports]] [host_renderer arguments, e.g. --frames=600
#                   --size=640x480 --allocator=heap|udmabuf]
# --vm runs the example inside the qemu guest of the VM test lane (scripts/vm/), whose
# vgem and virtio-gpu give real DMA-BUFs, so the GBM + EGL path runs on a machine without
# a GPU; the guest is prepared (cached in the build tree) on first use, about 20 s.
# --vm=backports boots the second guest (6.12 kernel, Mesa 25), the one with DMA-BUF heaps
# and udmabuf, for --allocator=heap or --allocator=udmabuf (a renderer without a GPU whose
# memfds the host imports through udmabuf where its EGL can, else reads with a copy); given
# no example arguments, it also runs the example's --api=vulkan mode in that guest (a
# renderer that exports images and draws with Vulkan, a host that imports them with Vulkan:
# Mesa 25's lavapipe), its last frame in ..._vm_vulkan.png. `--api=vulkan` runs that mode
# alone, anywhere; without a Vulkan driver that shares images (Debian 12's lavapipe) the
# example says what is missing and exits 3. The demo ends by saying which path the frames
# took (each run's "frames read through" line: import path and fence mode).
# BUILD_DIR (default build/ in the repository) chooses the build tree; the PNG of the last
# frame is written into it (host_renderer_last_frame.png, or ..._vm.png with --vm) unless
# --output=PATH is given.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/common.sh
source "$repo/scripts/common.sh"

# --vm is ours, everything else is the example's.
vm=
arguments=()
for argument in "$@"; do
    if [[ "$argument" == --vm || "$argument" == --vm=bookworm ]]; then
        vm=bookworm
    elif [[ "$argument" == --vm=backports ]]; then
        vm=backports
    elif [[ "$argument" == --vm=* ]]; then
        texshare_log "unknown guest in $argument (bookworm or backports)"
        exit 2
    else
        arguments+=("$argument")
    fi
done

# shellcheck disable=SC2086  # a list of package names, split on purpose
texshare_need_packages $TEXSHARE_CORE_PACKAGES $TEXSHARE_GPU_PACKAGES
build_dir="${BUILD_DIR:-$repo/build}"
mkdir -p "$build_dir"
build_dir="$(cd "$build_dir" && pwd)"
# Configured like test.sh (the same cache, so its build reuses this one), but only the
# example and what it links are built: the demo needs none of the tests.
texshare_configure "$build_dir" "${TEXSHARE_SHARED_CMAKE_ARGS[@]}"
texshare_build "$build_dir" texshare_host_renderer

# The PNG goes into the build tree unless the caller chose a path.
output="$build_dir/host_renderer_last_frame${vm:+_vm}.png"
extra=("--output=$output")
for argument in "${arguments[@]}"; do
    if [[ "$argument" == --output=* ]]; then
        output="${argument#--output=}"
        extra=()
    fi
done

example="$build_dir/examples/host_renderer/texshare_host_renderer"
# The example's log, kept to say at the end which path the frames took.
log="$(mktemp /tmp/texshare-demo.XXXXXX)"
trap 'rm -f "$log"' EXIT
say_path() {
    local line found=
    while IFS= read -r line; do
        found=1
        echo "demo: path taken: $line"
    done < <(grep -o 'frames read through .*' "$log" || true)
    if [[ -z "$found" && "${status:-0}" == 3 ]]; then
        echo "demo: path taken: none: this machine cannot run the mode asked for (the example said why above)"
    elif [[ -z "$found" ]]; then
        echo "demo: path taken: unknown (the example printed no \"frames read through\" line)"
    fi
}
if [[ -z "$vm" ]]; then
    status=0
    "$example" "${extra[@]}" "${arguments[@]}" | tee "$log" || status=$?
    say_path
    if [[ "$status" != 3 ]]; then
        echo "demo: the last frame is in $output"
    fi
    exit "$status"
fi

# The guest sees the host's root read-only and loses everything else it writes at
# poweroff, so the directory the PNG goes to is shared with it read-write.
output_dir="$(cd "$(dirname "$output")" 2>/dev/null && pwd -P)" || {
    texshare_log "the directory of --output=$output does not exist"
    exit 2
}
if [[ "$vm" == backports ]]; then
    cache="$build_dir/vm-cache-backports"
    "$repo/scripts/vm/prepare.sh" --stack backports "$cache"
else
    cache="$build_dir/vm-cache"
    "$repo/scripts/vm/prepare.sh" "$cache"
fi
# Mesa's kms_swrast prints "KMS: DRM_IOCTL_MODE_CREATE_DUMB failed" and "MESA-LOADER: failed
# to open vgem" while GBM probes the render nodes: vgem and virtio_gpu refuse dumb buffers
# there, and the allocator then moves on to a primary node.
status=0
if [[ "$vm" == backports && ${#arguments[@]} -eq 0 ]]; then
    # Both modes in one boot: the default one, then --api=vulkan (the first failure's status).
    vulkan_output="${output%.png}_vulkan.png"
    # shellcheck disable=SC2016  # expanded by the guest's bash
    "$repo/scripts/vm/run-in-guest.sh" "$cache" --share-dir "$output_dir" -- \
        bash -c '"$1" --output="$2"; first=$?; "$1" --api=vulkan --output="$3"; second=$?
                 exit $(( first != 0 ? first : second ))' demo "$example" "$output" "$vulkan_output" |
        tee "$log" || status=$?
    say_path
    echo "demo: the last frames (rendered in the $vm guest) are in $output and $vulkan_output (--api=vulkan)"
    exit "$status"
fi
"$repo/scripts/vm/run-in-guest.sh" "$cache" --share-dir "$output_dir" -- \
    "$example" "${extra[@]}" "${arguments[@]}" | tee "$log" || status=$?
say_path
echo "demo: the last frame (rendered in the $vm guest) is in $output"
exit "$status"
