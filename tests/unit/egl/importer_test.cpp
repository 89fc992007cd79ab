// Host lane: egl/importer.hpp where EGL imports no DMA-BUF (Mesa's surfaceless llvmpipe):
// the Importer must refuse to exist, naming the missing extension, and check_importable
// must refuse what EGL can never import. Real imports run in the VM lane
// (tests/vm/egl_vm_test, frame_import_vm_test, egl_import_listener_test).
#include <fcntl.h>

#include <array>
#include <string>

#include "support/egl_display.hpp"
#include "support/fd_count.hpp"
#include "texshare/egl/display.hpp"
#include "texshare/egl/exporter.hpp"
#include "texshare/egl/fence.hpp"
#include "texshare/egl/importer.hpp"
#include "texshare/memfd_allocator.hpp"

// texshare::egl's public headers spell EGL handles and GL names without <epoxy/...>
// (display.hpp), so a caller that includes them gets no GL headers (issue 12, item 1).
#if defined(EGL_NO_DISPLAY) || defined(GL_TEXTURE_2D) || defined(EPOXY_EGL_H) || defined(EPOXY_GL_H)
#error "a public texshare::egl header includes <epoxy/...>"
#endif

namespace texshare::egl {
namespace {

using testing::contains;
using testing::open_surfaceless_or_fail;

using EglImporterTest = testing::FdLeakTest;

TEST_F(EglImporterTest, AnEmptyDisplayIsAnError) {
    EXPECT_EQ(Importer::create(Display()).error().code, Errc::invalid_argument);
}

TEST_F(EglImporterTest, ImporterNeedsDmaBufImport) {
    Display display = open_surfaceless_or_fail();
    ASSERT_NE(display.native(), nullptr);
    auto importer = Importer::create(display);
    if (display.has_extension("EGL_EXT_image_dma_buf_import")) {  // a machine with a GPU driver
        ASSERT_TRUE(importer) << importer.error().message;
        EXPECT_EQ(importer->size(), 0U);
        return;
    }
    ASSERT_FALSE(importer);
    EXPECT_EQ(importer.error().code, Errc::unsupported);
    EXPECT_TRUE(
        contains(importer.error().message, "EGL_EXT_image_dma_buf_import is missing on the surfaceless"))
        << importer.error().message;
}

TEST_F(EglImporterTest, SharedMemoryAndCpuImagesAreNotImportable) {
    auto memfd = MemfdAllocator().allocate(8, 8, DRM_FORMAT_ABGR8888);
    ASSERT_TRUE(memfd) << memfd.error().message;
    auto refused = check_importable(5, *memfd);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::unsupported);
    EXPECT_EQ(refused.error().message,
              "image 5: a shared_memory image cannot be imported: EGL imports DMA-BUFs only (map it and "
              "upload the pixels instead)");

    auto layout = make_packed_layout(DRM_FORMAT_ABGR8888, 8, 8);
    ASSERT_TRUE(layout);
    auto cpu = DmaBufImage::create_cpu_only(*layout);
    ASSERT_TRUE(cpu);
    EXPECT_TRUE(contains(check_importable(6, *cpu).error().message, "a cpu_only image cannot be imported"));
    EXPECT_EQ(check_importable(7, DmaBufImage()).error().code, Errc::unsupported);
}

// A Vulkan driver's OPAQUE_FD memory: neither EGL nor the CPU can use it.
TEST_F(EglImporterTest, OpaqueFdImagesAreRefusedNamingTheBacking) {
    OpaqueMemory memory;
    memory.allocation_size = 4096;
    memory.image_usage = 0x4;
    auto image = DmaBufImage::adopt_opaque_fd(8, 8, DRM_FORMAT_ABGR8888, memory,
                                              UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC)));
    ASSERT_TRUE(image) << image.error().message;
    auto refused = check_importable(8, *image);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::unsupported);
    EXPECT_TRUE(contains(refused.error().message, "image 8: an opaque_fd image cannot be imported"))
        << refused.error().message;
    EXPECT_TRUE(contains(refused.error().message, "texshare::vulkan")) << refused.error().message;
}

}  // namespace
}  // namespace texshare::egl
