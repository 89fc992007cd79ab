#!/usr/bin/env bash
#
# run-in-guest.sh: run one command inside the texshare test VM and exit with its status.
#
#   run-in-guest.sh CACHE_DIR [--timeout SECONDS] [--share-dir DIR]... [--env NAME[=VALUE]]...
#                   [--verbose] -- COMMAND [ARGS...]
#
# CACHE_DIR must have been filled by prepare.sh (same checkout: the cache's stamp must
# match prepare.sh and guest-init.sh, or this script refuses with a message).
#
# What the command sees: a qemu guest (TCG, 2 vCPUs, 2 GiB) running the cache's kernel
# (Debian 12's 6.1, or 6.12 from bookworm-backports: prepare.sh --stack) with vgem and
# virtio-gpu loaded, so /dev/dri/card* exist and GBM gives real DMA-BUFs;
# the host's / read-only (9p) as its root; fresh /proc /sys /dev /dev/shm; /run a tmpfs;
# /tmp the host's /tmp read-only under a writable tmpfs (overlay); root user; HOME=/tmp,
# XDG_CACHE_HOME=/tmp/.cache, TEXSHARE_VM_GUEST=1, the cache's guest-env (TEXSHARE_VM_STACK,
# and the Mesa 25 prefix's LD_LIBRARY_PATH etc. for backports); the host's working directory as its
# working directory; stdin from /dev/null. COMMAND and ARGS reach it unchanged (any bytes
# but NUL; spaces and quotes are fine): they are written as a bash script (printf %q) into
# a job directory under the host's /tmp, read by the guest's /init through 9p.
#
# Options:
#   --timeout SECONDS  whole VM, boot to poweroff (default 300; `timeout` kills qemu)
#   --share-dir DIR    DIR (must exist) is mounted read-write at the same path in the
#                      guest, as an extra 9p share, e.g. to leave a PNG in the build tree.
#                      Repeatable; give parents before their children. Everything else
#                      the guest writes (including under /tmp) is lost at poweroff.
#   --env NAME[=VALUE] forward NAME (with the host's value, or VALUE). Forwarded anyway
#                      when set: PATH, LANG, LANGUAGE, TZ, LC_*, TEXSHARE_*, GTEST_*,
#                      *SAN_OPTIONS, MESA_*, LIBGL_*, EGL_*, GBM_*.
#   --verbose          show the boot (kernel and /init) and the poweroff, not only the
#                      command's output
#
# Output: the command's stdout and stderr, both on this script's stdout (they share the
# guest's serial console, so their order is kept), with the guest's boot messages hidden.
# One summary line goes to stderr. Partial lines appear once their newline arrives.
#
# Exit status: the command's own (0-255; 128+N if a signal killed it); 124 if the VM ran
# out of time; 125 if the VM ended without reporting a status (guest kernel panic, qemu
# error, module or mount failure in /init) — the end of the console log is then printed
# to stderr; 2 for a usage error.
#
# Timing on these 2-core machines (TCG): about 6-15 s from start to poweroff for a small
# command; budget more for anything that renders with llvmpipe.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly here

usage() {
    sed -n '5s/^#   /usage: /p; 6s/^#/    /p' "${BASH_SOURCE[0]}" >&2
    exit 2
}
say() { printf 'run-in-guest: %s\n' "$*" >&2; }

