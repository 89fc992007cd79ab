// The guest section (--sections=guest): a CPU-rendered 1920x1080 ARGB8888 frame in shared
// memory (a sealed memfd from MemfdAllocator) reaching the GPU every frame, two ways, in one
// process and one run:
//   - copied: memcpy into a host-visible staging VkBuffer, then vkCmdCopyBufferToImage into
//     an OPTIMAL image (what a Vulkan consumer of shared memory does without udmabuf);
//   - udmabuf: the same memfd turned into a DMA-BUF (UdmabufDevice) and imported once as a
//     LINEAR VkImage (VK_EXT_external_memory_dma_buf); per frame the CPU write is bracketed
//     by DMA_BUF_IOCTL_SYNC start/end and the GPU copies the image into the same OPTIMAL
//     image (vkCmdCopyImage).
// Both rows then do the same GPU work; the staging memcpy is the difference. Each frame
// writes a new stamp into its first and last pixel, is submitted and waited for (a fence),
// and ends with both pixels read back from the OPTIMAL image and checked: a row that did not
// see the new bytes fails the run. Before timing, each row's first frame is compared with
// the memfd's bytes, every pixel.
//
// It runs only where /dev/udmabuf and a Vulkan device with VK_EXT_external_memory_dma_buf
// exist (the 6.12 guest with Mesa 25's lavapipe; scripts/bench.sh --guest) and otherwise
// prints why it skipped.
#include "sections.hpp"

#include <cstdio>

#include "harness.hpp"

namespace bench {
namespace {

constexpr const char* title = "G. A CPU-rendered 1920x1080 ARGB8888 frame to the GPU each frame: staging copy against udmabuf";

void print_skipped(std::string_view why, bool required) {
    if (required) fail(fmt::format("the guest section cannot run: {}", why));
    fmt::print("{0}\n### {1}\n{0}\nSkipped: {2}\n", blank_line, title, why);
    std::fflush(stdout);
}

}  // namespace
}  // namespace bench

#ifndef TEXSHARE_BENCH_VULKAN

constexpr const char* without_vulkan = "texshare_bench was built without Vulkan (libvulkan-dev was missing when CMake ran)";
void bench::guest_section(double, bool required) { print_skipped(without_vulkan, required); }
bool bench::guest_cost(std::string_view row, std::size_t) {
    if (row == "guest_copy" || row == "guest_udmabuf") fail(without_vulkan);
    return false;
}

#else

#include <drm_fourcc.h>
#include <linux/dma-buf.h>

#include <cstdlib>
#include <cstring>
#include <optional>

#include "texshare/image_mapping.hpp"
#include "texshare/memfd_allocator.hpp"
#include "support/vulkan_readback.hpp"
#include "texshare/udmabuf.hpp"
#include "vulkan_gpu.hpp"

namespace bench {
namespace {

using namespace texshare;
using texshare::testing::VulkanImportedImage;

constexpr std::uint32_t width = 1920, height = 1080;
constexpr VkFormat format = VK_FORMAT_B8G8R8A8_UNORM;  // DRM_FORMAT_ARGB8888's bytes: B, G, R, A
// Where a frame's stamp goes: its first and its last pixel.
struct StampSpots {
    std::size_t first = 0, last = 0;
};

// What both rows share: the frame's memory and the GPU side it reaches.
struct Frame {
    Frame(const VulkanContext& gpu_, const DmaBufImage& memfd_, const DmaBufImage& dma_buf_)
        : gpu(gpu_),
          memfd(memfd_),
          dma_buf(dma_buf_),
          pixels(must(memfd_.map(Access::read_write), "mapping the memfd")),
          stride(memfd_.layout().planes[0].stride),
          bytes(std::size_t{stride} * height),
          spots{0, std::size_t{stride} * (height - 1) + (width - 1) * 4},
          target(gpu_, width, height, format, VK_IMAGE_USAGE_TRANSFER_DST_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT),
          stamps(gpu_, 8, VK_BUFFER_USAGE_TRANSFER_DST_BIT),
          whole(gpu_, bytes, VK_BUFFER_USAGE_TRANSFER_DST_BIT) {}

    std::byte* data() const { return pixels.plane(0).data(); }
    void write_stamp(std::uint32_t stamp) const {
        std::memcpy(data() + spots.first, &stamp, 4);
        std::memcpy(data() + spots.last, &stamp, 4);
    }
    void check_stamp(std::uint32_t stamp, const char* row) const {
        std::uint32_t seen[2] = {0, 0};
        std::memcpy(seen, stamps.data, sizeof seen);
        if (seen[0] != stamp || seen[1] != stamp) {
            fail(fmt::format("{}: the GPU saw stamps {:#x} and {:#x} in the first and last pixel, the CPU wrote {:#x}",
                             row, seen[0], seen[1], stamp));
        }
    }

