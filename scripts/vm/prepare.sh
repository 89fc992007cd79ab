#!/usr/bin/env bash
#
# prepare.sh CACHE_DIR: get everything the texshare VM test lane needs, once.
#
# The lane boots a small qemu guest (TCG; these machines have no KVM and no GPU) with
# Debian 12's own 6.1 kernel, whose vgem and virtio-gpu drivers export real DMA-BUFs that
# the host kernel cannot make. run-in-guest.sh boots what this script leaves in CACHE_DIR:
#
#   CACHE_DIR/kernel/             linux-image-6.1.0-*-amd64 unpacked with dpkg-deb -x
#                                 (not installed: the host keeps its own kernel), then
#                                 depmod -b so modules.dep exists
#   CACHE_DIR/vmlinuz             symlink to kernel/boot/vmlinuz-<version>
#   CACHE_DIR/initramfs.cpio.gz   busybox-static, /init (guest-init.sh beside this file)
#                                 and the .ko files, decompressed, in load order
#   CACHE_DIR/prepared.stamp      kernel version + a hash of this script and
#                                 guest-init.sh; run-in-guest.sh refuses a stale cache
#
# Host packages installed when missing (apt-get, noninteractive, `apt-get update` only when
# something must be installed or the kernel package is unknown): qemu-system-x86,
# busybox-static, cpio, kmod, xz-utils. Needs root (or sudo) only for those installs.
#
# Idempotent: a second run finds the stamp current, verifies the files and returns in well
# under a second. A kernel already unpacked is reused even when Debian has published a
# newer one; delete CACHE_DIR/kernel to move on. TEXSHARE_VM_KERNEL_PKG=linux-image-...
# chooses the kernel package explicitly.
#
# Modules loaded in the guest: virtio_pci, 9pnet_virtio, 9p, overlay (for /tmp), vgem,
# virtio_gpu and all their dependencies (drm, drm_shmem_helper, drm_kms_helper,
# virtio_dma_buf, netfs, fscache, ...), ordered by `modprobe --show-depends` against the
# unpacked tree. Debian ships them as .ko.xz and busybox insmod cannot decompress, so
# they are decompressed here.
#
# Exit status: 0 ready; non-zero with a message on stderr otherwise.
set -euo pipefail

readonly packages=(qemu-system-x86 busybox-static cpio kmod xz-utils)
readonly guest_modules=(virtio_pci 9pnet_virtio 9p overlay vgem virtio_gpu)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly here
readonly init_script="$here/guest-init.sh"

