#include "texshare/vulkan/import_listener.hpp"

#include <utility>

namespace texshare::vulkan {

std::string_view to_string(ImagePath path) noexcept {
    switch (path) {
        case ImagePath::unknown:
            return "unknown";
        case ImagePath::imported:
            return "imported";
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
            auto imported = importer_->import(id, converted);
            if (!imported) return std::move(imported).error();
            return {};
        });
    }
    if (image.backing() == Backing::shared_memory || image.backing() == Backing::cpu_only) {
        paths_.set(id, ImagePath::cpu);  // the caller's CPU path
        return {};
    }
    auto imported = importer_->import(id, image);  // the GPU backings; the Importer names what it refuses
    if (!imported) return std::move(imported).error();
    paths_.set(id, ImagePath::imported);
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

}  // namespace texshare::vulkan