    // Records what ends every frame of both rows: the OPTIMAL image, just written, made a
    // transfer source and its two stamped pixels copied into `stamps`.
    void record_stamp_readback(VkCommandBuffer commands) const {
        image_barrier(commands, target.image, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL,
                      VK_ACCESS_TRANSFER_WRITE_BIT, VK_ACCESS_TRANSFER_READ_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT,
                      VK_PIPELINE_STAGE_TRANSFER_BIT);
        const VkImageSubresourceLayers colour{VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1};
        const VkBufferImageCopy regions[2] = {{0, 0, 0, colour, {0, 0, 0}, {1, 1, 1}},
                                              {4, 0, 0, colour, {width - 1, height - 1, 0}, {1, 1, 1}}};
        vkCmdCopyImageToBuffer(commands, target.image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, stamps.buffer, 2, regions);
        buffer_to_host(commands, stamps.buffer);
    }
    // The OPTIMAL image made a copy destination; its old bytes are all overwritten, so
    // UNDEFINED (the previous frame's readback must be done with it first).
    void record_target_ready(VkCommandBuffer commands) const {
        image_barrier(commands, target.image, VK_IMAGE_LAYOUT_UNDEFINED, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                      VK_ACCESS_TRANSFER_READ_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT,
                      VK_PIPELINE_STAGE_TRANSFER_BIT);
    }
    static void buffer_to_host(VkCommandBuffer commands, VkBuffer buffer) {
        const VkBufferMemoryBarrier barrier{VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER, nullptr, VK_ACCESS_TRANSFER_WRITE_BIT,
                                            VK_ACCESS_HOST_READ_BIT, VK_QUEUE_FAMILY_IGNORED, VK_QUEUE_FAMILY_IGNORED,
                                            buffer, 0, VK_WHOLE_SIZE};
        vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 0, nullptr, 1,
                             &barrier, 0, nullptr);
    }

    // Every pixel of the OPTIMAL image (after a frame) against the memfd's bytes.
    void check_every_pixel(const char* row) const {
        const HostBuffer& all = whole;
        Submission readback(gpu);
        VkCommandBuffer commands = readback.begin();
        const VkImageSubresourceLayers colour{VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1};
        const VkBufferImageCopy region{0, stride / 4, 0, colour, {0, 0, 0}, {width, height, 1}};
        vkCmdCopyImageToBuffer(commands, target.image, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, all.buffer, 1, &region);
        buffer_to_host(commands, all.buffer);
        readback.end();
        readback.submit_and_wait();
        if (std::memcmp(all.data, data(), bytes) != 0) {
            std::size_t at = 0;
            while (all.data[at] == data()[at]) ++at;
            fail(fmt::format("{}: the OPTIMAL image differs from the memfd's bytes first at byte {} (pixel {}, {})", row,
                             at, (at % stride) / 4, at / stride));
        }
    }

    const VulkanContext& gpu;
    const DmaBufImage& memfd;
    const DmaBufImage& dma_buf;
    ImageMapping pixels;
    std::uint32_t stride;
    std::size_t bytes;
    StampSpots spots;
    OptimalImage target;
    HostBuffer stamps;
    HostBuffer whole;  // check_every_pixel's copy of the OPTIMAL image
    std::uint32_t next_stamp = 1;
};

// Fills the frame with bytes that depend on `seed`, so a row that read old bytes is caught.
// Eight bytes at a time: the guest is qemu TCG, where a byte loop over 8 MB takes a while.
void paint_frame(const Frame& frame, std::uint32_t seed) {
    for (std::size_t i = 0; i + 8 <= frame.bytes; i += 8) {
        const std::uint64_t word = (i + seed) * 0x9e3779b97f4a7c15ULL;
        std::memcpy(frame.data() + i, &word, 8);
    }
}

class StagingUpload final : public RoundTrip {
public:
    explicit StagingUpload(Frame& frame)
        : frame_(frame), staging_(frame.gpu, frame.bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT), submission_(frame.gpu) {
        VkCommandBuffer commands = submission_.begin();
        frame.record_target_ready(commands);
        const VkImageSubresourceLayers colour{VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1};
        const VkBufferImageCopy region{0, frame.stride / 4, 0, colour, {0, 0, 0}, {width, height, 1}};
        vkCmdCopyBufferToImage(commands, staging_.buffer, frame.target.image, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1,
                               &region);
        frame.record_stamp_readback(commands);
        submission_.end();
    }

