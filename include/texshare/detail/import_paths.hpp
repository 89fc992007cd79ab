// What egl::ImportListener and vulkan::ImportListener share: which path each image took (the
// GPU import, a udmabuf conversion then the import, or the caller's CPU path with the reason),
// and the optional conversion of shared-memory images (UdmabufCache), kept in step with the
// endpoint's add, remove and rename. The listeners differ only in how they import; they give
// that as a callable.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "texshare/dma_buf_image.hpp"
#include "texshare/result.hpp"
#include "texshare/udmabuf_cache.hpp"

namespace texshare {

// An ImportListener's opt-in for shared-memory images (egl:: and vulkan::ImportListener::Options).
struct SharedMemoryImportOptions {
    // Import shared-memory images through udmabuf (off: they are the caller's, as always).
    bool convert_shared_memory = false;
    // When the conversion or its import fails: false leaves the image to the caller's CPU
    // path (cpu_reason() says why); true refuses the image (add_image() / dispatch() fail).
    bool require_conversion = false;
    // How an image becomes a DMA-BUF; empty: udmabuf_conversion() on /dev/udmabuf.
    SharedMemoryConversion conversion;
};

namespace detail {

// Path: the listener's enum, with unknown, udmabuf and cpu among its values and a to_string().
template <typename Path>
class ImportPaths {
public:
    ImportPaths() = default;
    explicit ImportPaths(SharedMemoryImportOptions& options) : require_conversion_(options.require_conversion) {
        if (options.convert_shared_memory) cache_.emplace(std::move(options.conversion));
    }

    bool converts() const noexcept { return cache_.has_value(); }
    const UdmabufCache* conversions() const noexcept { return cache_ ? &*cache_ : nullptr; }
    void set(std::uint64_t id, Path path) { entries_[id] = Entry{path, {}}; }

    // A shared-memory image (converts() true), converted once here, at add time, never per
    // frame, and given to `import` (Result<void>(const DmaBufImage&); on failure it keeps
    // nothing). A failed import closes the conversion at once. Where conversion or import
    // fails the image takes the CPU path with the reason, or is refused (require_conversion).
    template <typename Import>
    Result<void> add_converted(std::uint64_t id, const DmaBufImage& image, Import&& import) {
        // Before the cache: it would hand back the live image's conversion, and a failed import
        // of that must not close it.
        if (auto known = entries_.find(id); known != entries_.end()) {
            return make_error(Errc::invalid_argument, "image {} is already imported (path {}); release it first", id,
                              to_string(known->second.path));
        }
        auto converted = cache_->get_or_convert(id, image);
        Error why;
        if (converted) {
            auto imported = import(**converted);
            if (imported) {
                entries_[id] = Entry{Path::udmabuf, {}};
                return {};
            }
            cache_->release(id);
            why = std::move(imported).error();
            why.message = fmt::format("image {}: converted to a DMA-BUF, but the import failed: {}", id, why.message);
        } else {
            why = std::move(converted).error();
            why.message = fmt::format("image {}: no DMA-BUF for this shared-memory image: {}", id, why.message);
        }
        if (require_conversion_) return why;
        entries_[id] = Entry{Path::cpu, std::move(why.message)};
        return {};
    }

    void removed(std::uint64_t id) noexcept {
        if (cache_) cache_->release(id);
        entries_.erase(id);
    }
    void renamed(std::uint64_t from, std::uint64_t to) noexcept {
        if (cache_) cache_->rename(from, to);
        auto node = entries_.extract(from);
        if (node.empty()) return;
        entries_.erase(to);
        node.key() = to;
        entries_.insert(std::move(node));
    }

    Path path(std::uint64_t id) const {
        auto found = entries_.find(id);
        return found != entries_.end() ? found->second.path : Path::unknown;
    }
    std::string_view cpu_reason(std::uint64_t id) const {
        auto found = entries_.find(id);
        return found != entries_.end() ? std::string_view(found->second.cpu_reason) : std::string_view();
    }

private:
    struct Entry {
        Path path = Path::unknown;
        std::string cpu_reason;
    };
    bool require_conversion_ = false;
    std::optional<UdmabufCache> cache_;  // only with convert_shared_memory
    std::map<std::uint64_t, Entry> entries_;
};

}  // namespace detail
}  // namespace texshare