[[ $# -ge 1 && $1 != -* ]] || usage
cache=$1
shift
timeout_s=300
verbose=
shares=()
extra_env=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --timeout)
            [[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || usage
            timeout_s=$2
            shift 2
            ;;
        --timeout=*)
            timeout_s=${1#--timeout=}
            [[ $timeout_s =~ ^[0-9]+$ && $timeout_s -gt 0 ]] || usage
            shift
            ;;
        --share-dir)
            [[ $# -ge 2 ]] || usage
            shares+=("$2")
            shift 2
            ;;
        --env)
            [[ $# -ge 2 ]] || usage
            extra_env+=("$2")
            shift 2
            ;;
        --verbose)
            verbose=1
            shift
            ;;
        --)
            shift
            break
            ;;
        *) usage ;;
    esac
done
[[ $# -ge 1 ]] || usage

# The cache must have been built from these very scripts (see prepare.sh).
[[ -f $cache/prepared.stamp && -s $cache/vmlinuz && -s $cache/initramfs.cpio.gz && -f $cache/guest-env ]] || {
    say "error: $cache is not prepared; run: $here/prepare.sh [--stack backports] $cache"
    exit 125
}
recipe_hash=$(cat "$here/prepare.sh" "$here/guest-init.sh" | sha256sum | cut -d' ' -f1)
[[ $(<"$cache/prepared.stamp") == *" recipe=$recipe_hash" ]] || {
    say "error: $cache was prepared by other versions of the scripts; run: $here/prepare.sh [--stack backports] $cache"
    exit 125
}
command -v qemu-system-x86_64 >/dev/null || {
    say "error: qemu-system-x86_64 not found; run: $here/prepare.sh [--stack backports] $cache"
    exit 125
}

job=$(mktemp -d /tmp/texshare-vm.XXXXXX)
readonly job
qemu_pid=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if [[ -n $qemu_pid ]]; then kill "$qemu_pid" 2>/dev/null || true; fi
    rm -rf "$job"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 755 "$job"

nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$nonce" >"$job/nonce"
cwd=$(pwd -P)
[[ $cwd != *$'\n'* ]] || {
    say "error: the working directory's name contains a newline"
    exit 2
}
printf '%s\n' "$cwd" >"$job/cwd"

# run.sh: executed by the guest's /init with `env -i chroot /newroot /bin/bash -c`.
{
    # Mesa finds its shader cache through getpwuid, not HOME: point it into /tmp too.
    echo 'export HOME=/tmp XDG_CACHE_HOME=/tmp/.cache TEXSHARE_VM_GUEST=1'
    while IFS= read -r name; do
        case $name in
            PATH | LANG | LANGUAGE | TZ | LC_* | TEXSHARE_* | GTEST_* | *SAN_OPTIONS | \
                MESA_* | LIBGL_* | EGL_* | GBM_*)
                printf 'export %s=%q\n' "$name" "${!name}"
                ;;
        esac
    done < <(compgen -e)
    # The stack's own environment (prepare.sh): which guest this is, and where the
    # backports guest's Mesa lives. It wins over the forwarded variables; --env over both.
    while IFS= read -r line; do
        [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || continue
        printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"
    done <"$cache/guest-env"
    for spec in "${extra_env[@]}"; do
        name=${spec%%=*}
        [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || {
            say "error: bad --env $spec"
            exit 2
        }
        if [[ $spec == *=* ]]; then
            printf 'export %s=%q\n' "$name" "${spec#*=}"
        elif [[ -v $name ]]; then
            printf 'export %s=%q\n' "$name" "${!name}"
        fi
    done
    printf 'cd -- %q || exit 125\n' "$cwd"
    printf 'exec'
    printf ' %q' "$@"
    printf ' </dev/null\n'
} >"$job/run.sh"

virtfs_path() { printf '%s' "${1//,/,,}"; } # qemu option syntax doubles commas

qemu=(qemu-system-x86_64 -M q35 -cpu max -smp 2 -m 2048 -nographic -no-reboot -nic none
    -kernel "$cache/vmlinuz" -initrd "$cache/initramfs.cpio.gz"
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
    -device virtio-gpu-pci)
: >"$job/shares"
index=0
for dir in "${shares[@]}"; do
    [[ -d $dir ]] || {
        say "error: --share-dir $dir is not a directory"
        exit 2
    }
    dir=$(cd "$dir" && pwd -P)
    [[ $dir != *$'\n'* && $dir != / ]] || {
        say "error: cannot share $dir"
        exit 2
    }
    printf 'share%d %s\n' "$index" "$dir" >>"$job/shares"
    qemu+=(-virtfs "local,path=$(virtfs_path "$dir"),mount_tag=share$index,security_model=none,multidevs=remap")
    index=$((index + 1))
done
append="console=ttyS0 quiet panic=-1 texshare.job=$job"
[[ -n $verbose ]] && append+=" texshare.verbose=1"
qemu+=(-append "$append")

log=$job/console.log
start_marker="TEXSHARE_GUEST_START id=$nonce"
exit_marker=" id=$nonce"

# Reads the serial console: keeps all of it in $log, shows the command's part.
show_console() {
    local line phase=boot
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%$'\r'}
        printf '%s\n' "$line" >>"$log"
        case $phase in
            boot)
                if [[ $line == *"$start_marker"* ]]; then
                    phase=running
                elif [[ -n $verbose ]]; then
                    printf '%s\n' "$line"
                fi
                ;;
            running)
                if [[ $line == *TEXSHARE_GUEST_EXIT=*"$exit_marker" ]]; then
                    phase=poweroff
                    [[ -n $verbose ]] && printf '%s\n' "$line"
                elif [[ -n $line || -n $verbose ]]; then
                    # /init prints an empty line before the marker in case the command's
                    # last line had no newline; that empty line is not the command's.
                    printf '%s\n' "$line"
                fi
                ;;
            poweroff) [[ -n $verbose ]] && printf '%s\n' "$line" ;;
        esac
    done
}

# Not a pipeline: both sides are background jobs with known pids, so a signal to this
# script (Ctrl-C, ctest's timeout) ends qemu too (cleanup kills `timeout`, which passes
# the signal on).
mkfifo "$job/console"
show_console <"$job/console" &
reader_pid=$!
started=$(date +%s.%N)
timeout -k 10 "$timeout_s" "${qemu[@]}" </dev/null >"$job/console" 2>"$job/qemu.err" &
qemu_pid=$!
qemu_status=0
wait "$qemu_pid" || qemu_status=$?
qemu_pid=
wait "$reader_pid" || true
elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

marker=$(grep -aoE "TEXSHARE_GUEST_EXIT=[0-9]+ id=$nonce\$" "$log" | tail -n1 || true)
if [[ -n $marker ]]; then
    status=${marker#TEXSHARE_GUEST_EXIT=}
    status=${status%% *}
    say "command exited with status $status (VM ran $elapsed s)"
    exit "$status"
fi

if [[ $qemu_status -eq 124 || $qemu_status -eq 137 ]]; then
    say "error: the VM did not finish within $timeout_s s and was killed"
    code=124
else
    say "error: the VM ended (qemu status $qemu_status) after $elapsed s without reporting the command's exit status"
    code=125
fi
failure=$(grep -aoE "TEXSHARE_GUEST_FAILED id=$nonce: .*" "$log" | tail -n1 || true)
[[ -z $failure ]] || say "guest /init: ${failure#*: }"
if [[ -s $job/qemu.err ]]; then
    say "qemu stderr:"
    cat "$job/qemu.err" >&2
fi
if grep -aqF "$start_marker" "$log"; then
    say "the guest console is above: the command started but its status never came"
    exit "$code"
fi
say "last lines of the guest console:"
# Without SeaBIOS's terminal escapes (ESC c, ESC [ ... letter).
tail -n 40 "$log" | sed $'s/\x1b\\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' >&2 || true
exit "$code"