    void run(std::size_t frames) override {
        for (std::size_t i = 0; i < frames; ++i) {
            const std::uint32_t stamp = frame_.next_stamp++;
            frame_.write_stamp(stamp);
            // vkQueueSubmit makes host writes to host-coherent memory visible to the device.
            std::memcpy(staging_.data, frame_.data(), frame_.bytes);
            submission_.submit_and_wait();
            frame_.check_stamp(stamp, "staging copy");
        }
    }

private:
    Frame& frame_;
    HostBuffer staging_;
    Submission submission_;
};

class UdmabufImport final : public RoundTrip {
public:
    // Imports the DMA-BUF once (tests/support's VulkanImportedImage: LINEAR, the row pitch
    // given explicitly where VK_EXT_image_drm_format_modifier is there) and reads every pixel
    // of it back once, against the memfd's bytes. Between frames the image is in GENERAL and
    // owned by the producer's queue family (FOREIGN or EXTERNAL), as read_pixels() leaves it.
    UdmabufImport(Frame& frame, bool sync)
        : frame_(frame),
          sync_(sync),
          fd_(frame.dma_buf.plane_fd(0)),
          linear_(must(VulkanImportedImage::import(frame.gpu, frame.dma_buf), "importing the udmabuf into Vulkan")),
          submission_(frame.gpu) {
        const auto pixels = must(linear_.read_pixels(), "reading the imported udmabuf back");
        if (pixels.size() != std::size_t{width} * height * 4 ||
            std::memcmp(pixels.data(), frame.data(), pixels.size()) != 0) {
            fail("udmabuf: the imported LINEAR image's pixels differ from the memfd's");
        }
        const std::uint32_t ours = frame.gpu.queue_family(), producer = frame.gpu.producer_queue_family();
        VkCommandBuffer commands = submission_.begin();
        // Acquired from the producer for the copy, released back after it (the spec's queue
        // family ownership transfer for external memory).
        image_barrier(commands, linear_.image(), VK_IMAGE_LAYOUT_GENERAL, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, 0,
                      VK_ACCESS_TRANSFER_READ_BIT, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT,
                      producer, ours);
        frame.record_target_ready(commands);
        const VkImageSubresourceLayers colour{VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1};
        const VkImageCopy region{colour, {0, 0, 0}, colour, {0, 0, 0}, {width, height, 1}};
        vkCmdCopyImage(commands, linear_.image(), VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, frame.target.image,
                       VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1, &region);
        frame.record_stamp_readback(commands);
        image_barrier(commands, linear_.image(), VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, VK_IMAGE_LAYOUT_GENERAL,
                      VK_ACCESS_TRANSFER_READ_BIT, 0, VK_PIPELINE_STAGE_TRANSFER_BIT,
                      VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, ours, producer);
        submission_.end();
    }

    // Repaints the whole frame (new bytes for the every-pixel check), with the SYNC a CPU
    // writer of a DMA-BUF brackets its access with.
    void paint(std::uint32_t seed) {
        if (sync_) check(detail::sync_dma_buf(fd_, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE), "SYNC start");
        paint_frame(frame_, seed);
        if (sync_) check(detail::sync_dma_buf(fd_, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE), "SYNC end");
    }

    bool explicit_row_pitch() const noexcept { return linear_.explicit_row_pitch(); }

    void run(std::size_t frames) override {
        for (std::size_t i = 0; i < frames; ++i) {
            const std::uint32_t stamp = frame_.next_stamp++;
            // The CPU's access bracketed on the DMA-BUF (its pages are the memfd's, written
            // through the same mapping as the copied row's).
            if (sync_) check(detail::sync_dma_buf(fd_, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE), "SYNC start");
            frame_.write_stamp(stamp);
            if (sync_) check(detail::sync_dma_buf(fd_, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE), "SYNC end");
            submission_.submit_and_wait();
            frame_.check_stamp(stamp, "udmabuf");
        }
    }

private:
    Frame& frame_;
    bool sync_;
    BorrowedFd fd_;
    VulkanImportedImage linear_;
    Submission submission_;
};

// The memfd frame, its DMA-BUF and the Vulkan device, or why there are none.
struct Guest {
    DmaBufImage memfd = must(MemfdAllocator().allocate(width, height, DRM_FORMAT_ARGB8888), "allocate ARGB8888");
    std::optional<DmaBufImage> dma_buf;
    std::optional<VulkanContext> gpu;
    // TEXSHARE_BENCH_MEMFD_AS_DMA_BUF=1, for developing and counting instructions on a machine
    // without /dev/udmabuf: lavapipe imports the memfd itself as if it were a DMA-BUF (it only
    // mmaps the fd), and there is no DMA-BUF to SYNC. Times from such a run are not udmabuf's.
    bool memfd_as_dma_buf = std::getenv("TEXSHARE_BENCH_MEMFD_AS_DMA_BUF") != nullptr;
    std::string skipped;

