// The Vulkan devices of this machine, each with its identity (device and driver UUIDs) and
// what its driver says of OPAQUE_FD image memory: the facts SharingPath::opaque_fd rests on.
//
// Use it through collect_report(). Nothing is exported or imported: the answer is
// vkGetPhysicalDeviceImageFormatProperties2's, said as such in the verdict (verdict.hpp).
#pragma once

#include <string>
#include <vector>

#include "report.hpp"

namespace texshare::info {

// One entry per physical device of Vulkan 1.1 or newer; `error` says why none is listed
// (no loader or driver, none of 1.1, or texshare-info built without Vulkan).
std::vector<VulkanOpaqueReport> probe_vulkan_devices(std::string& error);

}  // namespace texshare::info
