#!/usr/bin/env bash
# User-space instructions per round trip of section 1's rows, both processes together
# (the numbers beside the README's table 1): runs `texshare_bench --cost=MODE` under
# valgrind --tool=callgrind --trace-children=yes at two iteration counts and divides the
# difference, so setup and teardown cancel out.
#   bench/count_instructions.sh [BENCH_BINARY] [MODES...]
# BENCH_BINARY defaults to build-bench/bench/texshare_bench (scripts/bench.sh builds it);
# MODES to raw raw_fd texshare texshare_fd raw_paced paced (the last two: a paced frame's 4
# messages sent raw, and texshare's begin_frame -> present -> presented + release). Needs
# valgrind. LOW and HIGH (default 200 and 2200) are the two iteration counts: the guest
# section's rows (guest_copy, guest_udmabuf: a 1920x1080 frame each) want fewer, e.g. LOW=5 HIGH=25.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$(realpath "${1:-$repo/build-bench/bench/texshare_bench}")"
shift || true
modes=("$@")
[[ ${#modes[@]} -gt 0 ]] || modes=(raw raw_fd texshare texshare_fd raw_paced paced)
low=${LOW:-200}
high=${HIGH:-2200}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Instructions of every process of one run, summed (one callgrind.out per process).
instructions() {
    local mode=$1 iterations=$2 dir="$work/$1-$2"
    mkdir -p "$dir"
    (cd "$dir" && valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$dir/out.%p" \
        "$bin" --cost="$mode" --iterations="$iterations" >/dev/null 2>"$dir/valgrind.log") || {
        cat "$dir/valgrind.log" >&2
        return 1
    }
    awk '/^summary:/ { total += $2 } END { print total }' "$dir"/out.*
}

for mode in "${modes[@]}"; do
    a=$(instructions "$mode" $low)
    b=$(instructions "$mode" $high)
    printf '%s: %d instructions per round trip (or frame)\n' "$mode" $(((b - a) / (high - low)))
done
