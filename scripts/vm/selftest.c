/*
 * selftest.c: what the texshare test VM's kernel, GBM and EGL can do with DMA-BUFs.
 *
 * Build on the host (Debian 12: libgbm-dev libdrm-dev libegl-dev libgles-dev):
 *   cc -O2 -Wall -Wextra -o /tmp/vm-selftest scripts/vm/selftest.c \
 *      $(pkg-config --cflags --libs gbm libdrm egl glesv2) -ldl
 * Run it in the guest (it needs the guest's /dev/dri):
 *   scripts/vm/run-in-guest.sh CACHE_DIR -- /tmp/vm-selftest
 *
 * For every /dev/dri/card*: the driver name (drmGetVersion), the GBM backend, a 64x64
 * ABGR8888 LINEAR buffer exported with gbm_bo_get_fd (exp_name from /proc/self/fdinfo,
 * size from lseek, file system magic, which mmap protections work, DMA_BUF_IOCTL_SYNC,
 * DMA_BUF_IOCTL_EXPORT_SYNC_FILE / IMPORT_SYNC_FILE), an NV12 LINEAR buffer (plane count,
 * per-plane fds, offsets and strides), and EGL on that GBM device: the dma-buf extensions,
 * whether eglQueryDmaBufFormatsEXT lists NV12 (and whether only as external_only),
 * whether eglCreateImage imports both buffers, and whether
 * EGL_MESA_image_dma_buf_export exports a GL texture.
 *
 * Plain libEGL rather than libepoxy: libepoxy decides what a display supports from
 * eglGetCurrentDisplay(), so until a context is current it assumes EGL 1.4 and no display
 * extensions and aborts ("No provider of eglGetPlatformDisplay / eglQueryDmaBufFormatsEXT /
 * eglCreateImageKHR found") on calls the display does support; eglGetPlatformDisplayEXT
 * works, and with a context current on the display the others do too (measured in this
 * guest). Extension entry points are fetched with eglGetProcAddress here.
 *
 * Output is "card<N>: key: value" lines, meant to be read by a person. Exit status 0 when
 * at least one card exported a working ABGR8888 DMA-BUF, 1 otherwise.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES2/gl2.h>
#include <drm_fourcc.h>
#include <gbm.h>
#include <linux/dma-buf.h>
#include <xf86drm.h>

/* Older linux/dma-buf.h lack the sync-file ioctls (Linux 6.0). */
#ifndef DMA_BUF_IOCTL_EXPORT_SYNC_FILE
struct dma_buf_export_sync_file {
    __u32 flags;
    __s32 fd;
};
struct dma_buf_import_sync_file {
    __u32 flags;
    __s32 fd;
};
#define DMA_BUF_IOCTL_EXPORT_SYNC_FILE _IOWR(DMA_BUF_BASE, 2, struct dma_buf_export_sync_file)
#define DMA_BUF_IOCTL_IMPORT_SYNC_FILE _IOW(DMA_BUF_BASE, 3, struct dma_buf_import_sync_file)
#endif
#ifndef DMA_BUF_MAGIC
#define DMA_BUF_MAGIC 0x444d4142
#endif

static const char *card;

static PFNEGLCREATEIMAGEKHRPROC create_image;
static PFNEGLDESTROYIMAGEKHRPROC destroy_image;
static PFNEGLQUERYDMABUFFORMATSEXTPROC query_formats;
static PFNEGLQUERYDMABUFMODIFIERSEXTPROC query_modifiers;
static PFNEGLEXPORTDMABUFIMAGEQUERYMESAPROC export_query;
static PFNEGLEXPORTDMABUFIMAGEMESAPROC export_image;

