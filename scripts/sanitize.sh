#!/usr/bin/env bash
# Builds the host-lane suite with clang and a sanitizer and runs it; any report fails.
#   scripts/sanitize.sh asan   # AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer)
#   scripts/sanitize.sh tsan   # ThreadSanitizer, on the tests that run several processes
# The VM lane and the packaging tests are left out: one boots a kernel, the other builds
# consumers with the system compiler. BUILD_DIR defaults to build-<sanitizer>/.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/common.sh
source "$repo/scripts/common.sh"

kind="${1:-asan}"
# shellcheck disable=SC2086  # lists of package names, split on purpose
texshare_need_packages $TEXSHARE_CORE_PACKAGES $TEXSHARE_GPU_PACKAGES $TEXSHARE_CLANG_PACKAGES
build_dir="${BUILD_DIR:-$repo/build-$kind}"
case "$kind" in
    asan)
        # vptr is left out: libfmt.so is not instrumented, and at RLIMIT_NOFILE (two tests
        # put the receiver there on purpose) the check cannot read its type info and reports
        # every fmt buffer as an invalid object.
        flags="-fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=all -fno-omit-frame-pointer"
        # Mesa's llvmpipe keeps some allocations for the life of the process on purpose.
        export LSAN_OPTIONS="suppressions=$repo/scripts/lsan.supp:print_suppressions=0"
        export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
        export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
        tests=(-LE "vm|packaging")
        extra=(-DTEXSHARE_BUILD_EXAMPLES=ON)
        ;;
    tsan)
        flags="-fsanitize=thread -fno-omit-frame-pointer"
        export TSAN_OPTIONS="halt_on_error=1:die_after_fork=0"
        tests=(-R "Frame|ChildProcess|AuxChannel|Hostile|Framing|ImageAttack|FdKind|Descriptor|MemoryAttack|BlockingFdAttack|FdCloser|FdProbe")
        # Those tests are all in the core: the GPU layers, tools and example add build time only.
        extra=(-DTEXSHARE_GPU=OFF -DTEXSHARE_BUILD_TOOLS=OFF -DTEXSHARE_BUILD_EXAMPLES=OFF)
        ;;
    *)
        texshare_log "usage: scripts/sanitize.sh asan|tsan"
        exit 2
        ;;
esac
CC=clang-14 CXX=clang++-14 texshare_configure_and_build "$build_dir" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
    -DCMAKE_SHARED_LINKER_FLAGS="$flags" -DTEXSHARE_BUILD_BENCH=OFF "${extra[@]}"
cd "$build_dir"
if [[ "$kind" == asan ]]; then
    # The tests that open an EGL display load Mesa's driver, which leaves a few small
    # allocations made from code it has unloaded by the time LeakSanitizer reports (an
    # "<unknown module>" no suppression can name): the egl/ tests, the vulkan/ tests that load
    # lavapipe, the GL test helpers, texshare-info and the example's udmabuf run (it opens EGL)
    # on this host. Those run under ASan + UBSan without leak checking
    # (texshare-info, a child of its test, inherits ASAN_OPTIONS); all others with it.
    mesa_driver_tests="^Egl|^GlHelpers|^TexshareInfoHost|^VulkanDevice|^VulkanImporter|^VulkanOpaque|^VulkanFormatTable|^VulkanMultiPlane|/VulkanFormatTableAgreement\.|^VulkanYcbcr|^VulkanImportListener|^VulkanExporter|/VulkanExporterDriverTest\.|^VulkanFences|^VulkanPattern\.|^example\.host_renderer_udmabuf$|^example\.host_renderer_vulkan$"
    ctest --output-on-failure --parallel "$(nproc)" "${tests[@]}" -E "$mesa_driver_tests"
    ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" ctest --output-on-failure --parallel "$(nproc)" -R "$mesa_driver_tests"
else
    ctest --output-on-failure --parallel "$(nproc)" "${tests[@]}"
fi