    Guest() {
        if (memfd_as_dma_buf) {
            PlaneFds fds;
            fds[0] = must(UniqueFd::dup(memfd.plane_fd(0)), "dup of the memfd");
            dma_buf = must(DmaBufImage::adopt(memfd.layout(), Backing::dma_buf, std::move(fds)), "adopt");
        } else {
            auto device = UdmabufDevice::open();
            if (!device) {
                skipped = fmt::format("no udmabuf: {}", device.error().message);
                return;
            }
            dma_buf = must(device->convert(memfd), "UdmabufDevice::convert of the memfd frame");
        }
        auto opened = VulkanContext::create();
        if (!opened) {
            skipped = opened.error().message;
            return;
        }
        gpu.emplace(std::move(*opened));
    }
};

}  // namespace

bool guest_cost(std::string_view row, std::size_t frames) {
    if (row != "guest_copy" && row != "guest_udmabuf") return false;
    Guest guest;
    if (!guest.skipped.empty()) fail(guest.skipped);
    Frame frame(*guest.gpu, guest.memfd, *guest.dma_buf);
    if (row == "guest_copy") {
        StagingUpload(frame).run(frames);
    } else {
        UdmabufImport(frame, !guest.memfd_as_dma_buf).run(frames);
    }
    return true;
}

void guest_section(double scale, bool required) {
    Guest guest;
    if (!guest.skipped.empty()) return print_skipped(guest.skipped, required);
    Frame frame(*guest.gpu, guest.memfd, *guest.dma_buf);
    paint_frame(frame, 1);
    StagingUpload copied(frame);
    UdmabufImport imported(frame, !guest.memfd_as_dma_buf);  // reads every pixel of the import back
    copied.run(1);
    frame.check_every_pixel("staging copy");
    imported.paint(2);
    imported.run(1);
    frame.check_every_pixel("udmabuf");

    const std::size_t frames = std::max<std::size_t>(static_cast<std::size_t>(20 * scale), 2), repetitions = 9;
    const Samples t = run_interleaved({{&imported, frames}, {&copied, frames}}, repetitions);
    Table table(fmt::format("{} ({})", title, guest.gpu->device_name()), "copying costs");
    table.rows.push_back({"udmabuf: imported once as a LINEAR VkImage; per frame SYNC start/end around the CPU write, "
                          "vkCmdCopyImage into an OPTIMAL image",
                          format_seconds(t.median_of(0)), 1.0, "", {}});
    table.rows.push_back({"copied: memcpy into a host-visible staging VkBuffer, vkCmdCopyBufferToImage into the same "
                          "OPTIMAL image",
                          format_seconds(t.median_of(1)), t.ratio(1, 0), "the udmabuf time", {}});
    table.notes.push_back(fmt::format(
        "Per frame, one process: a new stamp written into the frame's first and last pixel (the rendering itself, "
        "common to both, is not timed), one submission waited for on a fence, and both pixels read back from the "
        "OPTIMAL image and checked. Medians of {} interleaved repetitions of {} frames; the ratio is the median of "
        "the ratios within each repetition. Every pixel was compared once per row before timing.",
        repetitions, frames));
    table.notes.push_back(imported.explicit_row_pitch()
                              ? "The udmabuf is imported as DRM_FORMAT_MOD_LINEAR with its own row pitch given "
                                "(VK_EXT_image_drm_format_modifier)."
                              : "The udmabuf is imported with VK_IMAGE_TILING_LINEAR (the driver's row pitch is the "
                                "frame's stride; the device has no VK_EXT_image_drm_format_modifier).");
    if (guest.memfd_as_dma_buf) table.notes.push_back("TEXSHARE_BENCH_MEMFD_AS_DMA_BUF: the memfd itself imported, no udmabuf.");
    print_table(table);
}

}  // namespace bench

#endif  // TEXSHARE_BENCH_VULKAN
