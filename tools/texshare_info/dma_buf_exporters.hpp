// The exporters that need no GPU: DMA-BUF heaps (/dev/dma_heap) and udmabuf (/dev/udmabuf),
// each found out by using it, never by the kernel version.
//
// Use them through collect_report(). A heap "works" when a real allocation from it, written
// by the CPU and sent over a socket pair, reads back exactly through the receiver's mapping.
// udmabuf's conversion is judged the same way; its imports go through each GPU API
// texshare has (EGL, and Vulkan where built), and only pixels read back exactly count: an EGL that accepts
// the buffer and reads zeros (Mesa 25 on vgem) is a failure at "read back" or "compare".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "report.hpp"
#include "round_trip.hpp"

namespace texshare::info {

// Every heap in `heap_dir` with its allocation; `error` says why none is listed.
std::vector<HeapReport> probe_heaps(std::string& error, const std::string& heap_dir = "/dev/dma_heap");

// The conversion of a sealed memfd through `udmabuf_path`.
Feature probe_udmabuf_conversion(const std::string& udmabuf_path = "/dev/udmabuf");

// A fresh udmabuf image (pattern written through the memfd) imported through `egl`, read
// back and compared; `api` names the API and display in the report. `image_id` must be
// unused in the importer.
UdmabufImport udmabuf_import_round_trip(EglSide& egl, std::string api, std::uint64_t image_id,
                                        const std::string& udmabuf_path = "/dev/udmabuf");

// The same with Vulkan (the first device that imports DMA-BUFs; lavapipe in the 6.12 guest),
// the pixels read back by a copy to a host-visible buffer. `untested` where this build or
// machine has no such Vulkan device.
UdmabufImport udmabuf_vulkan_round_trip(std::uint64_t image_id,
                                        const std::string& udmabuf_path = "/dev/udmabuf");

}  // namespace texshare::info
