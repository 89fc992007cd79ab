// egl/import_listener.hpp: an ImportListener keeps an Importer in step with the images a
// frame endpoint tracks. It needs an Importer, and so EGL DMA-BUF import, which the host's
// surfaceless llvmpipe lacks: this binary runs in the VM lane (tests/vm/VmLane.cmake), on
// the guest's GBM device and its EGL display, and calls the listener as an endpoint would.
#include "texshare/egl/import_listener.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include "support/fd_count.hpp"
#include "support/gl_helpers.hpp"
#include "texshare/egl/importer.hpp"
#include "texshare/gbm/allocator.hpp"
#include "texshare/memfd_allocator.hpp"
#include "texshare/udmabuf_cache.hpp"
#include "vm/vm_stack.hpp"

namespace texshare::egl {
namespace {

constexpr std::uint32_t side = 16;

class ImportListenerTest : public testing::FdLeakTest {
protected:
    void SetUp() override {
        FdLeakTest::SetUp();
        auto device = gbm::Device::open_default();
        ASSERT_TRUE(device) << "the VM lane's guest has a GBM device: " << device.error().message;
        device_.emplace(std::move(*device));
        auto display = Display::open_gbm(device_->native());
        ASSERT_TRUE(display) << display.error().message;
        display_.emplace(std::move(*display));
        auto importer = Importer::create(*display_);
        ASSERT_TRUE(importer) << importer.error().message;
        importer_.emplace(std::move(*importer));
    }
    void TearDown() override {
        importer_.reset();
        display_.reset();
        device_.reset();
        FdLeakTest::TearDown();
    }

    // An ABGR8888 (R, G, B, A in memory: GL_RGBA) LINEAR image filled with one colour.
    DmaBufImage filled(std::uint8_t red) {
        auto image = device_->allocate({side, side, DRM_FORMAT_ABGR8888, {DRM_FORMAT_MOD_LINEAR}, 0});
        EXPECT_TRUE(image) << image.error().message;
        if (!image) return DmaBufImage();
        auto mapping = image->map(Access::write);
        EXPECT_TRUE(mapping) << mapping.error().message;
        if (!mapping) return DmaBufImage();
        for (std::uint32_t y = 0; y < side; ++y) {
            for (std::uint32_t x = 0; x < side; ++x) {
                const std::uint8_t rgba[4] = {red, 0x22, 0x33, 0xff};
                std::memcpy(mapping->plane(0).data() + std::size_t{y} * mapping->stride(0) + x * 4, rgba, 4);
            }
        }
        EXPECT_TRUE(mapping->finish());
        return std::move(*image);
    }

    void expect_texture_red(const ImportListener& listener, std::uint64_t id, std::uint8_t red) {
        const ImportedTexture* texture = listener.texture(id);
        ASSERT_NE(texture, nullptr) << "image " << id << " has no texture";
        auto pixels = testing::read_pixels(*display_, texture->target, texture->texture, side, side);
        ASSERT_TRUE(pixels) << pixels.error().message;
        for (std::size_t i = 0; i < pixels->size(); i += 4) {
            ASSERT_EQ((*pixels)[i], red) << "pixel " << i / 4;
        }
    }

