// ImportListener: keeps an egl::Importer in step with a FrameSender or FrameReceiver.
//
// Use it where the images a frame endpoint tracks are drawn or sampled with GL: set it as
// the endpoint's listener and every DMA-BUF image becomes an EGLImage and a texture once,
// when it is shared, and is destroyed when it leaves the endpoint (retired, or the peer is
// gone); a dead producer's kept frame keeps its texture under retained_image_id. The
// per-frame path then only looks textures up. A DMA-BUF EGL cannot import is refused, so the
// peer is told at add time, not at the first frame.
//
// Images that are not DMA-BUFs (the memfd fallback) are left to the caller, who uploads
// them, unless Options::convert_shared_memory asks for the udmabuf path
// (SharingPath::shared_memory_udmabuf): each shared-memory image is then turned into a
// DMA-BUF once (UdmabufCache), imported, and the DMA-BUF closed when the image leaves.
// Where that cannot work (no /dev/udmabuf; EGL refusing the buffer, as Mesa 25 does on
// virtio_gpu with EGL_BAD_ALLOC) the image goes to the caller's CPU path and cpu_reason()
// says why, or, with require_conversion, the image is refused. An opaque_fd image (a Vulkan
// driver's private memory) is refused with check_importable's Errc::unsupported: neither EGL
// nor the CPU can use it. texture() never returns a texture for an import that failed.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "texshare/egl/importer.hpp"
#include "texshare/frame/image_listener.hpp"
#include "texshare/detail/import_paths.hpp"
#include "texshare/udmabuf_cache.hpp"

namespace texshare::egl {

// How an image the listener heard of reaches GL.
enum class ImagePath {
    unknown,  // not heard of, or removed
    dma_buf,  // imported as it came
    udmabuf,  // a shared-memory image, converted to a DMA-BUF and imported
    cpu,      // left to the caller's upload (shared memory, cpu_only)
};

std::string_view to_string(ImagePath path) noexcept;

class ImportListener final : public FrameImageListener {
public:
    using Options = SharedMemoryImportOptions;  // detail/import_paths.hpp

    // `importer` must outlive this listener (and the listener the endpoint using it).
    explicit ImportListener(Importer& importer) noexcept : importer_(&importer) {}
    ImportListener(Importer& importer, Options options);

    Result<void> image_added(std::uint64_t id, const DmaBufImage& image, bool added_by_peer) override;
    void image_removed(std::uint64_t id) noexcept override;
    void image_renamed(std::uint64_t from, std::uint64_t to) noexcept override;

    // The texture of image id; nullptr for unknown ids and images on the CPU path.
    const ImportedTexture* texture(std::uint64_t id) const { return importer_->find(id); }
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

}  // namespace texshare::egl
