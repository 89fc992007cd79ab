#include "dma_buf_exporters.hpp"

#include <span>

#include <fmt/format.h>

#include "names.hpp"
#include "pattern.hpp"
#include "texshare/dma_heap_allocator.hpp"
#include "texshare/memfd_allocator.hpp"
#include "texshare/udmabuf.hpp"
#if TEXSHARE_INFO_HAVE_VULKAN
#include "support/vulkan_readback.hpp"
#endif

namespace texshare::info {
namespace {

constexpr std::uint32_t probe_fourcc = DRM_FORMAT_ARGB8888;

// What the receiving end's own mapping reads, against the pattern written before sending.
Feature read_back_received(const DmaBufImage& received, std::string what) {
    auto mapping = received.map(Access::read);
    if (!mapping) {
        return {Outcome::failed, fmt::format("map on the receiving end: {}", mapping.error().message)};
    }
    std::string mismatch = find_mismatch(mapping->plane(0), mapping->stride(0), *byte_order(probe_fourcc),
                                         true, received.width(), received.height());
    if (!mismatch.empty()) return {Outcome::failed, fmt::format("compare: {}", mismatch)};
    return {Outcome::works, std::move(what)};
}

// A probe-sized memfd image with the pattern, converted: the udmabuf image, or the stage
// and error where it stopped ("convert" with an unsupported outcome for no device).
struct Converted {
    Result<DmaBufImage> image = make_error(Errc::unsupported, "not converted");
    std::string stage;
    Outcome outcome = Outcome::failed;
};

Converted convert_pattern(const std::string& udmabuf_path) {
    Converted result;
    auto device = UdmabufDevice::open(udmabuf_path);
    if (!device) {
        result.outcome = Outcome::unsupported;  // the error names the device: no stage needed
        result.image = std::move(device).error();
        return result;
    }
    auto memfd = MemfdAllocator().allocate(probe_width, probe_height, probe_fourcc);
    if (!memfd) {
        result.stage = "allocate";
        result.image = std::move(memfd).error();
        return result;
    }
    if (auto written = write_pattern_to(*memfd, *byte_order(probe_fourcc)); !written) {
        result.stage = "map";
        result.image = std::move(written).error();
        return result;
    }
    result.stage = "convert";
    result.image = device->convert(*memfd);  // the memfd closes here; the DMA-BUF keeps its pages
    return result;
}

}  // namespace

std::vector<HeapReport> probe_heaps(std::string& error, const std::string& heap_dir) {
    std::vector<HeapReport> heaps;
    auto names = DmaHeapAllocator::list_heaps(heap_dir);
    if (!names) {
        error = names.error().message;
        return heaps;
    }
    std::uint64_t image_id = 1;
    for (const std::string& name : *names) {
        HeapReport heap{name, {}};
        DmaHeapAllocator::Options options;
        options.heap = name;
        options.heap_dir = heap_dir;
        auto allocator = DmaHeapAllocator::open(options);
        auto image = allocator ? allocator->allocate(probe_width, probe_height, probe_fourcc)
                               : Result<DmaBufImage>(allocator.error());
        if (!image) {
            heap.allocation = {Outcome::failed, fmt::format("allocate: {}", image.error().message)};
        } else if (auto written = write_pattern_to(*image, *byte_order(probe_fourcc)); !written) {
            heap.allocation = {Outcome::failed, fmt::format("map: {}", written.error().message)};
        } else if (auto received = share_through_socket(*image, image_id++); !received) {
            heap.allocation = {Outcome::failed, fmt::format("share: {}", received.error().message)};
        } else {
            heap.allocation = read_back_received(
                *received,
                fmt::format("{}x{} {}, stride {}: allocated, written, sent, validated on receipt and "
                            "read back exactly",
                            probe_width, probe_height, fourcc_label(probe_fourcc),
                            image->layout().planes[0].stride));
        }
        heaps.push_back(std::move(heap));
    }
    return heaps;
}

Feature probe_udmabuf_conversion(const std::string& udmabuf_path) {
    Converted converted = convert_pattern(udmabuf_path);
    if (!converted.image) {
        return {converted.outcome, fmt::format("{}{}{}", converted.stage, converted.stage.empty() ? "" : ": ",
                                               converted.image.error().message)};
    }
    auto received = share_through_socket(*converted.image, 1);
    if (!received) return {Outcome::failed, fmt::format("share: {}", received.error().message)};
    return read_back_received(
        *received,
        fmt::format("{}x{} {} sealed memfd converted, sent, validated on receipt and read back exactly "
                    "through the DMA-BUF's mapping",
                    probe_width, probe_height, fourcc_label(probe_fourcc)));
}

UdmabufImport udmabuf_import_round_trip(EglSide& egl, std::string api, std::uint64_t image_id,
                                        const std::string& udmabuf_path) {
    UdmabufImport trip{std::move(api), Outcome::failed, "", ""};
    if (egl.importer == nullptr) {
        trip.outcome = Outcome::untested;
        trip.detail = egl.unavailable;
        return trip;
    }
    Converted converted = convert_pattern(udmabuf_path);
    if (!converted.image) {
        trip.stage = converted.stage;
        trip.detail = converted.image.error().message;
        return trip;
    }
    auto received = share_through_socket(*converted.image, image_id);
    if (!received) {
        trip.stage = "share";
        trip.detail = received.error().message;
        return trip;
    }
    import_and_compare(egl, *received, image_id, trip.outcome, trip.stage, trip.detail);
    return trip;
}

UdmabufImport udmabuf_vulkan_round_trip([[maybe_unused]] std::uint64_t image_id,
                                        [[maybe_unused]] const std::string& udmabuf_path) {
    UdmabufImport trip{"Vulkan", Outcome::untested, "", ""};
#if TEXSHARE_INFO_HAVE_VULKAN
    auto context = testing::VulkanContext::create();
    if (!context) {
        trip.detail = fmt::format("no Vulkan device imports DMA-BUFs: {}", context.error().message);
        return trip;
    }
    trip.api = fmt::format("Vulkan ({})", context->device_name());
    trip.outcome = Outcome::failed;
    Converted converted = convert_pattern(udmabuf_path);
    if (!converted.image) {
        trip.stage = converted.stage;
        trip.detail = converted.image.error().message;
        return trip;
    }
    auto received = share_through_socket(*converted.image, image_id);
    if (!received) {
        trip.stage = "share";
        trip.detail = received.error().message;
        return trip;
    }
    trip.stage = "import";
    auto imported = testing::VulkanImportedImage::import(*context, *received);
    if (!imported) {
        trip.detail = imported.error().message;
        return trip;
    }
    trip.stage = "read back";
    auto pixels = imported->read_pixels();  // the bytes as memory holds them
    if (!pixels) {
        trip.detail = pixels.error().message;
        return trip;
    }
    trip.detail = find_mismatch(std::as_bytes(std::span(*pixels)), probe_width * 4, *byte_order(probe_fourcc),
                                true, probe_width, probe_height);
    if (!trip.detail.empty()) {
        trip.stage = "compare";
        return trip;
    }
    trip.stage.clear();
    trip.outcome = Outcome::works;
#else
    trip.detail = "this texshare-info was built without Vulkan (libvulkan-dev not found)";
#endif
    return trip;
}

}  // namespace texshare::info