log() { printf 'prepare.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

if [[ $# -ne 1 || $1 == -* ]]; then
    echo "usage: $0 CACHE_DIR" >&2
    exit 2
fi
[[ -f $init_script ]] || die "missing $init_script"
mkdir -p "$1"
cache=$(cd "$1" && pwd)
readonly cache
readonly kdir="$cache/kernel"
readonly stamp="$cache/prepared.stamp"

# The same hash run-in-guest.sh computes: the initramfs must match these two scripts.
recipe_hash=$(cat "$here/prepare.sh" "$init_script" | sha256sum | cut -d' ' -f1)
readonly recipe_hash

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $*"
    fi
}

apt_updated=
apt_update_once() {
    if [[ -z $apt_updated ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        apt_updated=1
    fi
}

is_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

install_missing_packages() {
    local missing=() p
    for p in "${packages[@]}"; do
        is_installed "$p" || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "installing ${missing[*]}"
    apt_update_once
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# Prints the release (e.g. 6.1.0-56-amd64) of the kernel unpacked in $kdir, if complete.
unpacked_release() {
    [[ -f $cache/kernel.release ]] || return 0
    local release
    release=$(<"$cache/kernel.release")
    if [[ -f $kdir/boot/vmlinuz-$release && -d $kdir/lib/modules/$release ]]; then
        printf '%s\n' "$release"
    fi
}

kernel_package_name() {
    if [[ -n ${TEXSHARE_VM_KERNEL_PKG:-} ]]; then
        printf '%s\n' "$TEXSHARE_VM_KERNEL_PKG"
        return 0
    fi
    local name
    name=$(apt-cache depends linux-image-amd64 2>/dev/null \
        | grep -oE 'linux-image-6\.1\.0-[0-9]+-amd64(-unsigned)?' | head -n1 || true)
    if [[ -z $name ]]; then
        name=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64(-unsigned)?$' \
            2>/dev/null | cut -d' ' -f1 | sort -V | tail -n1 || true)
    fi
    printf '%s\n' "$name"
}

fetch_kernel() {
    local pkg work release
    pkg=$(kernel_package_name)
    if [[ -z $pkg ]]; then
        apt_update_once
        pkg=$(kernel_package_name)
    fi
    [[ -n $pkg ]] || die "no linux-image-6.1.0-*-amd64 package known to apt (is this Debian 12?)"
    work=$(mktemp -d "$cache/download.XXXXXX")
    log "downloading $pkg"
    # The sandbox user _apt cannot write into a root-only mktemp directory.
    if ! (cd "$work" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >&2); then
        apt_update_once
        (cd "$work" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >&2) \
            || die "apt-get download $pkg failed"
    fi
    log "unpacking $pkg"
    mkdir "$work/tree"
    dpkg-deb -x "$work"/*.deb "$work/tree"
    # Debian 12 ships modules under /lib; later releases under /usr/lib.
    if [[ ! -d $work/tree/lib/modules && -d $work/tree/usr/lib/modules ]]; then
        ln -s usr/lib "$work/tree/lib"
    fi
    release=$(find "$work/tree/lib/modules/" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n1)
    [[ -n $release && -f $work/tree/boot/vmlinuz-$release ]] \
        || die "$pkg has no boot/vmlinuz or lib/modules"
    rm -rf "$kdir"
    mv "$work/tree" "$kdir"
    rm -rf "$work"
    printf '%s\n' "$release" >"$cache/kernel.release"
}

build_initramfs() {
    local release=$1 root line path name busybox applet
    root=$(mktemp -d "$cache/initramfs.XXXXXX")
    mkdir -p "$root"/{bin,dev,etc,proc,sys,tmp,job,newroot,hostview,lib/modules}

    busybox=$(command -v busybox || true)
    [[ -x /bin/busybox ]] && busybox=/bin/busybox
    [[ -n $busybox ]] || die "busybox not found"
    file -b "$busybox" 2>/dev/null | grep -q 'statically linked' \
        || ldd "$busybox" 2>&1 | grep -q 'not a dynamic' \
        || die "$busybox is not static (install busybox-static)"
    cp "$busybox" "$root/bin/busybox"
    for applet in $("$busybox" --list); do
        [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
    done
    install -m 0755 "$init_script" "$root/init"
    # The kernel opens /dev/console for init before anything is mounted.
    mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

    local m plan=
    for m in "${guest_modules[@]}"; do
        plan+=$(modprobe -C /dev/null -d "$kdir" -S "$release" --show-depends "$m") \
            || die "modprobe cannot resolve $m for kernel $release"
        plan+=$'\n'
    done
    : >"$root/etc/texshare-modules"
    while read -r line; do
        [[ -n $line ]] || continue
        case $line in
            insmod\ *) ;;
            builtin\ *) continue ;;
            *) die "unexpected modprobe output: $line" ;;
        esac
        path=${line#insmod }
        path=${path%% *}
        name=$(basename "$path")
        name=${name%.xz}
        name=${name%.zst}
        name=${name%.gz}
        name=${name%.ko}
        [[ -e $root/lib/modules/$name.ko ]] && continue
        case $path in
            *.ko.xz) xz -dc "$path" >"$root/lib/modules/$name.ko" ;;
            *.ko.zst) zstd -qdc "$path" >"$root/lib/modules/$name.ko" ;;
            *.ko.gz) gzip -dc "$path" >"$root/lib/modules/$name.ko" ;;
            *.ko) cp "$path" "$root/lib/modules/$name.ko" ;;
            *) die "unknown module file $path" ;;
        esac
        printf '%s\n' "$name" >>"$root/etc/texshare-modules"
    done <<<"$plan"
    log "modules: $(tr '\n' ' ' <"$root/etc/texshare-modules")"

    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort \
        | cpio --quiet -o -H newc -R 0:0 | gzip -6 -n) >"$cache/initramfs.cpio.gz.tmp"
    mv "$cache/initramfs.cpio.gz.tmp" "$cache/initramfs.cpio.gz"
    rm -rf "$root"
}

cache_is_current() {
    [[ -f $stamp && $(<"$stamp") == "kernel=$1 recipe=$recipe_hash" ]] || return 1
    [[ -s $cache/vmlinuz && -f $kdir/lib/modules/$1/modules.dep ]] || return 1
    gzip -t "$cache/initramfs.cpio.gz" 2>/dev/null
}

install_missing_packages

release=$(unpacked_release)
if [[ -n $release ]] && cache_is_current "$release"; then
    log "cache $cache is ready (kernel $release)"
    exit 0
fi

rm -f "$stamp"
if [[ -z $release ]]; then
    fetch_kernel
    release=$(unpacked_release)
    [[ -n $release ]] || die "kernel unpack incomplete"
fi
log "depmod $release"
depmod -b "$kdir" "$release"
ln -sfn "kernel/boot/vmlinuz-$release" "$cache/vmlinuz"
build_initramfs "$release"
printf 'kernel=%s recipe=%s\n' "$release" "$recipe_hash" >"$stamp"
cache_is_current "$release" || die "cache verification failed after building"
log "cache $cache is ready (kernel $release)"