static void load_egl_extensions(void)
{
    create_image = (PFNEGLCREATEIMAGEKHRPROC)eglGetProcAddress("eglCreateImageKHR");
    destroy_image = (PFNEGLDESTROYIMAGEKHRPROC)eglGetProcAddress("eglDestroyImageKHR");
    query_formats = (PFNEGLQUERYDMABUFFORMATSEXTPROC)eglGetProcAddress("eglQueryDmaBufFormatsEXT");
    query_modifiers = (PFNEGLQUERYDMABUFMODIFIERSEXTPROC)eglGetProcAddress("eglQueryDmaBufModifiersEXT");
    export_query = (PFNEGLEXPORTDMABUFIMAGEQUERYMESAPROC)eglGetProcAddress("eglExportDMABUFImageQueryMESA");
    export_image = (PFNEGLEXPORTDMABUFIMAGEMESAPROC)eglGetProcAddress("eglExportDMABUFImageMESA");
}

#define say(...)                            \
    do {                                    \
        printf("%s: ", card);               \
        printf(__VA_ARGS__);                \
        putchar('\n');                      \
        fflush(stdout);                     \
    } while (0)

static void print_exp_name(int fd)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(path, "re");
    if (!f) {
        say("  fdinfo: cannot open %s: %s", path, strerror(errno));
        return;
    }
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "exp_name:", 9) == 0) {
            line[strcspn(line, "\n")] = 0;
            say("  fdinfo %s", line);
            found = true;
        }
    }
    fclose(f);
    if (!found)
        say("  fdinfo: no exp_name line (not a DMA-BUF?)");
}

/* Facts about one exported DMA-BUF fd; true when it looks like a usable DMA-BUF. */
static bool probe_dmabuf(int fd, const char *what)
{
    say("  %s fd %d", what, fd);
    print_exp_name(fd);
    off_t size = lseek(fd, 0, SEEK_END);
    say("  lseek(SEEK_END) size: %lld%s", (long long)size, size < 0 ? " (failed)" : "");
    lseek(fd, 0, SEEK_SET);
    struct statfs sfs;
    bool is_dmabuf = fstatfs(fd, &sfs) == 0 && (unsigned long)sfs.f_type == DMA_BUF_MAGIC;
    say("  fstatfs magic is DMA_BUF_MAGIC: %s", is_dmabuf ? "yes" : "no");
    int fl = fcntl(fd, F_GETFL);
    say("  access mode: %s", (fl & O_ACCMODE) == O_RDWR ? "O_RDWR" : (fl & O_ACCMODE) == O_WRONLY ? "O_WRONLY" : "O_RDONLY");
    if (size > 0) {
        void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
        say("  mmap PROT_READ: %s", p == MAP_FAILED ? strerror(errno) : "ok");
        if (p != MAP_FAILED)
            munmap(p, (size_t)size);
        p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        say("  mmap PROT_READ|PROT_WRITE: %s", p == MAP_FAILED ? strerror(errno) : "ok");
        if (p != MAP_FAILED)
            munmap(p, (size_t)size);
    }
    struct dma_buf_sync sync = {.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ};
    int r = ioctl(fd, DMA_BUF_IOCTL_SYNC, &sync);
    say("  DMA_BUF_IOCTL_SYNC start/read: %s", r == 0 ? "ok" : strerror(errno));
    if (r == 0) {
        sync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ;
        ioctl(fd, DMA_BUF_IOCTL_SYNC, &sync);
    }
    struct dma_buf_export_sync_file ex = {.flags = DMA_BUF_SYNC_RW, .fd = -1};
    r = ioctl(fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &ex);
    if (r == 0) {
        char link[64], target[128] = "";
        snprintf(link, sizeof link, "/proc/self/fd/%d", ex.fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        say("  DMA_BUF_IOCTL_EXPORT_SYNC_FILE (RW): ok, sync_file fd %d -> %s", ex.fd, target);
        struct dma_buf_import_sync_file im = {.flags = DMA_BUF_SYNC_WRITE, .fd = ex.fd};
        r = ioctl(fd, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &im);
        say("  DMA_BUF_IOCTL_IMPORT_SYNC_FILE (WRITE) of that fence: %s", r == 0 ? "ok" : strerror(errno));
        close(ex.fd);
    } else {
        say("  DMA_BUF_IOCTL_EXPORT_SYNC_FILE (RW): failed: %s", strerror(errno));
    }
    return is_dmabuf && size > 0;
}

static bool has_ext(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; p && (p = strstr(p, name)); p += len)
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == 0))
            return true;
    return false;
}

