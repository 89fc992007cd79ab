#include "names.hpp"

#include <sys/sysmacros.h>

#include <fmt/format.h>

#include "texshare/format.hpp"

namespace texshare::info {

std::string fourcc_label(std::uint32_t fourcc) {
    if (const FormatInfo* info = find_format(fourcc)) return info->name;
    texshare::detail::DrmString code(drmGetFormatName(fourcc));
    if (code && fourcc != 0) return code.get();
    return fourcc_hex(fourcc);
}

std::string fourcc_hex(std::uint32_t fourcc) {
    return fmt::format("0x{:08x}", fourcc);
}

std::string device_number_label(std::uint64_t device_number) {
    const auto number = static_cast<dev_t>(device_number);
    return fmt::format("{}:{}", major(number), minor(number));
}

}  // namespace texshare::info