    std::optional<gbm::Device> device_;
    std::optional<Display> display_;
    std::optional<Importer> importer_;
};

TEST_F(ImportListenerTest, ADmaBufImageIsImportedOnceRenamedAndReleased) {
    ImportListener listener(*importer_);
    const DmaBufImage image = filled(0x11);
    ASSERT_TRUE(listener.image_added(3, image, true));
    EXPECT_EQ(importer_->size(), 1U);
    expect_texture_red(listener, 3, 0x11);

    listener.image_renamed(3, 9);  // FrameReceiver keeps a dead producer's frame so
    EXPECT_EQ(listener.texture(3), nullptr);
    expect_texture_red(listener, 9, 0x11);

    listener.image_removed(9);
    EXPECT_EQ(listener.texture(9), nullptr);
    EXPECT_EQ(importer_->size(), 0U) << "the EGLImage and texture went with the image";
    listener.image_removed(9);  // twice, or an id never imported: nothing to do, no abort
    listener.image_renamed(42, 43);
}

TEST_F(ImportListenerTest, AnImageThatIsNotADmaBufIsLeftToTheCaller) {
    ImportListener listener(*importer_);
    auto memfd = MemfdAllocator().allocate(side, side, DRM_FORMAT_ABGR8888);
    ASSERT_TRUE(memfd) << memfd.error().message;
    ASSERT_TRUE(listener.image_added(1, *memfd, true)) << "the CPU path uploads it: not refused";
    EXPECT_EQ(listener.texture(1), nullptr);
    EXPECT_EQ(importer_->size(), 0U);
    EXPECT_EQ(listener.path(1), ImagePath::cpu);
    EXPECT_EQ(listener.cpu_reason(1), "") << "conversion is off: the CPU path is the plan, not a fallback";
    EXPECT_EQ(listener.conversions(), nullptr);
    listener.image_removed(1);
    EXPECT_EQ(listener.path(1), ImagePath::unknown);
}

TEST_F(ImportListenerTest, AnImportThatFailsRefusesTheImageAtAddTime) {
    ImportListener listener(*importer_);
    const DmaBufImage first = filled(0x44);
    const DmaBufImage second = filled(0x55);
    ASSERT_TRUE(listener.image_added(5, first, true));
    auto refused = listener.image_added(5, second, true);  // a second image under a live id
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::invalid_argument);
    EXPECT_NE(refused.error().message.find("image 5 is already imported"), std::string::npos)
        << refused.error().message;
    expect_texture_red(listener, 5, 0x44);  // the first import stands
    listener.image_removed(5);
    EXPECT_EQ(importer_->size(), 0U);
}

// Issue 14 item 3, the consumer's opt-in: a shared-memory image turned into a DMA-BUF once,
// imported, and closed with the image. A stand-in conversion (a GBM copy, which EGL imports
// in both guests) checks the listener's bookkeeping; the real udmabuf follows below.
DmaBufImage shared_memory_filled(std::uint8_t red) {
    auto image = MemfdAllocator().allocate(side, side, DRM_FORMAT_ABGR8888);
    EXPECT_TRUE(image) << image.error().message;
    if (!image) return DmaBufImage();
    auto mapping = image->map(Access::write);
    EXPECT_TRUE(mapping);
    if (!mapping) return DmaBufImage();
    for (std::uint32_t y = 0; y < side; ++y) {
        for (std::uint32_t x = 0; x < side; ++x) {
            const std::uint8_t rgba[4] = {red, 0x22, 0x33, 0xff};
            std::memcpy(mapping->plane(0).data() + std::size_t{y} * mapping->stride(0) + x * 4, rgba, 4);
        }
    }
    EXPECT_TRUE(mapping->finish());
    return std::move(*image);
}

TEST_F(ImportListenerTest, AConvertedSharedMemoryImageIsImportedOnceAndClosedWithTheImage) {
    int conversions = 0;
    auto gbm_copy = [this, &conversions](const DmaBufImage& shared) -> Result<DmaBufImage> {
        ++conversions;
        auto copy = device_->allocate({side, side, DRM_FORMAT_ABGR8888, {DRM_FORMAT_MOD_LINEAR}, 0});
        if (!copy) return copy;
        auto from = shared.map(Access::read);
        auto to = copy->map(Access::write);
        if (!from || !to) return make_error(Errc::unsupported, "stand-in conversion: map failed");
        for (std::uint32_t y = 0; y < side; ++y) {
            std::memcpy(to->plane(0).data() + std::size_t{y} * to->stride(0),
                        from->plane(0).data() + std::size_t{y} * from->stride(0), side * 4);
        }
        if (auto done = to->finish(); !done) return std::move(done).error();
        return copy;
    };
    const DmaBufImage image = shared_memory_filled(0x66);
    const int fds_with_image = testing::open_fd_count();
    {
        ImportListener listener(*importer_, {.convert_shared_memory = true, .conversion = gbm_copy});
        ASSERT_TRUE(listener.image_added(4, image, true));
        EXPECT_EQ(listener.path(4), ImagePath::udmabuf);
        EXPECT_EQ(listener.cpu_reason(4), "");
        expect_texture_red(listener, 4, 0x66);
        auto again = listener.image_added(4, image, true);  // a second image under a live id
        ASSERT_FALSE(again);
        EXPECT_NE(again.error().message.find("image 4 is already imported (path udmabuf)"), std::string::npos)
            << again.error().message;
        EXPECT_EQ(listener.path(4), ImagePath::udmabuf) << "the first import stands";
        expect_texture_red(listener, 4, 0x66);
        ASSERT_NE(listener.conversions(), nullptr);
        EXPECT_EQ(listener.conversions()->find(4) != nullptr, true) << "kept with the import";
        listener.image_renamed(4, retained_image_id);
        expect_texture_red(listener, retained_image_id, 0x66);
        EXPECT_NE(listener.conversions()->find(retained_image_id), nullptr);
        listener.image_removed(retained_image_id);
        EXPECT_EQ(listener.texture(retained_image_id), nullptr);
        EXPECT_EQ(listener.conversions()->size(), 0U);
        EXPECT_EQ(importer_->size(), 0U);
        EXPECT_EQ(testing::open_fd_count(), fds_with_image)
            << "the conversion's DMA-BUF closed with the image";
        EXPECT_EQ(conversions, 1);
    }
}

TEST_F(ImportListenerTest, WithoutAUdmabufDeviceSharedMemoryFallsBackToTheCpuAndSaysWhy) {
    const SharedMemoryConversion missing = udmabuf_conversion("/nonexistent/udmabuf");
    const DmaBufImage image = shared_memory_filled(0x77);
    ImportListener listener(*importer_, {.convert_shared_memory = true, .conversion = missing});
    ASSERT_TRUE(listener.image_added(2, image, true)) << "the CPU path still works: not refused";
    EXPECT_EQ(listener.path(2), ImagePath::cpu);
    EXPECT_EQ(listener.texture(2), nullptr);
    EXPECT_NE(listener.cpu_reason(2).find("image 2: no DMA-BUF for this shared-memory image: "),
              std::string::npos)
        << listener.cpu_reason(2);
    EXPECT_NE(listener.cpu_reason(2).find("/nonexistent/udmabuf"), std::string::npos)
        << listener.cpu_reason(2);

    ImportListener strict(*importer_,
                          {.convert_shared_memory = true, .require_conversion = true, .conversion = missing});
    auto refused = strict.image_added(3, image, true);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("/nonexistent/udmabuf"), std::string::npos)
        << refused.error().message;
    EXPECT_EQ(strict.path(3), ImagePath::unknown);
}