static const char *fourcc_str(uint32_t f, char buf[5])
{
    for (int i = 0; i < 4; i++)
        buf[i] = (char)((f >> (8 * i)) & 0xff);
    buf[4] = 0;
    return buf;
}

/*
 * eglCreateImageKHR(EGL_LINUX_DMA_BUF_EXT) of a described image (the KHR entry point:
 * this display reports EGL 1.4).
 */
static void import_layout(EGLDisplay dpy, const char *what, int width, int height, uint32_t fourcc,
    int planes, const int *fds, const uint32_t *offsets, const uint32_t *strides)
{
    static const EGLint keys[4][3] = {
        {EGL_DMA_BUF_PLANE0_FD_EXT, EGL_DMA_BUF_PLANE0_OFFSET_EXT, EGL_DMA_BUF_PLANE0_PITCH_EXT},
        {EGL_DMA_BUF_PLANE1_FD_EXT, EGL_DMA_BUF_PLANE1_OFFSET_EXT, EGL_DMA_BUF_PLANE1_PITCH_EXT},
        {EGL_DMA_BUF_PLANE2_FD_EXT, EGL_DMA_BUF_PLANE2_OFFSET_EXT, EGL_DMA_BUF_PLANE2_PITCH_EXT},
        {EGL_DMA_BUF_PLANE3_FD_EXT, EGL_DMA_BUF_PLANE3_OFFSET_EXT, EGL_DMA_BUF_PLANE3_PITCH_EXT},
    };
    EGLint attrs[64];
    int n = 0;
    attrs[n++] = EGL_WIDTH;
    attrs[n++] = width;
    attrs[n++] = EGL_HEIGHT;
    attrs[n++] = height;
    attrs[n++] = EGL_LINUX_DRM_FOURCC_EXT;
    attrs[n++] = (EGLint)fourcc;
    for (int i = 0; i < planes && i < 4; i++) {
        attrs[n++] = keys[i][0];
        attrs[n++] = fds[i];
        attrs[n++] = keys[i][1];
        attrs[n++] = (EGLint)offsets[i];
        attrs[n++] = keys[i][2];
        attrs[n++] = (EGLint)strides[i];
    }
    attrs[n++] = EGL_NONE;
    EGLImageKHR img = create_image(dpy, EGL_NO_CONTEXT, EGL_LINUX_DMA_BUF_EXT, NULL, attrs);
    if (img != EGL_NO_IMAGE_KHR) {
        say("  eglCreateImageKHR(EGL_LINUX_DMA_BUF_EXT) %s: ok", what);
        destroy_image(dpy, img);
    } else {
        say("  eglCreateImageKHR(EGL_LINUX_DMA_BUF_EXT) %s: failed, EGL error 0x%x", what, eglGetError());
    }
}

