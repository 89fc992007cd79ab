#include "texshare/egl/fence.hpp"

#include <fcntl.h>

#include <string>

#include "display_state.hpp"
#include "texshare/sync_file.hpp"

namespace texshare::egl {
namespace {

// The access on the other side of the exchange, which is what the sync_file ioctls take.
// Export (after this side's `done`): the peer's next use; a reader waits for writers only, a
// writer for everyone. Import (before this side's `next`): what the peer did; before a read
// the peer wrote (a write fence, which readers wait for), before a write it may only have
// read (a read fence, which writers wait for and readers need not). Importing with `next`
// itself would add the producer's write fence as a read fence, which readers ignore.
Access peer_access(Access mine) noexcept { return mine == Access::write ? Access::read : Access::write; }

bool is_software(const std::string& renderer) {
    for (const char* name : {"llvmpipe", "softpipe", "swrast", "Software Rasterizer"}) {
        if (renderer.find(name) != std::string::npos) return true;
    }
    return false;
}

Result<UniqueFd> native_fence(const Display& display) {
    EGLSyncKHR sync = eglCreateSyncKHR(display.native(), EGL_SYNC_NATIVE_FENCE_ANDROID, nullptr);
    if (sync == EGL_NO_SYNC_KHR) {
        return make_error(Errc::library, "eglCreateSyncKHR(EGL_SYNC_NATIVE_FENCE_ANDROID) failed: {}",
                          egl_error_name(eglGetError()));
    }
    glFlush();  // the fence fd exists only once the fence command reaches the GPU
    const EGLint fd = eglDupNativeFenceFDANDROID(display.native(), sync);
    eglDestroySyncKHR(display.native(), sync);
    if (fd == EGL_NO_NATIVE_FENCE_FD_ANDROID || fd < 0) {
        return make_error(Errc::library, "eglDupNativeFenceFDANDROID gave no fd: {}", egl_error_name(eglGetError()));
    }
    UniqueFd fence(fd);
    if (::fcntl(fence.get(), F_SETFD, FD_CLOEXEC) != 0) return make_sys_error(errno, "F_SETFD on a native fence");
    return fence;
}

Result<void> gpu_wait(const Display& display, UniqueFd fence) {
    const EGLint attributes[] = {EGL_SYNC_NATIVE_FENCE_FD_ANDROID, fence.get(), EGL_NONE};
    EGLSyncKHR sync = eglCreateSyncKHR(display.native(), EGL_SYNC_NATIVE_FENCE_ANDROID, attributes);
    if (sync == EGL_NO_SYNC_KHR) {
        return make_error(Errc::library, "eglCreateSyncKHR from fence fd {} failed: {}", fence.get(),
                          egl_error_name(eglGetError()));
    }
    (void)fence.release();  // EGL owns the fd once the sync exists
    const EGLint waited = eglWaitSyncKHR(display.native(), sync, 0);
    eglDestroySyncKHR(display.native(), sync);
    if (waited != EGL_TRUE) return make_error(Errc::library, "eglWaitSyncKHR failed: {}", egl_error_name(eglGetError()));
    return {};
}

}  // namespace

SyncMode choose_sync_mode(const Display& display) {
    // A software rasteriser's "GPU" is the calling thread. Mesa 25's llvmpipe offers native
    // fences, but its eglWaitSyncKHR on a peer's pending fence blocks the GL thread until
    // the fence signals, with no bound (measured in the VM lane's backports guest:
    // egl_fence_vm_test). finish waits on the CPU too, but with the caller's timeout.
    if (is_software(display.renderer())) return SyncMode::finish;
    if (display.has_extension("EGL_ANDROID_native_fence_sync") && display.has_extension("EGL_KHR_wait_sync")) {
        return SyncMode::native_fence;
    }
    return SyncMode::implicit_dma_buf;
}

Result<UniqueFd> fence_for_peer(const Display& display, SyncMode mode, const DmaBufImage& image, Access done) {
    if (auto current = display.make_current(); !current) return std::move(current).error();
    switch (mode) {
        case SyncMode::native_fence:
            return native_fence(display);
        case SyncMode::implicit_dma_buf:
            if (image.backing() != Backing::dma_buf) break;
            glFlush();  // the driver attaches its fences to the buffer at submission
            return export_sync_file(image.plane_fd(0), peer_access(done));
        case SyncMode::finish:
            break;
    }
    glFinish();
    return UniqueFd();
}

Result<void> wait_for_peer(const Display& display, SyncMode mode, UniqueFd fence, const DmaBufImage& image,
                           Access next, std::chrono::milliseconds cpu_timeout) {
    if (!fence) return {};
    if (auto current = display.make_current(); !current) return std::move(current).error();
    if (mode == SyncMode::native_fence) return gpu_wait(display, std::move(fence));
    if (mode == SyncMode::implicit_dma_buf && image.backing() == Backing::dma_buf) {
        auto imported = import_sync_file(image.plane_fd(0), fence.borrow(), peer_access(next));
        if (imported || imported.error().code != Errc::unsupported) return imported;
    }
    return wait_fence(fence.borrow(), cpu_timeout);
}

}  // namespace texshare::egl
