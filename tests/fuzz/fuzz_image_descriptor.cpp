// Fuzz target: image descriptor validation. The input is an ImageDescriptor and the fds that
// come with it (input-chosen kinds and sizes); whenever import_image() accepts, every byte of
// every plane it vouched for must be readable through a mapping: a validation gap would show
// as SIGBUS or a segfault here.
//   input: u8 fd mask | per plane in the mask: u8 kind, u32 size | ImageDescriptor bytes
#include <sys/mman.h>

#include "fuzz/fuzz_support.hpp"
#include "texshare/image_wire.hpp"

using namespace texshare;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::LeakCheck leak_check;
    fuzz::Input input(data, size);
    const auto wanted_fds = input.take<std::uint8_t>();
    PlaneFds fds;
    for (std::size_t i = 0; i < max_planes; ++i) {
        if (((wanted_fds >> i) & 1U) == 0) continue;
        const auto kind = input.take<std::uint8_t>();
        fds[i].reset(fuzz::make_fd(kind, input.take<std::uint32_t>()));
    }
    const auto descriptor = input.take<ImageDescriptor>();
    auto image = import_image(descriptor, std::move(fds));
    if (!image) return 0;
    auto mapping = image->map(Access::read);
    if (!mapping) return 0;  // a pipe that passed as... nothing does; mapping refusals are fine
    volatile std::uint8_t sink = 0;
    for (std::size_t plane = 0; plane < mapping->plane_count(); ++plane) {
        for (std::byte b : mapping->plane(plane)) sink = sink ^ std::to_integer<std::uint8_t>(b);
    }
    (void)sink;
    return 0;
}
