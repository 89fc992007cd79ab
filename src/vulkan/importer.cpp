// texshare::vulkan's Importer (the cache by image id) and check_importable, which tells a
// caller before any Vulkan work whether an image can be imported on a device.
#include "texshare/vulkan/importer.hpp"

#include <utility>

#include "import_image.hpp"
#include "texshare/vulkan/format.hpp"

namespace texshare::vulkan {

Result<void> check_importable(std::uint64_t image_id, const DmaBufImage& image, bool has_drm_format_modifiers) {
    const ImageLayout& layout = image.layout();
    if (image.backing() == Backing::opaque_fd) {
        if (!image.plane_fd(0).valid()) {
            return make_error(Errc::invalid_argument, "image {}: the opaque_fd image has no fd", image_id);
        }
        if (find_mapping(layout.fourcc) == nullptr) {
            return make_error(Errc::unsupported, "image {}: {} has no Vulkan format", image_id,
                              format_name(layout.fourcc));
        }
        return check_opaque_layout(layout);
    }
    if (image.backing() != Backing::dma_buf) {
        return make_error(Errc::unsupported,
                          "image {}: a {} image cannot be imported: Vulkan imports DMA-BUFs and opaque_fd memory "
                          "(map it and upload the pixels instead)",
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

namespace {
Result<void> check_same_device(std::uint64_t image_id, const OpaqueMemory& memory, const Device& device) {
    const bool same_device = memory.device_uuid == device.device_uuid();
    const bool same_driver = memory.driver_uuid == device.driver_uuid();
    if (same_device && same_driver) return {};
    return make_error(Errc::unsupported,
                      "image {}: opaque_fd memory of another {}: exported on device UUID {} driver UUID {}, this "
                      "device ({}) has device UUID {} driver UUID {}; OPAQUE_FD memory imports only on the same "
                      "device and driver (Vulkan spec, external memory handle types compatibility)",
                      image_id,
                      !same_device && !same_driver ? "device and driver"
                      : !same_device               ? "device (the device UUID differs)"
                                                   : "driver (the driver UUID differs)",
                      uuid_hex(memory.device_uuid), uuid_hex(memory.driver_uuid), device.name(),
                      uuid_hex(device.device_uuid()), uuid_hex(device.driver_uuid()));
}
}  // namespace

Result<void> check_importable(std::uint64_t image_id, const DmaBufImage& image, const Device& device,
                              VkImageUsageFlags usage) {
    if (auto importable = check_importable(image_id, image, device.has_drm_format_modifiers()); !importable) {
        return importable;
    }
    if (image.backing() == Backing::dma_buf && !device.has_dma_buf()) {
        return make_error(Errc::unsupported, "image {}: a dma_buf image needs {}, which {} was not created with",
                          image_id, VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME, device.name());
    }
    if (image.backing() != Backing::opaque_fd) return {};
    if (auto same = check_same_device(image_id, image.opaque_memory(), device); !same) return same;
    const std::uint32_t exported = image.opaque_memory().image_usage;
    if ((usage & ~exported) != 0) {
        return make_error(Errc::unsupported,
                          "image {}: the import wants usage 0x{:x}, the opaque_fd image was created with 0x{:x} "
                          "(missing 0x{:x}); OPAQUE_FD import creates the image exactly as the exporter did",
                          image_id, usage, exported, usage & ~exported);
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
    if (auto importable = check_importable(image_id, image, device_, options_.usage); !importable) {
        return std::move(importable).error();
    }
    auto imported = image.backing() == Backing::opaque_fd ? detail::import_opaque_fd(device_, image)
                                                          : detail::import_dma_buf(device_, options_.usage, image);
    if (!imported) {
        Error error = std::move(imported).error();  // keeps the code and errno
        error.message = fmt::format("image {}: {}", image_id, error.message);
        return error;
    }
    imported->color = image.color();
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
