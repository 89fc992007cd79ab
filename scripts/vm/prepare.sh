#!/usr/bin/env bash
#
# prepare.sh [--stack bookworm|backports] CACHE_DIR: get everything one texshare VM test
# guest needs, once.
#
# The lane boots small qemu guests (TCG; these machines have no KVM and no GPU) whose
# kernels export real DMA-BUFs that the host kernel cannot make. Two stacks, one cache
# directory each:
#   bookworm   (default) Debian 12's own 6.1 kernel (vgem, virtio-gpu) with the host's own
#              Mesa 22.3, seen through the guest's 9p root.
#   backports  bookworm-backports' 6.12 kernel (also DMA-BUF heaps and udmabuf, syncobj on
#              virtio-gpu) with Mesa 25 from bookworm-backports. The host is never upgraded:
#              the .debs are fetched with a private apt state under CACHE_DIR/apt (the host's
#              sources and package database are untouched) and unpacked into CACHE_DIR/mesa,
#              a prefix the guest uses through LD_LIBRARY_PATH, GBM_BACKENDS_PATH and copies
#              of Mesa's EGL vendor and Vulkan ICD files with absolute library paths. A
#              prefix rather than a root file system: the guest keeps running the host's
#              build tree and libraries, so one build serves both guests, and the prefix is
#              40 MB instead of a whole Debian tree.
# run-in-guest.sh boots what this script leaves in CACHE_DIR:
#
#   CACHE_DIR/kernel/             the kernel package unpacked with dpkg-deb -x (not
#                                 installed: the host keeps its own kernel), then
#                                 depmod -b so modules.dep exists
#   CACHE_DIR/vmlinuz             symlink to kernel/boot/vmlinuz-<version>
#   CACHE_DIR/initramfs.cpio.gz   busybox-static, /init (guest-init.sh beside this file)
#                                 and the .ko files, decompressed, in load order
#   CACHE_DIR/guest-env           NAME=VALUE lines every guest command gets:
#                                 TEXSHARE_VM_STACK always, the Mesa prefix's for backports
#   CACHE_DIR/mesa/               (backports) the unpacked Mesa 25 and libdrm 2.4.123
#   CACHE_DIR/prepared.stamp      stack + kernel version + a hash of this script and
#                                 guest-init.sh; run-in-guest.sh refuses a stale cache
#
# Host packages installed when missing (apt-get, noninteractive, `apt-get update` only when
# something must be installed or the kernel package is unknown): qemu-system-x86,
# busybox-static, cpio, kmod, xz-utils. Needs root (or sudo) only for those installs.
#
# Idempotent: a second run finds the stamp current, verifies the files and returns in well
# under a second. A kernel already unpacked is reused even when Debian has published a
# newer one; delete CACHE_DIR/kernel to move on. TEXSHARE_VM_KERNEL_PKG=linux-image-...
# chooses the kernel package explicitly; TEXSHARE_VM_BACKPORTS_MIRROR the archive the
# backports come from (default: the one the host's apt uses for bookworm).
#
# Modules loaded in the guest: virtio_pci, 9pnet_virtio, 9p, overlay (for /tmp), vgem,
# virtio_gpu and all their dependencies (drm, drm_shmem_helper, drm_kms_helper,
# virtio_dma_buf, netfs, fscache, ...), ordered by `modprobe --show-depends` against the
# unpacked tree (built-in ones, like 6.12's virtio_pci, are skipped). Debian ships them as
# .ko.xz and busybox insmod cannot decompress, so they are decompressed here.
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

