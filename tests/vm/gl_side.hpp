// VM-lane support: one process's GL side (a GBM device, its EGL display, an importer),
// opened inside a forked child (support/two_process.hpp), never in the gtest process.
#pragma once

#include <optional>
#include <string_view>

#include "support/gl_helpers.hpp"
#include "support/two_process.hpp"
#include "texshare/egl/importer.hpp"
#include "texshare/gbm/allocator.hpp"
#include "vm/vgem_fence.hpp"

namespace texshare::testing {

struct GlSide {
    gbm::Device device;
    egl::Display display;
    egl::Importer importer;
};

// On the device of `driver` ("vgem", "virtio_gpu"), or open_default()'s pick when empty.
inline std::optional<GlSide> open_gl_side(std::string_view driver = {}) {
    auto device =
        value_or_fail(driver.empty() ? gbm::Device::open_default() : open_device_of(driver), "gbm device");
    if (!device) return std::nullopt;
    auto display = value_or_fail(egl::Display::open_gbm(device->native()), "gbm display");
    if (!display) return std::nullopt;
    auto importer = value_or_fail(egl::Importer::create(*display), "importer");
    if (!importer) return std::nullopt;
    return GlSide{std::move(*device), std::move(*display), std::move(*importer)};
}

}  // namespace texshare::testing
