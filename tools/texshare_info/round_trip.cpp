#include "round_trip.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "names.hpp"
#include "pattern.hpp"
#include "support/gl_helpers.hpp"
#include "texshare/image_wire.hpp"
#include "texshare/memfd_allocator.hpp"

namespace texshare::info {
namespace {

bool allocates_only_implicit(const std::vector<FormatModifiers>& allocatable, std::uint32_t fourcc) {
    const auto found = std::ranges::find(allocatable, fourcc, &FormatModifiers::fourcc);
    return found != allocatable.end() && !found->modifiers.empty() &&
           std::ranges::none_of(found->modifiers, [](const Modifier& modifier) {
               return modifier.value == DRM_FORMAT_MOD_LINEAR;
           });
}

RoundTrip failed(RoundTrip trip, std::string_view stage, std::string detail) {
    trip.outcome = Outcome::failed;
    trip.stage = stage;
    trip.detail = std::move(detail);
    return trip;
}

// The imported texture's pixels; the import is released on every path, so the importer
// can take the next image under a new id and nothing stays behind.
Result<std::vector<std::uint8_t>> import_and_read(EglSide& egl, const DmaBufImage& image,
                                                  std::uint64_t image_id, std::string& stage) {
    stage = "import";
    auto imported = egl.importer->import(image_id, image);
    if (!imported) return std::move(imported).error();
    stage = "read back";
    auto pixels = testing::read_pixels(*egl.display, imported->target, imported->texture, image.width(),
                                       image.height());
    auto released = egl.importer->release(image_id);
    if (pixels && !released) return std::move(released).error();
    return pixels;
}

}  // namespace

Result<DmaBufImage> share_through_socket(const DmaBufImage& image, std::uint64_t image_id) {
    auto ends = ImageChannel::create_pair();
    if (!ends) return std::move(ends).error();
    if (auto sent = send_image(ends->first, image_id, image); !sent) return std::move(sent).error();
    auto received = receive_image(ends->second);
    if (!received) return std::move(received).error();
    return std::move(received->image);
}

Result<void> write_pattern_to(const DmaBufImage& image, const ByteOrder& order) {
    auto mapping = image.map(Access::write);
    if (!mapping) return std::move(mapping).error();
    write_pattern(mapping->plane(0), mapping->stride(0), order, image.width(), image.height());
    return mapping->finish();
}

void import_and_compare(EglSide& egl, const DmaBufImage& image, std::uint64_t image_id, Outcome& outcome,
                        std::string& stage, std::string& detail) {
    outcome = Outcome::failed;
    auto pixels = import_and_read(egl, image, image_id, stage);
    if (!pixels) {
        detail = pixels.error().message;
        return;
    }
    const std::uint32_t stride = image.width() * 4;
    const auto bytes = std::as_bytes(std::span(*pixels));
    const FormatInfo* info = find_format(image.fourcc());
    const bool alpha = info != nullptr && info->has_alpha;
    detail = find_mismatch(bytes, stride, rgba_order, alpha, image.width(), image.height());
    if (!detail.empty()) {
        stage = "compare";
        return;
    }
    stage.clear();
    outcome = Outcome::works;
}

RoundTrip gbm_round_trip(const gbm::Device& device, EglSide& egl, std::uint32_t fourcc,
                         const std::vector<FormatModifiers>& allocatable, std::uint64_t image_id) {
    RoundTrip trip{fourcc, DRM_FORMAT_MOD_LINEAR, Outcome::works, "", ""};
    // LINEAR only: a CPU-written pattern means nothing in a tiled or compressed layout.
    auto image = device.allocate(
        gbm::AllocationRequest{probe_width, probe_height, fourcc, {DRM_FORMAT_MOD_LINEAR}, 0});
    if (!image) {
        trip.outcome =
            allocates_only_implicit(allocatable, fourcc) ? Outcome::untested : Outcome::not_allocatable;
        trip.detail = trip.outcome == Outcome::untested
                          ? "allocates only with an implicit modifier; a CPU-written pattern needs LINEAR"
                          : image.error().message;
        return trip;
    }
    const auto order = byte_order(fourcc);
    if (!order) {
        trip.outcome = Outcome::untested;
        trip.detail = "allocates, but texshare-info writes and compares only 32-bit RGB formats";
        return trip;
    }
    if (auto written = write_pattern_to(*image, *order); !written) {
        return failed(trip, "map", written.error().message);
    }
    auto received = share_through_socket(*image, image_id);
    if (!received) return failed(trip, "share", received.error().message);
    if (egl.importer == nullptr) return failed(trip, "import", egl.unavailable);
    import_and_compare(egl, *received, image_id, trip.outcome, trip.stage, trip.detail);
    return trip;
}

Feature shared_memory_round_trip() {
    const std::uint32_t fourcc = DRM_FORMAT_ARGB8888;
    auto image = MemfdAllocator().allocate(probe_width, probe_height, fourcc);
    if (!image) return {Outcome::failed, fmt::format("allocate: {}", image.error().message)};
    if (auto written = write_pattern_to(*image, *byte_order(fourcc)); !written) {
        return {Outcome::failed, fmt::format("map: {}", written.error().message)};
    }
    auto received = share_through_socket(*image, 1);
    if (!received) return {Outcome::failed, fmt::format("share: {}", received.error().message)};
    auto mapping = received->map(Access::read);
    if (!mapping) {
        return {Outcome::failed, fmt::format("map on the receiving end: {}", mapping.error().message)};
    }
    std::string mismatch = find_mismatch(mapping->plane(0), mapping->stride(0), *byte_order(fourcc), true,
                                         probe_width, probe_height);
    if (!mismatch.empty()) return {Outcome::failed, fmt::format("compare: {}", mismatch)};
    return {Outcome::works,
            fmt::format("{}x{} {} written, sent, validated on receipt (seals, size) and read back",
                        probe_width, probe_height, fourcc_label(fourcc))};
}

}  // namespace texshare::info