/* The same for a GBM bo, one fd per plane. */
static void try_import(EGLDisplay dpy, struct gbm_bo *bo, const char *what)
{
    int planes = gbm_bo_get_plane_count(bo);
    int fds[4] = {-1, -1, -1, -1};
    uint32_t offsets[4] = {0}, strides[4] = {0};
    for (int i = 0; i < planes && i < 4; i++) {
        fds[i] = planes > 1 ? gbm_bo_get_fd_for_plane(bo, i) : gbm_bo_get_fd(bo);
        offsets[i] = gbm_bo_get_offset(bo, i);
        strides[i] = gbm_bo_get_stride_for_plane(bo, i);
    }
    import_layout(dpy, what, (int)gbm_bo_get_width(bo), (int)gbm_bo_get_height(bo),
        gbm_bo_get_format(bo), planes, fds, offsets, strides);
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/*
 * NV12 without an NV12 allocation: one linear 32-bit buffer of (width/4) x (height*3/2)
 * texels holds width x height*3/2 bytes, described as two planes (Y at 0, interleaved UV
 * after it) sharing one fd. 32 bpp because virtio_gpu's dumb buffers accept only that.
 */
static void try_import_nv12_in_one_bo(EGLDisplay dpy, struct gbm_device *gbm)
{
    struct gbm_bo *bo = gbm_bo_create(gbm, 16, 96, GBM_FORMAT_ABGR8888, GBM_BO_USE_LINEAR);
    if (!bo) {
        say("  NV12 inside one ABGR8888 16x96 LINEAR bo: gbm_bo_create failed: %s", strerror(errno));
        return;
    }
    uint32_t stride = gbm_bo_get_stride(bo);
    int fd = gbm_bo_get_fd(bo);
    int fds[2] = {fd, fd};
    uint32_t offsets[2] = {0, stride * 64}, strides[2] = {stride, stride};
    char what[128];
    snprintf(what, sizeof what, "NV12 64x64 as two planes of one ABGR8888 16x96 bo (stride %u)", stride);
    if (fd >= 0)
        import_layout(dpy, what, 64, 64, DRM_FORMAT_NV12, 2, fds, offsets, strides);
    if (fd >= 0)
        close(fd);
    gbm_bo_destroy(bo);
}

/* EGL_MESA_image_dma_buf_export: a GL texture out as DMA-BUF fds. */
static void try_export(EGLDisplay dpy, const char *exts)
{
    if (!has_ext(exts, "EGL_KHR_surfaceless_context") || !eglBindAPI(EGL_OPENGL_ES_API)) {
        say("  export test skipped: no surfaceless GLES context");
        return;
    }
    static const EGLint ctx_attrs[] = {EGL_CONTEXT_CLIENT_VERSION, 2, EGL_NONE};
    EGLContext ctx = eglCreateContext(dpy, EGL_NO_CONFIG_KHR, EGL_NO_CONTEXT, ctx_attrs);
    if (ctx == EGL_NO_CONTEXT || !eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, ctx)) {
        say("  export test skipped: GLES context failed, EGL error 0x%x", eglGetError());
        return;
    }
    say("  GL_RENDERER: %s", (const char *)glGetString(GL_RENDERER));
    GLuint tex;
    glGenTextures(1, &tex);
    glBindTexture(GL_TEXTURE_2D, tex);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, 64, 64, 0, GL_RGBA, GL_UNSIGNED_BYTE, NULL);
    EGLImageKHR img = create_image(dpy, ctx, EGL_GL_TEXTURE_2D_KHR, (EGLClientBuffer)(uintptr_t)tex, NULL);
    if (img == EGL_NO_IMAGE_KHR) {
        say("  eglCreateImageKHR(EGL_GL_TEXTURE_2D): failed, EGL error 0x%x", eglGetError());
    } else {
        int fourcc = 0, planes = 0;
        EGLuint64KHR modifier = 0;
        if (!export_query(dpy, img, &fourcc, &planes, &modifier)) {
            say("  eglExportDMABUFImageQueryMESA: failed, EGL error 0x%x", eglGetError());
        } else {
            char b[5];
            say("  eglExportDMABUFImageQueryMESA: fourcc %s, %d plane(s), modifier 0x%llx",
                fourcc_str((uint32_t)fourcc, b), planes, (unsigned long long)modifier);
            /* -2: tells "left untouched" from "set to -1". */
            int fds[4] = {-2, -2, -2, -2};
            EGLint strides[4] = {0}, offsets[4] = {0};
            if (planes >= 1 && planes <= 4 && export_image(dpy, img, fds, strides, offsets)) {
                say("  eglExportDMABUFImageMESA: returned EGL_TRUE, plane 0 fd %d%s, stride %d, offset %d",
                    fds[0], fds[0] == -1 ? " (success without an fd!)" : fds[0] == -2 ? " (fd left unset!)" : "",
                    strides[0], offsets[0]);
                if (fds[0] >= 0)
                    probe_dmabuf(fds[0], "exported GL texture");
                for (int i = 0; i < 4; i++)
                    if (fds[i] >= 0)
                        close(fds[i]);
            } else {
                say("  eglExportDMABUFImageMESA: failed, EGL error 0x%x", eglGetError());
            }
        }
        destroy_image(dpy, img);
    }
    glDeleteTextures(1, &tex);
    eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
    eglDestroyContext(dpy, ctx);
}

