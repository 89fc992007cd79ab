// Where the host's swapchain images come from: DMA-BUFs from GBM on a DRM device or from the
// system DMA-BUF heap, or sealed memfds where there is no such device (or the user asked for
// them, or for the udmabuf path, where the host imports them as DMA-BUFs).
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <string>

#include "options.hpp"
#include "texshare/dma_buf_image.hpp"
#include "texshare/result.hpp"

namespace texshare {
class DmaHeapAllocator;
}
namespace texshare::gbm {
class Device;
}

namespace host_renderer {

// Three images: one the host shows, one the renderer draws, one ready in between.
inline constexpr std::size_t swapchain_length = 3;
using SwapchainImages = std::array<texshare::DmaBufImage, swapchain_length>;

class Allocator {
public:
    // automatic: GBM when a DRM device allocates CPU-writable LINEAR ARGB8888 (or ABGR8888)
    // images of `first` size, memfd ARGB8888 otherwise. gbm: GBM or an error saying why not.
    // memfd: memfd. heap: the system DMA-BUF heap or an error saying why not. udmabuf: memfd
    // in the format negotiate() picks for a renderer without a GPU and a host that converts
    // shared memory (SharingPath::shared_memory_udmabuf). Returns the allocator with the
    // first swapchain in `first_images`.
    static texshare::Result<Allocator> open(AllocatorChoice choice, Size first,
                                            SwapchainImages& first_images);

    Allocator(Allocator&&) noexcept;
    Allocator& operator=(Allocator&&) noexcept;
    ~Allocator();

    // A swapchain of the same kind (backend, format) at another size.
    texshare::Result<SwapchainImages> allocate(Size size) const;

    // "gbm on /dev/dri/card0 (vgem), AR24 (ARGB8888) LINEAR", or "memfd, ARGB8888 (why)".
    const std::string& description() const noexcept { return description_; }
    // The GBM device the images come from (the host opens EGL on it); nullptr for memfd and heap.
    const texshare::gbm::Device* device() const noexcept { return device_.get(); }
    AllocatorChoice choice() const noexcept { return choice_; }

private:
    Allocator() = default;

    AllocatorChoice choice_ = AllocatorChoice::automatic;
    std::unique_ptr<texshare::gbm::Device> device_;
    std::unique_ptr<texshare::DmaHeapAllocator> heap_;
    std::uint32_t fourcc_ = 0;
    std::string description_;
};

}  // namespace host_renderer
