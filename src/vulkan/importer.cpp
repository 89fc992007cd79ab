// texshare::vulkan's Importer (the cache by image id) and check_importable, which tells a
// caller before any Vulkan work whether an image can be imported on a device.
#include "texshare/vulkan/importer.hpp"

#include <utility>

#include "import_image.hpp"
#include "texshare/vulkan/format.hpp"

namespace texshare::vulkan {

Result<void> check_importable(std::uint64_t image_id, const DmaBufImage& image, bool has_drm_format_modifiers) {
    const ImageLayout& layout = image.layout();
    if (image.backing() != Backing::dma_buf) {
        return make_error(Errc::unsupported,
                          "image {}: a {} image cannot be imported: Vulkan imports DMA-BUFs here (map it and "
                          "upload the pixels instead)",
                          image_id, to_string(image.backing()));
    }
    for (std::size_t i = 0; i < layout.plane_count; ++i) {
        if (!image.plane_fd(i).valid()) {
            return make_error(Errc::invalid_argument, "image {}: plane {} has no fd", image_id, i);
        }
    }
    if (find_mapping(layout.fourcc) == nullptr) {
        return make_error(Errc::unsupported, "image {}: {} has no Vulkan format", image_id, format_name(layout.fourcc));
    }
    if (layout.modifier == DRM_FORMAT_MOD_INVALID) {
        return make_error(Errc::unsupported,
                          "image {}: modifier INVALID (implicit, driver-chosen tiling) cannot be imported into "
                          "Vulkan, which needs the explicit modifier",
                          image_id);
    }
    if (!has_drm_format_modifiers && layout.modifier != DRM_FORMAT_MOD_LINEAR) {
        return make_error(Errc::unsupported, "image {}: modifier {} needs {}, which the device was not created with",
                          image_id, modifier_name(layout.modifier), VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME);
    }
    if (!has_drm_format_modifiers && layout.plane_count != 1) {
        return make_error(Errc::unsupported,
                          "image {}: {} has {} planes; without {} only single-plane LINEAR images import", image_id,
                          format_name(layout.fourcc), layout.plane_count,
                          VK_EXT_IMAGE_DRM_FORMAT_MODIFIER_EXTENSION_NAME);
    }
    return {};
}

Result<Importer> Importer::create(const Device& device, Options options) {
    if (options.usage == 0) return make_error(Errc::invalid_argument, "Importer::Options::usage is 0");
    return Importer(device, options);
}

Importer::Importer(Importer&& other) noexcept
    : device_(other.device_), options_(other.options_), imports_(std::exchange(other.imports_, {})) {}

Importer& Importer::operator=(Importer&& other) noexcept {
    if (this != &other) {
        release_all();
        device_ = other.device_;
        options_ = other.options_;
        imports_ = std::exchange(other.imports_, {});
    }
    return *this;
}

Importer::~Importer() { release_all(); }

void Importer::destroy(const ImportedImage& imported) const noexcept {
    detail::destroy_import(device_.device(), imported);
}

Result<ImportedImage> Importer::import(std::uint64_t image_id, const DmaBufImage& image) {
    if (imports_.count(image_id) != 0) {
        return make_error(Errc::invalid_argument, "image {} is already imported", image_id);
    }
    if (auto importable = check_importable(image_id, image, device_.has_drm_format_modifiers()); !importable) {
        return std::move(importable).error();
    }
    auto imported = detail::import_dma_buf(device_, options_.usage, image);
    if (!imported) {
        Error error = std::move(imported).error();  // keeps the code and errno
        error.message = fmt::format("image {}: {}", image_id, error.message);
        return error;
    }
    imports_.emplace(image_id, *imported);
    return *imported;
}

Result<void> Importer::release(std::uint64_t image_id) {
    auto found = imports_.find(image_id);
    if (found == imports_.end()) return make_error(Errc::invalid_argument, "image {} is not imported", image_id);
    destroy(found->second);
    imports_.erase(found);
    return {};
}

void Importer::release_all() noexcept {
    for (const auto& [id, imported] : imports_) destroy(imported);
    imports_.clear();
}

Result<void> Importer::rename(std::uint64_t from, std::uint64_t to) {
    if (imports_.count(to) != 0) {
        return make_error(Errc::invalid_argument, "Importer::rename: image {} is already imported", to);
    }
    auto node = imports_.extract(from);
    if (node.empty()) return make_error(Errc::invalid_argument, "Importer::rename: image {} is not imported", from);
    node.key() = to;
    imports_.insert(std::move(node));
    return {};
}

const ImportedImage* Importer::find(std::uint64_t image_id) const {
    auto found = imports_.find(image_id);
    return found == imports_.end() ? nullptr : &found->second;
}

}  // namespace texshare::vulkan
