#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for a bounded time.
#   scripts/fuzz.sh [seconds per target, default 60]
# Each run starts from a copy of the target's corpus in tests/fuzz/corpus; a crash leaves
# its input in build-fuzz/crashes/<target>/ and fails the script. Keep that input in the
# corpus (as crash-<what>) once the bug is fixed: the replay tests then run it forever.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/common.sh
source "$repo/scripts/common.sh"

seconds="${1:-60}"
# shellcheck disable=SC2086  # lists of package names, split on purpose
texshare_need_packages $TEXSHARE_CORE_PACKAGES $TEXSHARE_CLANG_PACKAGES
build_dir="${BUILD_DIR:-$repo/build-fuzz}"
targets=(fuzz_frame_message fuzz_image_descriptor fuzz_frame_state)
CC=clang-14 CXX=clang++-14 cmake -S "$repo" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTEXSHARE_FUZZ=ON -DTEXSHARE_GPU=OFF -DTEXSHARE_BUILD_EXAMPLES=OFF -DTEXSHARE_BUILD_TOOLS=OFF -DTEXSHARE_BUILD_BENCH=OFF
cmake --build "$build_dir" --target "${targets[@]}"  # the fuzzers only, not the whole suite
status=0
for target in "${targets[@]}"; do
    work="$build_dir/corpus/$target"
    crashes="$build_dir/crashes/$target"
    rm -rf "$work" && mkdir -p "$work" "$crashes"
    cp "$repo/tests/fuzz/corpus/$target"/* "$work"/
    texshare_log "fuzzing $target for ${seconds}s"
    if ! "$build_dir/tests/$target" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$crashes/" "$work" 2>"$build_dir/$target.log"; then
        texshare_log "$target found a crash; input in $crashes"
        tail -n 40 "$build_dir/$target.log" >&2
        status=1
    fi
    grep -E "stat::number_of_executed_units" "$build_dir/$target.log" | sed "s/^/$target: /" >&2 || true
done
exit "$status"