static void probe_egl(struct gbm_device *gbm, struct gbm_bo *argb, struct gbm_bo *nv12)
{
    const char *client = eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
    say("  EGL client has EGL_KHR_platform_gbm: %s", has_ext(client, "EGL_KHR_platform_gbm") ? "yes" : "no");
    EGLDisplay dpy = eglGetPlatformDisplay(EGL_PLATFORM_GBM_KHR, gbm, NULL);
    EGLint major = 0, minor = 0;
    if (dpy == EGL_NO_DISPLAY || !eglInitialize(dpy, &major, &minor)) {
        say("  eglGetPlatformDisplay(EGL_PLATFORM_GBM_KHR)/eglInitialize: failed, EGL error 0x%x", eglGetError());
        return;
    }
    say("  EGL %d.%d, vendor %s, version %s", major, minor, eglQueryString(dpy, EGL_VENDOR),
        eglQueryString(dpy, EGL_VERSION));
    const char *exts = eglQueryString(dpy, EGL_EXTENSIONS);
    static const char *const wanted[] = {"EGL_EXT_image_dma_buf_import",
        "EGL_EXT_image_dma_buf_import_modifiers", "EGL_MESA_image_dma_buf_export",
        "EGL_KHR_image_base", "EGL_KHR_surfaceless_context", "EGL_KHR_fence_sync",
        "EGL_ANDROID_native_fence_sync"};
    for (size_t i = 0; i < sizeof wanted / sizeof *wanted; i++)
        say("  %s: %s", wanted[i], has_ext(exts, wanted[i]) ? "yes" : "no");

    if (has_ext(exts, "EGL_EXT_image_dma_buf_import_modifiers")) {
        EGLint count = 0;
        query_formats(dpy, 0, NULL, &count);
        EGLint *formats = calloc((size_t)count + 1, sizeof *formats);
        query_formats(dpy, count, formats, &count);
        char line[4096] = "", b[5];
        bool lists_nv12 = false;
        for (EGLint i = 0; i < count; i++) {
            if ((uint32_t)formats[i] == DRM_FORMAT_NV12)
                lists_nv12 = true;
            if (strlen(line) + 6 < sizeof line) {
                strcat(line, " ");
                strcat(line, fourcc_str((uint32_t)formats[i], b));
            }
        }
        say("  eglQueryDmaBufFormatsEXT: %d formats:%s", count, line);
        say("  eglQueryDmaBufFormatsEXT lists NV12: %s", lists_nv12 ? "yes" : "no");
        static const uint32_t probe[] = {DRM_FORMAT_ABGR8888, DRM_FORMAT_NV12};
        for (size_t k = 0; k < 2; k++) {
            EGLint nmods = 0;
            query_modifiers(dpy, (EGLint)probe[k], 0, NULL, NULL, &nmods);
            EGLuint64KHR *mods = calloc((size_t)nmods + 1, sizeof *mods);
            EGLBoolean *ext_only = calloc((size_t)nmods + 1, sizeof *ext_only);
            query_modifiers(dpy, (EGLint)probe[k], nmods, mods, ext_only, &nmods);
            char mline[1024] = "";
            for (EGLint i = 0; i < nmods; i++) {
                char one[64];
                snprintf(one, sizeof one, " 0x%llx%s", (unsigned long long)mods[i],
                    ext_only[i] ? "(external_only)" : "");
                if (strlen(mline) + strlen(one) < sizeof mline)
                    strcat(mline, one);
            }
            say("  eglQueryDmaBufModifiersEXT(%s): %d modifier(s):%s", fourcc_str(probe[k], b),
                nmods, nmods ? mline : " (none: implicit/linear only)");
            free(mods);
            free(ext_only);
        }
        free(formats);
    }
    if (has_ext(exts, "EGL_EXT_image_dma_buf_import")) {
        if (argb)
            try_import(dpy, argb, "ABGR8888 64x64");
        if (nv12)
            try_import(dpy, nv12, "NV12 64x64");
        try_import_nv12_in_one_bo(dpy, gbm);
    }
    if (has_ext(exts, "EGL_MESA_image_dma_buf_export"))
        try_export(dpy, exts);
    eglTerminate(dpy);
}

