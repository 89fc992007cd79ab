#include "texshare/egl/import_listener.hpp"

#include <utility>

namespace texshare::egl {

std::string_view to_string(ImagePath path) noexcept {
    switch (path) {
        case ImagePath::unknown:
            return "unknown";
        case ImagePath::dma_buf:
            return "dma_buf";
        case ImagePath::udmabuf:
            return "udmabuf";
        case ImagePath::cpu:
            return "cpu";
    }
    return "unknown";
}

ImportListener::ImportListener(Importer& importer, Options options)
    : importer_(&importer), options_(std::move(options)) {
    if (options_.convert_shared_memory) cache_.emplace(std::move(options_.conversion));
}

Result<void> ImportListener::image_added(std::uint64_t id, const DmaBufImage& image, bool /*added_by_peer*/) {
    if (image.backing() == Backing::shared_memory && cache_) return add_shared_memory(id, image);
    if (image.backing() == Backing::opaque_fd) return check_importable(id, image);  // its refusal: no CPU path
    if (image.backing() != Backing::dma_buf) {
        entries_[id] = Entry{ImagePath::cpu, ""};  // the caller's CPU path
        return {};
    }
    auto imported = importer_->import(id, image);
    if (!imported) return std::move(imported).error();
    entries_[id] = Entry{ImagePath::dma_buf, ""};
    return {};
}

// Converted once here, at add time, never per frame. A failed import closes the conversion
// at once: nothing is kept for an image the GPU cannot use.
Result<void> ImportListener::add_shared_memory(std::uint64_t id, const DmaBufImage& image) {
    // Before the cache: it would hand back the live image's conversion, and a failed import
    // of that must not close it.
    if (auto known = entries_.find(id); known != entries_.end()) {
        return make_error(Errc::invalid_argument, "image {} is already imported (path {}); release it first", id,
                          to_string(known->second.path));
    }
    auto converted = cache_->get_or_convert(id, image);
    Error why;
    if (converted) {
        // Read back before calling it working: an import of a buffer the driver cannot map
        // succeeds on some (Mesa 25 on vgem) and fails, or crashes, at the first frame.
        auto imported = importer_->import(id, **converted);
        Result<void> readable = imported ? importer_->check_readable(id, **converted) : Result<void>();
        if (imported && readable) {
            entries_[id] = Entry{ImagePath::udmabuf, ""};
            return {};
        }
        if (imported) (void)importer_->release(id);
        cache_->release(id);
        why = imported ? std::move(readable).error() : std::move(imported).error();
        why.message =
            fmt::format("image {}: converted to a DMA-BUF, but the import failed: {}", id, why.message);
    } else {
        why = std::move(converted).error();
        why.message = fmt::format("image {}: no DMA-BUF for this shared-memory image: {}", id, why.message);
    }
    if (options_.require_conversion) return why;
    entries_[id] = Entry{ImagePath::cpu, std::move(why.message)};
    return {};
}

void ImportListener::image_removed(std::uint64_t id) noexcept {
    if (importer_->find(id) != nullptr) (void)importer_->release(id);
    if (cache_) cache_->release(id);
    entries_.erase(id);
}

void ImportListener::image_renamed(std::uint64_t from, std::uint64_t to) noexcept {
    if (importer_->find(from) != nullptr) (void)importer_->rename(from, to);
    if (cache_) cache_->rename(from, to);
    auto node = entries_.extract(from);
    if (node.empty()) return;
    entries_.erase(to);
    node.key() = to;
    entries_.insert(std::move(node));
}

ImagePath ImportListener::path(std::uint64_t id) const {
    auto found = entries_.find(id);
    return found != entries_.end() ? found->second.path : ImagePath::unknown;
}

std::string_view ImportListener::cpu_reason(std::uint64_t id) const {
    auto found = entries_.find(id);
    return found != entries_.end() ? std::string_view(found->second.cpu_reason) : std::string_view();
}

}  // namespace texshare::egl
