// ImportListener: keeps a vulkan::Importer in step with a FrameSender or FrameReceiver.
//
// Use it where the images a frame endpoint tracks are sampled or copied with Vulkan: set it
// as the endpoint's listener and every DMA-BUF image becomes a VkImage with imported memory
// once, when it is shared, and is destroyed when it leaves the endpoint (retired, or the
// peer is gone); a dead producer's kept frame keeps its import under retained_image_id. The
// per-frame path then only looks images up. A DMA-BUF this device cannot import is refused,
// so the peer is told at add time, not at the first frame.
//
// Images that are not DMA-BUFs (the memfd fallback) are left to the caller, who uploads
// them, unless Options::convert_shared_memory asks for the udmabuf path
// (SharingPath::shared_memory_udmabuf; advertise it with
// FormatTableOptions::converts_shared_memory, vulkan/format_table.hpp): each shared-memory
// image is then turned into a DMA-BUF once (UdmabufCache: the same pages, no copy),
// imported, and the DMA-BUF closed when the image leaves. Where that cannot work (no
// /dev/udmabuf; a layout the driver refuses) the image goes to the caller's CPU path and
// cpu_reason() says why, or, with require_conversion, the image is refused. image() never
// returns an import that failed. Unlike egl::ImportListener nothing is read back at add
// time: a Vulkan import of a udmabuf is memory the driver maps like any other DMA-BUF
// (measured: Mesa 25's lavapipe reads it exactly), where Mesa's EGL on vgem "succeeds" and
// reads zeros.
//
// Removal destroys the VkImage at once: the application must have finished with an image on
// the GPU before the endpoint lets it go (it does so when it releases the frame).
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "texshare/frame/image_listener.hpp"
#include "texshare/detail/import_paths.hpp"
#include "texshare/udmabuf_cache.hpp"
#include "texshare/vulkan/importer.hpp"

namespace texshare::vulkan {

// How an image the listener heard of reaches Vulkan.
enum class ImagePath {
    unknown,   // not heard of, or removed
    imported,  // imported as it came (a DMA-BUF)
    udmabuf,   // a shared-memory image, converted to a DMA-BUF and imported
    cpu,       // left to the caller's upload (shared memory, cpu_only)
};

std::string_view to_string(ImagePath path) noexcept;

class ImportListener final : public FrameImageListener {
public:
    using Options = SharedMemoryImportOptions;  // detail/import_paths.hpp

    // `importer` must outlive this listener (and the endpoint using it).
    explicit ImportListener(Importer& importer) noexcept : importer_(&importer) {}
    ImportListener(Importer& importer, Options options);

    Result<void> image_added(std::uint64_t id, const DmaBufImage& image, bool added_by_peer) override;
    void image_removed(std::uint64_t id) noexcept override;
    void image_renamed(std::uint64_t from, std::uint64_t to) noexcept override;

    // The import of image id; nullptr for unknown ids and images on the CPU path.
    const ImportedImage* image(std::uint64_t id) const { return importer_->find(id); }
    ImagePath path(std::uint64_t id) const { return paths_.path(id); }
    // Why a shared-memory image is on the CPU path although convert_shared_memory is on (the
    // conversion's or the import's error); empty otherwise.
    std::string_view cpu_reason(std::uint64_t id) const { return paths_.cpu_reason(id); }
    // The shared-memory conversions: how many were made, which are kept. Null when
    // convert_shared_memory is off.
    const UdmabufCache* conversions() const noexcept { return paths_.conversions(); }

private:
    Importer* importer_;
    texshare::detail::ImportPaths<ImagePath> paths_;
};

}  // namespace texshare::vulkan
