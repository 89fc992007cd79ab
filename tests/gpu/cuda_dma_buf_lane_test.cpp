// GPU lane (scripts/gpu-lane.sh; the accelerator machine only, never CI): a DMA-BUF exported
// by CUDA (cuMemGetHandleForAddressRange) is a real DMA-BUF, so texshare's channel carries it
// and receive validation accepts it (DMA_BUF_MAGIC, its real size from lseek), and refuses a
// layout larger than that size. NVIDIA's EGL lists the DMA-BUF import extensions yet cannot
// import it (EGL_BAD_ALLOC, docs/gpu-lane.md): egl::Importer must say so as an error value,
// never crash, and leave no fd behind.
#include <drm_fourcc.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "gpu/cuda_driver.hpp"
#include "support/fd_count.hpp"
#include "texshare/egl/display.hpp"
#include "texshare/egl/importer.hpp"
#include "texshare/image_wire.hpp"

namespace texshare {
namespace {

constexpr std::uint32_t width = 256;
constexpr std::uint32_t height = 256;
constexpr std::size_t bytes = std::size_t{width} * height * 4;  // one 4-byte pixel each

// CUDA's and NVIDIA EGL's own fds (33 and 11, measured) open with the driver and stay open
// for the process: the driver and the EGL display are opened once per suite, before the
// first fd count, so each test's count sees only what the test itself opened.
class CudaDmaBufLane : public testing::FdLeakTest {
protected:
    static void SetUpTestSuite() {
        cuda_ = new gpu_lane::CudaDriver;
        if (auto opened = cuda_->open(); !opened) setup_error_ = opened.error().message;
        auto display = egl::Display::open_surfaceless();
        if (display) display_ = new egl::Display(std::move(*display));
        else setup_error_ += display.error().message;
    }
    static void TearDownTestSuite() {
        delete display_;
        delete cuda_;
    }
    void SetUp() override {
        ASSERT_TRUE(setup_error_.empty()) << setup_error_;
        FdLeakTest::SetUp();
        auto supported = cuda_->attribute(gpu_lane::CudaDriver::attribute_dma_buf_supported);
        ASSERT_TRUE(supported) << supported.error().message;
        ASSERT_EQ(*supported, 1) << "CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED is 0 on this GPU";
        auto pointer = cuda_->allocate(bytes);
        ASSERT_TRUE(pointer) << pointer.error().message;
        pointer_ = *pointer;
        ASSERT_TRUE(cuda_->fill(pointer_, 0xff0000ffU, bytes / 4));
    }
    void TearDown() override {
        if (pointer_ != 0) cuda_->free(pointer_);
        FdLeakTest::TearDown();
    }

    // The CUDA range as a LINEAR ABGR8888 dma_buf image of `rows` rows.
    Result<DmaBufImage> exported(std::uint32_t rows) const {
        auto fd = cuda_->export_dma_buf(pointer_, bytes);
        if (!fd) return std::move(fd).error();
        ImageLayout layout{width, rows, DRM_FORMAT_ABGR8888, DRM_FORMAT_MOD_LINEAR, 1, {}};
        layout.planes[0] = PlaneLayout{0, width * 4};
        PlaneFds fds;
        fds[0] = std::move(*fd);
        return DmaBufImage::adopt(layout, Backing::dma_buf, std::move(fds));
    }

    static inline gpu_lane::CudaDriver* cuda_ = nullptr;
    static inline egl::Display* display_ = nullptr;
    static inline std::string setup_error_;
    gpu_lane::CudaDriver::CUdeviceptr pointer_ = 0;
};

TEST_F(CudaDmaBufLane, PassesTheChannelAndReceiveValidationAsARealDmaBuf) {
    auto image = exported(height);
    ASSERT_TRUE(image) << image.error().message;
    const off_t size = ::lseek(image->plane_fd(0).get(), 0, SEEK_END);
    std::printf("cuda dma-buf: %zu bytes asked, lseek size %lld\n", bytes, static_cast<long long>(size));
    EXPECT_GE(size, static_cast<off_t>(bytes));

    auto pair = ImageChannel::create_pair();
    ASSERT_TRUE(pair) << pair.error().message;
    ASSERT_TRUE(send_image(pair->first, 7, *image));
    auto received = receive_image(pair->second);
    ASSERT_TRUE(received) << received.error().message;
    EXPECT_EQ(received->id, 7U);
    EXPECT_EQ(received->image.backing(), Backing::dma_buf);
    EXPECT_EQ(received->image.layout(), image->layout());
}

TEST_F(CudaDmaBufLane, ALayoutBeyondItsRealSizeIsRefusedOnReceipt) {
    // 64x the rows the 256 KiB range holds: the plane would end past the DMA-BUF's lseek size.
    auto image = exported(height * 64);
    ASSERT_TRUE(image) << image.error().message;
    auto pair = ImageChannel::create_pair();
    ASSERT_TRUE(pair) << pair.error().message;
    ASSERT_TRUE(send_image(pair->first, 8, *image));
    auto received = receive_image(pair->second);
    ASSERT_FALSE(received) << "a plane past the end of the CUDA DMA-BUF was accepted";
    std::printf("refused as expected: %s\n", received.error().message.c_str());
    EXPECT_EQ(received.error().code, Errc::rejected) << received.error().message;
    EXPECT_NE(received.error().message.find("holds"), std::string::npos) << received.error().message;
}

TEST_F(CudaDmaBufLane, EglImportFailsWithANamedErrorNotACrash) {
    std::printf("EGL display: %s, %s\n", std::string(display_->platform()).c_str(), display_->renderer().c_str());
    auto importer = egl::Importer::create(*display_);
    ASSERT_TRUE(importer) << importer.error().message;
    auto image = exported(height);
    ASSERT_TRUE(image) << image.error().message;
    auto imported = importer->import(9, *image);
    if (imported) {
        // Should NVIDIA's EGL ever import it, the pixels must be right, or texshare must say not.
        auto readable = importer->check_readable(9, *image);
        ASSERT_FALSE(readable) << "NVIDIA's EGL imported a CUDA DMA-BUF and it reads back: update docs/gpu-lane.md";
        std::printf("imported but unreadable: %s\n", readable.error().message.c_str());
        return;
    }
    std::printf("EGL import refused: %s\n", imported.error().message.c_str());
    EXPECT_NE(imported.error().message.find("EGL_BAD"), std::string::npos) << imported.error().message;
    EXPECT_EQ(importer->size(), 0U);
}

}  // namespace
}  // namespace texshare