stack=bookworm
if [[ ${1:-} == --stack && $# -ge 2 ]]; then
    stack=$2
    shift 2
elif [[ ${1:-} == --stack=* ]]; then
    stack=${1#--stack=}
    shift
fi
readonly stack
if [[ $# -ne 1 || $1 == -* || ! $stack =~ ^(bookworm|backports)$ ]]; then
    echo "usage: $0 [--stack bookworm|backports] CACHE_DIR" >&2
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
backports_updated=
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
    # A cache of the other stack is not reused (caches from before stacks are bookworm's).
    local release kernel_stack=bookworm
    [[ -f $cache/kernel.stack ]] && kernel_stack=$(<"$cache/kernel.stack")
    [[ $kernel_stack == "$stack" ]] || return 0
    release=$(<"$cache/kernel.release")
    if [[ -f $kdir/boot/vmlinuz-$release && -d $kdir/lib/modules/$release ]]; then
        printf '%s\n' "$release"
    fi
}

# apt-get / apt-cache against the stack's package sources: the host's own for bookworm; for
# backports a private state in $apt_dir (its own sources.list, lists, cache and an empty
# dpkg status, so candidates are only backports versions and nothing on the host changes).
readonly apt_dir="$cache/apt"
stack_apt() {
    local tool=$1
    shift
    if [[ $stack == backports ]]; then
        "$tool" -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
            -o Dir::State::Lists="$apt_dir/lists" -o Dir::State::Status="$apt_dir/status" \
            -o Dir::Cache="$apt_dir/cache" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= "$@"
    else
        "$tool" "$@"
    fi
}

backports_mirror() {
    if [[ -n ${TEXSHARE_VM_BACKPORTS_MIRROR:-} ]]; then
        printf '%s\n' "$TEXSHARE_VM_BACKPORTS_MIRROR"
        return 0
    fi
    local uri
    uri=$(apt-cache policy 2>/dev/null | awk '$3 ~ /^bookworm\/main$/ { print $2; exit }')
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# `apt-get update` for the stack: the host's (as root) or the private backports state.
stack_apt_update() {
    if [[ $stack != backports ]]; then
        apt_update_once
        return 0
    fi
    # Its own flag: the host's `apt-get update` (installing qemu on a fresh machine) says
    # nothing about the private backports lists.
    [[ -z $backports_updated ]] || return 0
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    : >"$apt_dir/status"
    printf 'deb %s bookworm-backports main\n' "$(backports_mirror)" >"$apt_dir/sources.list"
    log "apt-get update (bookworm-backports, private state in $apt_dir)"
    stack_apt apt-get -q -o APT::Sandbox::User=root update >&2 || die "apt-get update of bookworm-backports failed"
    backports_updated=1
}

kernel_package_name() {
    if [[ -n ${TEXSHARE_VM_KERNEL_PKG:-} ]]; then
        printf '%s\n' "$TEXSHARE_VM_KERNEL_PKG"
        return 0
    fi
    local name
    if [[ $stack == backports ]]; then
        [[ -f $apt_dir/sources.list ]] || return 0
        stack_apt apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' \
            2>/dev/null | cut -d' ' -f1 | sort -V | tail -n1 || true
        return 0
    fi
    name=$(apt-cache depends linux-image-amd64 2>/dev/null \
        | grep -oE 'linux-image-6\.1\.0-[0-9]+-amd64(-unsigned)?' | head -n1 || true)
    if [[ -z $name ]]; then
        name=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64(-unsigned)?$' \
            2>/dev/null | cut -d' ' -f1 | sort -V | tail -n1 || true)
    fi
    printf '%s\n' "$name"
}

# Downloads packages into the current directory (apt's sandbox user _apt cannot write
# into a root-only mktemp directory).
stack_download() {
    stack_apt apt-get -q -o APT::Sandbox::User=root download "$@" >&2 && return 0
    stack_apt_update
    stack_apt apt-get -q -o APT::Sandbox::User=root download "$@" >&2
}

fetch_kernel() {
    local pkg work release
    pkg=$(kernel_package_name)
    if [[ -z $pkg ]]; then
        stack_apt_update
        pkg=$(kernel_package_name)
    fi
    [[ -n $pkg ]] || die "no $stack kernel package (linux-image-6.1.0-*-amd64 or linux-image-6.12.*+deb12-amd64-unsigned) known to apt (is this Debian 12?)"
    work=$(mktemp -d "$cache/download.XXXXXX")
    log "downloading $pkg"
    (cd "$work" && stack_download "$pkg") || die "apt-get download $pkg failed"
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
    printf '%s\n' "$stack" >"$cache/kernel.stack"
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

# Mesa 25 and the libdrm it needs, from bookworm-backports, unpacked into $cache/mesa.
# libdrm-intel1 matters although no Intel GPU is in sight: without it libgallium loads
# Debian 12's older libdrm_intel and fails to resolve symbols.
readonly mesa_packages=(mesa-libgallium libgbm1 libegl-mesa0 mesa-vulkan-drivers libdrm2 libdrm-amdgpu1 libdrm-intel1)
readonly mesa_dir="$cache/mesa"
readonly mesa_libdir="$mesa_dir/usr/lib/x86_64-linux-gnu"

fetch_mesa() {
    local work deb
    work=$(mktemp -d "$cache/download.XXXXXX")
    log "downloading ${mesa_packages[*]} (bookworm-backports)"
    (cd "$work" && stack_download "${mesa_packages[@]}") || die "apt-get download of Mesa from bookworm-backports failed"
    mkdir "$work/tree"
    for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/tree"; done
    # The vendor and ICD files name their library relative to the loader's search path;
    # the guest's loaders must find the prefix's copies instead of the host's.
    mkdir -p "$work/tree/etc"
    local escaped=${mesa_libdir//\\/\\\\}
    escaped=${escaped//&/\\&}
    escaped=${escaped//#/\\#}
    local rewrite='s#"library_path" *: *"([^"]*/)?([^/"]*)"#"library_path": "'"$escaped"'/\2"#'
    sed -E "$rewrite" "$work/tree/usr/share/glvnd/egl_vendor.d/50_mesa.json" >"$work/tree/etc/50_mesa.json"
    sed -E "$rewrite" "$work/tree/usr/share/vulkan/icd.d/lvp_icd.json" >"$work/tree/etc/lvp_icd.json"
    grep -q "$mesa_libdir/libEGL_mesa.so.0" "$work/tree/etc/50_mesa.json" \
        || die "could not rewrite Mesa's EGL vendor file"
    grep -q "$mesa_libdir/libvulkan_lvp.so" "$work/tree/etc/lvp_icd.json" \
        || die "could not rewrite lavapipe's ICD file"
    rm -rf "$mesa_dir"
    mv "$work/tree" "$mesa_dir"
    # The .debs come without their dependencies: the rest (LLVM 15, libsensors, xcb, ...) is
    # Debian 12's own, which the host has when its Mesa is installed (TEXSHARE_GPU_PACKAGES).
    local lib missing
    for lib in "$mesa_libdir"/libgallium-*.so "$mesa_libdir/libvulkan_lvp.so" "$mesa_libdir/libEGL_mesa.so.0"; do
        missing=$(LD_LIBRARY_PATH=$mesa_libdir ldd "$lib" 2>&1 | awk '/not found/ { print $1 }' | tr '\n' ' ')
        [[ -z $missing ]] || die "$(basename "$lib") from bookworm-backports needs libraries this host lacks: $missing(install Debian 12's libgl1-mesa-dri and mesa-vulkan-drivers)"
    done
    rm -rf "$work"
}

write_guest_env() {
    {
        printf 'TEXSHARE_VM_STACK=%s\n' "$stack"
        if [[ $stack == backports ]]; then
            printf 'LD_LIBRARY_PATH=%s\n' "$mesa_libdir"
            printf 'GBM_BACKENDS_PATH=%s\n' "$mesa_libdir/gbm"
            printf '__EGL_VENDOR_LIBRARY_FILENAMES=%s\n' "$mesa_dir/etc/50_mesa.json"
            printf 'VK_ICD_FILENAMES=%s\n' "$mesa_dir/etc/lvp_icd.json"
        fi
    } >"$cache/guest-env"
}

mesa_is_current() {
    [[ $stack == backports ]] || return 0
    [[ -f $mesa_dir/etc/50_mesa.json && -f $mesa_dir/etc/lvp_icd.json && -e $mesa_libdir/libgbm.so.1 ]]
}

cache_is_current() {
    [[ -f $stamp && $(<"$stamp") == "stack=$stack kernel=$1 recipe=$recipe_hash" ]] || return 1
    [[ -f $cache/guest-env ]] && mesa_is_current || return 1
    [[ -s $cache/vmlinuz && -f $kdir/lib/modules/$1/modules.dep ]] || return 1
    gzip -t "$cache/initramfs.cpio.gz" 2>/dev/null
}

install_missing_packages
rm -rf "$cache"/download.* # what an attempt that failed half-way left

release=$(unpacked_release)
if [[ -n $release ]] && cache_is_current "$release"; then
    log "cache $cache is ready ($stack: kernel $release)"
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
mesa_is_current || fetch_mesa
write_guest_env
printf 'stack=%s kernel=%s recipe=%s\n' "$stack" "$release" "$recipe_hash" >"$stamp"
cache_is_current "$release" || die "cache verification failed after building"
log "cache $cache is ready ($stack: kernel $release)"
