#include "texshare/vulkan/import_listener.hpp"

namespace texshare::vulkan {

Result<void> ImportListener::image_added(std::uint64_t id, const DmaBufImage& image, bool /*added_by_peer*/) {
    if (image.backing() != Backing::dma_buf) return {};  // the caller's CPU path
    auto imported = importer_->import(id, image);
    if (!imported) return std::move(imported).error();
    return {};
}

void ImportListener::image_removed(std::uint64_t id) noexcept {
    if (importer_->find(id) != nullptr) (void)importer_->release(id);
}

void ImportListener::image_renamed(std::uint64_t from, std::uint64_t to) noexcept {
    if (importer_->find(from) != nullptr) (void)importer_->rename(from, to);
}

}  // namespace texshare::vulkan
