#!/usr/bin/env bash
# scripts/demo.sh then scripts/test.sh must share one build: test.sh reuses what the demo
# compiled only if both configure with the same cache arguments, and the demo stays quick
# only if it builds the example's target alone. Runs both scripts with cmake, ctest,
# dpkg-query and the example replaced by stubs that log their arguments, and compares.
#   scripts_share_build_test.sh REPO_DIR WORK_DIR
set -euo pipefail
repo="$1"
work="$2"
rm -rf "$work"
mkdir -p "$work/bin" "$work/build/examples/host_renderer"
log="$work/calls.log"

for tool in cmake ctest; do
    printf '#!/bin/sh\necho "%s $*" >>"%s"\n' "$tool" "$log" >"$work/bin/$tool"
done
# Every package reads as installed, so nothing is installed.
printf '#!/bin/sh\necho installed\n' >"$work/bin/dpkg-query"
printf '#!/bin/sh\necho "example $*" >>"%s"\n' "$log" >"$work/build/examples/host_renderer/texshare_host_renderer"
chmod +x "$work/bin/"* "$work/build/examples/host_renderer/texshare_host_renderer"

run() {
    local name="$1"
    shift
    echo "== $name" >>"$log"
    env -u CI -u TEXSHARE_FULL PATH="$work/bin:$PATH" BUILD_DIR="$work/build" "$@" >/dev/null
}
run demo "$repo/scripts/demo.sh"
run test "$repo/scripts/test.sh"
cat "$log"

# The lines of one script's section of the log that start with $2.
calls() {
    awk -v section="== $1" -v prefix="$2" '
        /^== / { inside = ($0 == section); next }
        inside && index($0, prefix) == 1 { print }' "$log"
}
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

demo_configure="$(calls demo "cmake -S")"
test_configure="$(calls test "cmake -S")"
[[ -n "$demo_configure" ]] || fail "demo.sh did not configure"
[[ "$demo_configure" == "$test_configure" ]] ||
    fail "demo.sh and test.sh configure differently, so test.sh would rebuild: '$demo_configure' vs '$test_configure'"
[[ "$(calls demo "cmake --build")" == "cmake --build $work/build --target texshare_host_renderer" ]] ||
    fail "demo.sh must build only texshare_host_renderer, not: $(calls demo "cmake --build")"
[[ "$(calls test "cmake --build")" == "cmake --build $work/build" ]] ||
    fail "test.sh must build everything, not: $(calls test "cmake --build")"
[[ -n "$(calls demo "example")" ]] || fail "demo.sh did not run the example"
[[ -n "$(calls test "ctest")" ]] || fail "test.sh did not run ctest"
echo "demo.sh and test.sh share one build"
