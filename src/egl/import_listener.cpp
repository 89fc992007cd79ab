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

ImportListener::ImportListener(Importer& importer, Options options) : importer_(&importer), paths_(options) {}

Result<void> ImportListener::image_added(std::uint64_t id, const DmaBufImage& image, bool /*added_by_peer*/) {
    if (image.backing() == Backing::shared_memory && paths_.converts()) {
        return paths_.add_converted(id, image, [&](const DmaBufImage& converted) -> Result<void> {
            // Read back before calling it working: an import of a buffer the driver cannot map
            // succeeds on some (Mesa 25 on vgem) and fails, or crashes, at the first frame.
            auto imported = importer_->import(id, converted);
            if (!imported) return std::move(imported).error();
            auto readable = importer_->check_readable(id, converted);
            if (!readable) (void)importer_->release(id);
            return readable;
        });
    }
    if (image.backing() == Backing::opaque_fd) return check_importable(id, image);  // its refusal: no CPU path
    if (image.backing() != Backing::dma_buf) {
        paths_.set(id, ImagePath::cpu);  // the caller's CPU path
        return {};
    }
    auto imported = importer_->import(id, image);
    if (!imported) return std::move(imported).error();
    paths_.set(id, ImagePath::dma_buf);
    return {};
}

void ImportListener::image_removed(std::uint64_t id) noexcept {
    if (importer_->find(id) != nullptr) (void)importer_->release(id);
    paths_.removed(id);
}

void ImportListener::image_renamed(std::uint64_t from, std::uint64_t to) noexcept {
    if (importer_->find(from) != nullptr) (void)importer_->rename(from, to);
    paths_.renamed(from, to);
}

}  // namespace texshare::egl
