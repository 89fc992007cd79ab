// egl/import_listener.hpp: an ImportListener keeps an Importer in step with the images a
// frame endpoint tracks. It needs an Importer, and so EGL DMA-BUF import, which the host's
// surfaceless llvmpipe lacks: this binary runs in the VM lane (tests/vm/VmLane.cmake), on
// the guest's GBM device and its EGL display, and calls the listener as an endpoint would.
#include "texshare/egl/import_listener.hpp"

#include <cstring>
#include <optional>

#include "support/fd_count.hpp"
#include "support/gl_helpers.hpp"
#include "texshare/egl/importer.hpp"
#include "texshare/gbm/allocator.hpp"
#include "texshare/memfd_allocator.hpp"

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
    listener.image_removed(1);
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

}  // namespace
}  // namespace texshare::egl
