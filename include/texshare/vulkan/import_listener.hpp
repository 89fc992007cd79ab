// ImportListener: keeps a vulkan::Importer in step with a FrameSender or FrameReceiver.
//
// Use it where the images a frame endpoint tracks are sampled or copied with Vulkan: set it
// as the endpoint's listener and every DMA-BUF image becomes a VkImage with imported memory
// once, when it is shared, and is destroyed when it leaves the endpoint (retired, or the
// peer is gone); a dead producer's kept frame keeps its import under retained_image_id. The
// per-frame path then only looks images up. Images that are not DMA-BUFs (the memfd
// fallback) are left to the caller, who uploads them; a DMA-BUF this device cannot import is
// refused, so the peer is told at add time, not at the first frame.
//
// Removal destroys the VkImage at once: the application must have finished with an image on
// the GPU before the endpoint lets it go (it does so when it releases the frame).
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <cstdint>

#include "texshare/frame/image_listener.hpp"
#include "texshare/vulkan/importer.hpp"

namespace texshare::vulkan {

class ImportListener final : public FrameImageListener {
public:
    // `importer` must outlive this listener (and the endpoint using it).
    explicit ImportListener(Importer& importer) noexcept : importer_(&importer) {}

    Result<void> image_added(std::uint64_t id, const DmaBufImage& image, bool added_by_peer) override;
    void image_removed(std::uint64_t id) noexcept override;
    void image_renamed(std::uint64_t from, std::uint64_t to) noexcept override;

    // The import of image id; nullptr for unknown ids and images that are not DMA-BUFs.
    const ImportedImage* image(std::uint64_t id) const { return importer_->find(id); }

private:
    Importer* importer_;
};

}  // namespace texshare::vulkan