// The real /dev/udmabuf. The 6.1 guest has none: the listener says so. The 6.12 guest has
// one, converts once, and Mesa 25's EGL refuses the buffer: the listener says that, keeps
// nothing, and never hands out a texture for it.
TEST_F(ImportListenerTest, TheRealUdmabufInThisGuest) {
    const testing::VmStack stack = testing::vm_stack();
    const char* stack_name = stack == testing::VmStack::bookworm ? "bookworm" : "backports";
    const DmaBufImage image = shared_memory_filled(0x88);
    const int fds_with_image = testing::open_fd_count();
    {
        ImportListener listener(*importer_, {.convert_shared_memory = true, .conversion = {}});
        ASSERT_TRUE(listener.image_added(6, image, true));
        const std::string reason(listener.cpu_reason(6));
        std::printf("[ guest %s ] udmabuf import of a shared-memory image: %s%s\n", stack_name,
                    std::string(to_string(listener.path(6))).c_str(),
                    reason.empty() ? "" : (": " + reason).c_str());
        if (stack == testing::VmStack::bookworm) {
            EXPECT_NE(::access("/dev/udmabuf", F_OK), 0) << "Debian 12's 6.1 kernel has no udmabuf";
            EXPECT_EQ(listener.path(6), ImagePath::cpu);
            EXPECT_NE(reason.find("/dev/udmabuf"), std::string::npos) << reason;
            EXPECT_EQ(listener.conversions()->conversions(), 0U);
        } else if (stack == testing::VmStack::backports) {
            EXPECT_EQ(::access("/dev/udmabuf", F_OK), 0) << "6.12 from bookworm-backports has udmabuf";
            EXPECT_EQ(listener.conversions()->conversions(), 1U) << "converted, once";
            // On virtio_gpu eglCreateImage refuses (EGL_BAD_ALLOC); on vgem it succeeds and
            // the read-back check refuses (GL_OUT_OF_MEMORY): gbm::Device::open_default() may
            // pick either, and both end on the CPU path.
            EXPECT_EQ(listener.path(6), ImagePath::cpu) << "Mesa 25's EGL cannot use foreign DMA-BUFs";
            EXPECT_NE(reason.find("converted to a DMA-BUF, but the import failed: "), std::string::npos)
                << reason;
            EXPECT_TRUE(reason.find("EGL_BAD_ALLOC") != std::string::npos ||
                        reason.find("GL_OUT_OF_MEMORY") != std::string::npos)
                << reason;
            EXPECT_EQ(listener.texture(6), nullptr);
            EXPECT_EQ(listener.conversions()->size(), 0U) << "a refused conversion is closed at once";
            EXPECT_EQ(testing::open_fd_count(), fds_with_image + 1) << "only /dev/udmabuf itself stays open";
        } else {
            FAIL() << "unknown guest (TEXSHARE_VM_STACK)";
        }
        listener.image_removed(6);
    }
    EXPECT_EQ(testing::open_fd_count(), fds_with_image) << "the listener closed /dev/udmabuf at its end";
}

}  // namespace
}  // namespace texshare::egl
