#!/bin/sh
# shellcheck shell=sh
#
# guest-init.sh: the /init of the texshare test VM's initramfs (busybox sh, PID 1).
#
# Not run by hand: prepare.sh copies it into CACHE_DIR/initramfs.cpio.gz as /init, and
# run-in-guest.sh boots that initramfs. The two scripts and this one share a small
# protocol, described here once:
#
#   kernel command line  texshare.job=/tmp/texshare-vm.XXXXXX  (a host directory, read
#                        through the 9p root; no spaces, made by mktemp)
#                        texshare.verbose=1                    (optional: narrate boot)
#   JOB/nonce            random token; the markers carry it so that a command that
#                        happens to print a marker-looking line cannot fake its status
#   JOB/cwd              the host's working directory (one line)
#   JOB/run.sh           bash script run as `env -i chroot /newroot /bin/bash -c SCRIPT`:
#                        exports the forwarded environment, cds, execs the command
#   JOB/shares           zero or more lines "TAG PATH": extra 9p shares, mounted
#                        read-write at PATH in the same order
#   console output       "TEXSHARE_GUEST_START id=NONCE" before the command runs,
#                        "TEXSHARE_GUEST_EXIT=N id=NONCE" after it (N = its exit status),
#                        "TEXSHARE_GUEST_FAILED id=NONCE: why" if the guest could not run it.
#
# Why it is built this way:
# - The host's / comes in read-only over 9p (tag hostroot) and the command runs chrooted
#   into it, so the guest uses the host's own binaries and libraries (Mesa, the build
#   tree) without copying anything. Fresh proc, sys, devtmpfs (+ devpts, /dev/shm) and
#   tmpfs on /tmp (see below) and /run make the read-only root usable.
# - /tmp is an overlay: the host's /tmp read-only below, a tmpfs above, so a test binary
#   or build tree in the host's /tmp is visible and the guest can write scratch files
#   (they vanish with the VM). /run is a plain tmpfs; a working directory under /run (or
#   under /tmp, should the overlay fail) is bind-mounted back read-only from a second,
#   submount-free view of the 9p root.
# - The job is copied into the initramfs before /tmp is covered, and run.sh is handed to
#   bash as a string, so the command inherits no extra file descriptor.
# - `stty -onlcr` keeps the command's bytes unchanged on the serial line (no \r added).
# - Any failure ends in `poweroff -f`; if even that fails, PID 1 exits, the kernel panics,
#   panic=-1 reboots and qemu's -no-reboot ends the VM. The host never waits for nothing.

PATH=/bin
export PATH

nonce=unknown
verbose=
say() { [ -n "$verbose" ] && echo "texshare-init: $*"; return 0; }
finish() {
    sync
    poweroff -f
    sleep 5
    exit 1
}
fail() {
    echo
    echo "TEXSHARE_GUEST_FAILED id=$nonce: $*"
    finish
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

job=
# shellcheck disable=SC2013 # the command line is words, not lines
for word in $(cat /proc/cmdline); do
    case $word in
        texshare.job=*) job=${word#texshare.job=} ;;
        texshare.verbose=1) verbose=1 ;;
    esac
done

while read -r module; do
    say "insmod $module"
    insmod "/lib/modules/$module.ko" || echo "texshare-init: warning: insmod $module failed"
done </etc/texshare-modules

# 9pnet_virtio binds to its PCI device as the modules load; give it a moment if needed.
mounted=
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    if mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose \
        hostroot /newroot 2>/dev/null; then
        mounted=1
        break
    fi
    usleep 100000
done
[ -n "$mounted" ] || fail "cannot mount the host root (9p tag hostroot)"

[ -n "$job" ] || fail "no texshare.job= on the kernel command line"
[ -f "/newroot$job/run.sh" ] || fail "job directory $job not readable through 9p"
cp "/newroot$job/run.sh" "/newroot$job/cwd" "/newroot$job/nonce" /job/ \
    || fail "cannot copy the job"
[ -f "/newroot$job/shares" ] && cp "/newroot$job/shares" /job/
nonce=$(cat /job/nonce)
cwd=$(cat /job/cwd)

# A second, submount-free view of the host root, to bind paths back from.
mount -o bind /newroot /hostview || fail "cannot bind the host root"

mount -t proc proc /newroot/proc || fail "cannot mount /proc"
mount -t sysfs sysfs /newroot/sys || fail "cannot mount /sys"
mount -t devtmpfs devtmpfs /newroot/dev || fail "cannot mount /dev"
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
# /tmp: the host's /tmp (read-only lower layer) under a tmpfs upper layer, so files the
# host left there (a test binary, a build tree) are visible and writes stay in the guest.
mkdir -p /scratch
mount -t tmpfs -o mode=755 tmpfs /scratch
mkdir -p /scratch/upper /scratch/work
chmod 1777 /scratch/upper
if ! mount -t overlay overlay \
    -o lowerdir=/hostview/tmp,upperdir=/scratch/upper,workdir=/scratch/work /newroot/tmp; then
    echo "texshare-init: warning: no overlay on /tmp; a plain tmpfs hides the host's /tmp"
    mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp || fail "cannot mount /tmp"
fi
mount -t tmpfs -o mode=755 tmpfs /newroot/run

# Only when the overlay failed (/tmp) or for /run: bring the working directory back.
case $cwd in
    /tmp/* | /run/*)
        if [ ! -d "/newroot$cwd" ]; then
            mkdir -p "/newroot$cwd"
            mount -o bind "/hostview$cwd" "/newroot$cwd" \
                || fail "cannot bind the working directory $cwd"
        fi
        ;;
esac

if [ -f /job/shares ]; then
    while read -r tag path; do
        mkdir -p "/newroot$path" 2>/dev/null
        say "mount share $tag at $path"
        mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none \
            "$tag" "/newroot$path" || fail "cannot mount the share $path (tag $tag)"
    done </job/shares
fi

stty -onlcr 2>/dev/null
say "running the command"
echo "TEXSHARE_GUEST_START id=$nonce"
env -i /bin/chroot /newroot /bin/bash -c "$(cat /job/run.sh)"
status=$?
echo
echo "TEXSHARE_GUEST_EXIT=$status id=$nonce"

if [ -f /job/shares ]; then
    while read -r tag path; do
        umount "/newroot$path" 2>/dev/null
    done </job/shares
fi
finish
