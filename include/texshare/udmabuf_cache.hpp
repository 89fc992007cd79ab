// UdmabufCache: received shared-memory images turned into DMA-BUFs, once per image.
//
// Use it on a consumer that imports DMA-BUFs (with EGL or Vulkan) and receives
// shared-memory images (a producer without a GPU, negotiated as
// SharingPath::shared_memory_udmabuf): get_or_convert() makes the image's DMA-BUF the first
// time an id is seen (udmabuf.hpp: the same pages, no copy) and returns the kept one after
// that, so the per-frame path never converts; release() closes it when the image leaves.
// egl::ImportListener and vulkan::ImportListener each use one
// (ImportListener::Options::convert_shared_memory). The conversion is a function so a
// consumer can bring its own (and tests can stand in for /dev/udmabuf where the kernel has none).
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "texshare/dma_buf_image.hpp"
#include "texshare/result.hpp"
#include "texshare/udmabuf.hpp"

namespace texshare {

// A shared_memory image in, a dma_buf image over the same memory out (the input stays the
// caller's and valid); the error says why not.
using SharedMemoryConversion = std::function<Result<DmaBufImage>(const DmaBufImage&)>;

// The conversion through the udmabuf device at `path` (UdmabufDevice::convert). The device is
// opened at the first call, so a process that never receives shared memory never opens it;
// when it cannot be opened, that error (Errc::unsupported naming the path and errno, from
// UdmabufDevice::open) is the answer of every call, without opening it again.
inline SharedMemoryConversion udmabuf_conversion(std::string path = "/dev/udmabuf") {
    struct Device {
        std::string path;
        std::optional<Result<UdmabufDevice>> opened;
    };
    auto device = std::make_shared<Device>(Device{std::move(path), std::nullopt});
    return [device](const DmaBufImage& image) -> Result<DmaBufImage> {
        if (!device->opened) device->opened.emplace(UdmabufDevice::open(device->path));
        if (!*device->opened) return device->opened->error();
        return (*device->opened)->convert(image);
    };
}

class UdmabufCache {
public:
    // `conversion`: empty for udmabuf_conversion() on /dev/udmabuf.
    explicit UdmabufCache(SharedMemoryConversion conversion = {})
        : conversion_(conversion ? std::move(conversion) : udmabuf_conversion()) {}

    // The DMA-BUF of shared-memory image `id`: converted at the first call for this id, the
    // kept one at every later call (the caller passes the same image for an id until it
    // releases it, as a frame endpoint's ids guarantee). The pointer stays valid until
    // release(id), rename(id, ...) or the cache's end; the cache owns its fds.
    // Errc::invalid_argument for an image that is not shared_memory; the conversion's error
    // otherwise (nothing is kept then, so a later call tries again).
    Result<const DmaBufImage*> get_or_convert(std::uint64_t id, const DmaBufImage& image) {
        if (auto found = converted_.find(id); found != converted_.end()) return &found->second;
        if (image.backing() != Backing::shared_memory) {
            return make_error(Errc::invalid_argument,
                              "image {}: only a shared_memory image converts to a DMA-BUF, this one is {}",
                              id, to_string(image.backing()));
        }
        auto converted = conversion_(image);
        if (!converted) return std::move(converted).error();
        if (converted->backing() != Backing::dma_buf) {
            return make_error(Errc::invalid_argument,
                              "image {}: the conversion gave a {} image, not a dma_buf one", id,
                              to_string(converted->backing()));
        }
        ++conversions_;
        return &converted_.emplace(id, std::move(*converted)).first->second;
    }

    // The kept DMA-BUF of `id`; nullptr when none.
    const DmaBufImage* find(std::uint64_t id) const {
        auto found = converted_.find(id);
        return found != converted_.end() ? &found->second : nullptr;
    }

    // Closes the DMA-BUF of `id` (its memory stays the shared-memory image's); unknown ids
    // are nothing to do.
    void release(std::uint64_t id) noexcept { converted_.erase(id); }

    // Moves the DMA-BUF of `from` to `to` (FrameReceiver keeps a dead producer's last frame
    // under retained_image_id); one already kept under `to` is closed first.
    void rename(std::uint64_t from, std::uint64_t to) noexcept {
        auto node = converted_.extract(from);
        if (node.empty()) return;
        converted_.erase(to);
        node.key() = to;
        converted_.insert(std::move(node));
    }

    std::size_t size() const noexcept { return converted_.size(); }
    // Conversions made so far: one per image, however many frames it showed.
    std::uint64_t conversions() const noexcept { return conversions_; }

private:
    SharedMemoryConversion conversion_;
    std::map<std::uint64_t, DmaBufImage> converted_;
    std::uint64_t conversions_ = 0;
};

}  // namespace texshare
