// GBM allocation. Design notes:
// - A gbm_bo is only a means to get DMA-BUF fds: once every plane is exported the bo is
//   destroyed, because the fds hold their own references to the memory. DmaBufImage then
//   stays a plain value type that knows nothing about GBM.
// - The writable export (drmPrimeHandleToFD with DRM_RDWR) must come before any read-only
//   one: the kernel caches a buffer's first exported file and hands it back to every later
//   export, so a gbm_bo_get_fd() first would make every later fd read-only too.
#include "texshare/gbm/allocator.hpp"

#include <fcntl.h>
#include <gbm.h>
#include <sys/stat.h>
#include <xf86drm.h>

#include <algorithm>
#include <array>
#include <utility>

namespace texshare::gbm {
namespace {

struct BoDeleter {
    void operator()(gbm_bo* bo) const noexcept { gbm_bo_destroy(bo); }
};
using UniqueBo = std::unique_ptr<gbm_bo, BoDeleter>;

std::string driver_name(BorrowedFd fd) {
    drmVersionPtr version = drmGetVersion(fd.get());
    if (version == nullptr) return "unknown";
    std::string name(version->name, static_cast<std::size_t>(version->name_len));
    drmFreeVersion(version);
    return name;
}

bool accepts(const std::vector<std::uint64_t>& modifiers, std::uint64_t modifier) {
    return modifiers.empty() || std::ranges::find(modifiers, modifier) != modifiers.end();
}

// The caller's modifiers but the implicit one (INVALID), for create_with_modifiers.
std::vector<std::uint64_t> explicit_modifiers(const std::vector<std::uint64_t>& modifiers) {
    std::vector<std::uint64_t> result;
    for (std::uint64_t modifier : modifiers) {
        if (modifier != DRM_FORMAT_MOD_INVALID) result.push_back(modifier);
    }
    return result;
}

Result<UniqueFd> export_plane(BorrowedFd drm_fd, gbm_bo* bo, int plane) {
    const std::uint32_t handle = gbm_bo_get_handle_for_plane(bo, plane).u32;
    int fd = -1;
    if (drmPrimeHandleToFD(drm_fd.get(), handle, DRM_CLOEXEC | DRM_RDWR, &fd) == 0 && fd >= 0) {
        return UniqueFd(fd);
    }
    const int prime_errno = errno;
#if TEXSHARE_HAVE_GBM_BO_GET_FD_FOR_PLANE
    fd = gbm_bo_get_fd_for_plane(bo, plane);
#else
    fd = plane == 0 ? gbm_bo_get_fd(bo) : -1;
#endif
    if (fd < 0) {
        return make_sys_error(prime_errno, "export of plane {} (handle {}): drmPrimeHandleToFD failed and "
                              "the GBM export gave no fd", plane, handle);
    }
    return UniqueFd(fd);
}

}  // namespace

Result<std::vector<DrmNode>> list_drm_nodes() {
    std::array<drmDevicePtr, 64> devices{};
    const int count = drmGetDevices2(0, devices.data(), static_cast<int>(devices.size()));
    if (count == -ENOENT) return std::vector<DrmNode>{};  // no /dev/dri: a machine without DRM
    if (count < 0) return make_sys_error(-count, "drmGetDevices2");
    std::vector<DrmNode> nodes;
    for (int type : {DRM_NODE_RENDER, DRM_NODE_PRIMARY}) {
        for (int i = 0; i < count; ++i) {
            if ((devices[i]->available_nodes & (1 << type)) == 0) continue;
            struct stat info {};
            const dev_t number = ::stat(devices[i]->nodes[type], &info) == 0 ? info.st_rdev : 0;
            nodes.push_back(DrmNode{devices[i]->nodes[type], "", type == DRM_NODE_RENDER, number});
        }
    }
    drmFreeDevices(devices.data(), count);
    return nodes;
}

Device::Device(UniqueFd drm_fd, ::gbm_device* device, DrmNode node)
    : drm_fd_(std::move(drm_fd)), device_(device), node_(std::move(node)) {}

Device::Device(Device&& other) noexcept
    : drm_fd_(std::move(other.drm_fd_)), device_(std::exchange(other.device_, nullptr)),
      node_(std::move(other.node_)) {}

Device& Device::operator=(Device&& other) noexcept {
    if (this != &other) {
        if (device_ != nullptr) gbm_device_destroy(device_);
        drm_fd_ = std::move(other.drm_fd_);
        device_ = std::exchange(other.device_, nullptr);
        node_ = std::move(other.node_);
    }
    return *this;
}

Device::~Device() {
    if (device_ != nullptr) gbm_device_destroy(device_);  // before its fd closes
}

Result<Device> Device::open(const std::string& node_path) {
    UniqueFd fd(::open(node_path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd) return make_sys_error(errno, "open of DRM node {}", node_path);
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) return make_sys_error(errno, "fstat of DRM node {}", node_path);
    // GBM must never see a non-DRM fd (Mesa's loader would probe it); libdrm knows DRM majors.
    const int node_type = drmGetNodeTypeFromFd(fd.get());
    if (!S_ISCHR(info.st_mode) || node_type < 0) {
        return make_error(Errc::invalid_argument, "{} is not a DRM device node", node_path);
    }
    const bool render = node_type == DRM_NODE_RENDER;
    DrmNode node{node_path, driver_name(fd.borrow()), render, info.st_rdev};
    ::gbm_device* device = gbm_create_device(fd.get());
    if (device == nullptr) return make_error(Errc::unsupported, "gbm_create_device on {} failed", node_path);
    return Device(std::move(fd), device, std::move(node));
}

Result<Device> Device::open_default() {
    auto nodes = list_drm_nodes();
    if (!nodes) return std::move(nodes).error();
    std::string tried;
    for (const DrmNode& node : *nodes) {
        auto device = open(node.path);
        if (!device) {
            tried += fmt::format("; {}: {}", node.path, device.error().message);
            continue;
        }
        for (std::uint32_t fourcc : {DRM_FORMAT_ARGB8888, DRM_FORMAT_ABGR8888}) {
            auto probe = device->allocate(AllocationRequest{64, 64, fourcc, {}, 0});
            if (probe) return device;
            tried += fmt::format("; {} ({}): {}", node.path, device->node().driver, probe.error().message);
        }
    }
    if (nodes->empty()) tried = "; libdrm found no DRM device (no /dev/dri)";
    return make_error(Errc::unsupported, "no DRM node can allocate with GBM{}", tried);
}

Result<DmaBufImage> Device::allocate(const AllocationRequest& request) const {
    const FormatInfo* info = find_format(request.fourcc);
    if (info == nullptr) {
        return make_error(Errc::unsupported, "gbm: format {} is not one texshare knows",
                          format_name(request.fourcc));
    }
    if (auto size = check_image_size(request.width, request.height); !size) {
        Error error = std::move(size).error();
        error.code = Errc::invalid_argument;
        return error;
    }
    const std::uint32_t usage = request.usage != 0 ? request.usage : std::uint32_t{GBM_BO_USE_RENDERING};
    UniqueBo bo;
    std::uint64_t modifier = DRM_FORMAT_MOD_INVALID;
    std::string attempts;
    if (auto mods = explicit_modifiers(request.modifiers); !mods.empty()) {
        // The driver picks the best layout among the caller's (the negotiated list).
#if TEXSHARE_HAVE_GBM_BO_CREATE_WITH_MODIFIERS2
        bo.reset(gbm_bo_create_with_modifiers2(device_, request.width, request.height, request.fourcc,
                                               mods.data(), static_cast<unsigned>(mods.size()), usage));
#else
        bo.reset(gbm_bo_create_with_modifiers(device_, request.width, request.height, request.fourcc,
                                              mods.data(), static_cast<unsigned>(mods.size())));
#endif
        const int create_errno = errno;
        if (bo) modifier = gbm_bo_get_modifier(bo.get());
        if (bo && std::ranges::find(mods, modifier) == mods.end()) {
            // Mesa 25's kms_swrast takes the list and ignores it, reporting no modifier
            // (INVALID): a layout the caller did not ask for and nobody can name. Drop it;
            // the LINEAR usage flag below gives a layout that is known to be linear.
            attempts += fmt::format(" with {} modifiers: got {} instead;", mods.size(), modifier_name(modifier));
            bo.reset();
            modifier = DRM_FORMAT_MOD_INVALID;
        } else {
            attempts += fmt::format(" with {} modifiers: errno {};", mods.size(), create_errno);
        }
    }
    if (!bo && accepts(request.modifiers, DRM_FORMAT_MOD_LINEAR)) {
        bo.reset(gbm_bo_create(device_, request.width, request.height, request.fourcc,
                                usage | std::uint32_t{GBM_BO_USE_LINEAR}));
        if (bo) modifier = DRM_FORMAT_MOD_LINEAR;
        attempts += fmt::format(" LINEAR: errno {};", errno);
    }
    if (!bo && accepts(request.modifiers, DRM_FORMAT_MOD_INVALID)) {
        bo.reset(gbm_bo_create(device_, request.width, request.height, request.fourcc, usage));
        if (bo) modifier = DRM_FORMAT_MOD_INVALID;
        attempts += fmt::format(" implicit: errno {};", errno);
    }
    if (!bo) {
        return make_error(Errc::unsupported, "gbm: {} cannot allocate {}x{} {}; tried{}", node_.path,
                          request.width, request.height, format_name(request.fourcc), attempts);
    }
    const int planes = gbm_bo_get_plane_count(bo.get());
    if (planes < 1 || planes > static_cast<int>(max_planes)) {
        return make_error(Errc::unsupported, "gbm: buffer reports {} planes", planes);
    }
    ImageLayout layout{request.width, request.height, request.fourcc, modifier,
                       static_cast<std::uint32_t>(planes), {}};
    PlaneFds fds;
    for (int i = 0; i < planes; ++i) {
        layout.planes[i] = PlaneLayout{gbm_bo_get_offset(bo.get(), i), gbm_bo_get_stride_for_plane(bo.get(), i)};
        auto fd = export_plane(drm_fd_.borrow(), bo.get(), i);
        if (!fd) return std::move(fd).error();
        fds[i] = std::move(*fd);
    }
    return DmaBufImage::adopt(layout, Backing::dma_buf, std::move(fds));
}

FormatSet Device::allocatable_formats(const FormatSet& render_formats) const {
    FormatSet result;
    for (const FormatInfo& info : known_formats()) {
        std::vector<std::uint64_t> candidates;
        if (const DrmFormat* rendered = render_formats.find(info.fourcc); rendered != nullptr) {
            for (const FormatModifier& m : rendered->modifiers) candidates.push_back(m.modifier);
        }
        for (std::uint64_t modifier : {DRM_FORMAT_MOD_LINEAR, DRM_FORMAT_MOD_INVALID}) {
            if (std::ranges::find(candidates, modifier) == candidates.end()) candidates.push_back(modifier);
        }
        for (std::uint64_t modifier : candidates) {
            // Exactly this modifier: an allocation that lands on another one does not count.
            auto probe = allocate(AllocationRequest{64, 64, info.fourcc, {modifier}, 0});
            if (probe && probe->layout().modifier == modifier) result.add(info.fourcc, modifier);
        }
    }
    return result;
}

}  // namespace texshare::gbm