static bool probe_card(const char *path)
{
    card = path;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        say("open: %s", strerror(errno));
        return false;
    }
    drmVersionPtr v = drmGetVersion(fd);
    if (v) {
        say("drmGetVersion name: %s (%s, %d.%d.%d)", v->name, v->desc, v->version_major,
            v->version_minor, v->version_patchlevel);
        drmFreeVersion(v);
    } else {
        say("drmGetVersion: failed: %s", strerror(errno));
    }
    uint64_t cap = 0;
    if (drmGetCap(fd, DRM_CAP_PRIME, &cap) == 0)
        say("DRM_CAP_PRIME: import %s, export %s", cap & DRM_PRIME_CAP_IMPORT ? "yes" : "no",
            cap & DRM_PRIME_CAP_EXPORT ? "yes" : "no");

    struct gbm_device *gbm = gbm_create_device(fd);
    if (!gbm) {
        say("gbm_create_device: failed");
        close(fd);
        return false;
    }
    say("gbm backend: %s", gbm_device_get_backend_name(gbm));

    bool ok = false;
    struct gbm_bo *bo = gbm_bo_create(gbm, 64, 64, GBM_FORMAT_ABGR8888, GBM_BO_USE_LINEAR);
    if (!bo) {
        say("gbm_bo_create(64x64 ABGR8888, LINEAR): failed: %s", strerror(errno));
    } else {
        say("gbm_bo_create(64x64 ABGR8888, LINEAR): ok, stride %u, modifier 0x%llx, planes %d",
            gbm_bo_get_stride(bo), (unsigned long long)gbm_bo_get_modifier(bo),
            gbm_bo_get_plane_count(bo));
        int dfd = gbm_bo_get_fd(bo);
        if (dfd < 0) {
            say("  gbm_bo_get_fd: failed");
        } else {
            ok = probe_dmabuf(dfd, "gbm_bo_get_fd");
            close(dfd);
        }
        /* Same bo, exported again with DRM_RDWR after gbm_bo_get_fd already exported it. */
        int rw = -1;
        if (drmPrimeHandleToFD(fd, gbm_bo_get_handle(bo).u32, DRM_CLOEXEC | DRM_RDWR, &rw) == 0) {
            int fl = fcntl(rw, F_GETFL);
            say("  drmPrimeHandleToFD(DRM_RDWR) after gbm_bo_get_fd: access mode %s",
                (fl & O_ACCMODE) == O_RDWR ? "O_RDWR" : "O_RDONLY (the first export's file is reused)");
            close(rw);
        }
    }
    /* A fresh bo whose first export asks for DRM_RDWR. */
    struct gbm_bo *fresh = gbm_bo_create(gbm, 64, 64, GBM_FORMAT_ABGR8888, GBM_BO_USE_LINEAR);
    if (fresh) {
        int rw = -1;
        if (drmPrimeHandleToFD(fd, gbm_bo_get_handle(fresh).u32, DRM_CLOEXEC | DRM_RDWR, &rw) == 0) {
            int fl = fcntl(rw, F_GETFL);
            void *p = mmap(NULL, 64 * 64 * 4, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
            say("fresh ABGR8888 bo, first exported with drmPrimeHandleToFD(DRM_RDWR): access mode %s, "
                "mmap PROT_READ|PROT_WRITE: %s",
                (fl & O_ACCMODE) == O_RDWR ? "O_RDWR" : "O_RDONLY", p == MAP_FAILED ? strerror(errno) : "ok");
            if (p != MAP_FAILED)
                munmap(p, 64 * 64 * 4);
            close(rw);
            int again = gbm_bo_get_fd(fresh);
            if (again >= 0) {
                fl = fcntl(again, F_GETFL);
                say("  then gbm_bo_get_fd on it: access mode %s",
                    (fl & O_ACCMODE) == O_RDWR ? "O_RDWR" : "O_RDONLY");
                close(again);
            }
        } else {
            say("fresh bo, drmPrimeHandleToFD(DRM_RDWR): failed: %s", strerror(errno));
        }
        gbm_bo_destroy(fresh);
    }

    static const struct {
        uint32_t flags;
        const char *name;
    } nv12_tries[] = {
        {GBM_BO_USE_LINEAR, "LINEAR"},
        {GBM_BO_USE_LINEAR | GBM_BO_USE_RENDERING, "LINEAR|RENDERING"},
        {GBM_BO_USE_RENDERING, "RENDERING"},
        {0, "no flags"},
    };
    for (size_t i = 1; i < sizeof nv12_tries / sizeof *nv12_tries; i++) {
        struct gbm_bo *t = gbm_bo_create(gbm, 64, 64, GBM_FORMAT_NV12, nv12_tries[i].flags);
        say("gbm_bo_create(64x64 NV12, %s): %s", nv12_tries[i].name, t ? "ok" : strerror(errno));
        if (t)
            gbm_bo_destroy(t);
    }
    {
        const uint64_t linear = DRM_FORMAT_MOD_LINEAR;
        struct gbm_bo *t = gbm_bo_create_with_modifiers(gbm, 64, 64, GBM_FORMAT_NV12, &linear, 1);
        say("gbm_bo_create_with_modifiers(64x64 NV12, {LINEAR}): %s", t ? "ok" : strerror(errno));
        if (t)
            gbm_bo_destroy(t);
    }
    say("gbm_device_is_format_supported(NV12, LINEAR): %s",
        gbm_device_is_format_supported(gbm, GBM_FORMAT_NV12, GBM_BO_USE_LINEAR) ? "yes" : "no");

    void *sym = dlsym(RTLD_DEFAULT, "gbm_bo_get_fd_for_plane");
    say("gbm_bo_get_fd_for_plane in libgbm: %s", sym ? "yes" : "no");
    struct gbm_bo *nv = gbm_bo_create(gbm, 64, 64, GBM_FORMAT_NV12, GBM_BO_USE_LINEAR);
    if (!nv) {
        say("gbm_bo_create(64x64 NV12, LINEAR): failed: %s", strerror(errno));
    } else {
        int planes = gbm_bo_get_plane_count(nv);
        say("gbm_bo_create(64x64 NV12, LINEAR): ok, modifier 0x%llx, gbm_bo_get_plane_count %d",
            (unsigned long long)gbm_bo_get_modifier(nv), planes);
        struct stat first = {0};
        for (int i = 0; i < planes; i++) {
            int pfd = sym ? gbm_bo_get_fd_for_plane(nv, i) : -1;
            struct stat st = {0};
            if (pfd >= 0)
                fstat(pfd, &st);
            if (i == 0)
                first = st;
            say("  plane %d: offset %u, stride %u, fd %s%s", i, gbm_bo_get_offset(nv, i),
                gbm_bo_get_stride_for_plane(nv, i), pfd >= 0 ? "ok" : "failed",
                pfd >= 0 && i > 0 ? (st.st_ino == first.st_ino ? " (same DMA-BUF as plane 0)"
                                                               : " (a different DMA-BUF)")
                                  : "");
            if (pfd >= 0 && i == 0) {
                print_exp_name(pfd);
                say("  lseek(SEEK_END) size: %lld", (long long)lseek(pfd, 0, SEEK_END));
            }
            if (pfd >= 0)
                close(pfd);
        }
    }

    probe_egl(gbm, bo, nv);
    if (nv)
        gbm_bo_destroy(nv);
    if (bo)
        gbm_bo_destroy(bo);
    gbm_device_destroy(gbm);
    close(fd);
    return ok;
}

int main(void)
{
    glob_t g;
    card = "selftest";
    if (glob("/dev/dri/card*", 0, NULL, &g) != 0) {
        say("no /dev/dri/card* (not in the texshare VM?)");
        return 1;
    }
    load_egl_extensions();
    int ok = 0;
    for (size_t i = 0; i < g.gl_pathc; i++)
        ok += probe_card(g.gl_pathv[i]);
    card = "selftest";
    say("%d of %zu card(s) exported a working ABGR8888 DMA-BUF", ok, g.gl_pathc);
    globfree(&g);
    return ok > 0 ? 0 : 1;
}
