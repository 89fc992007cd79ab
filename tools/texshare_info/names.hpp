// Short names for texshare-info's output: formats, modifiers and device numbers.
//
// Use these instead of texshare::format_name() where a list must stay readable: EGL lists
// many formats texshare has no facts for, and "unknown fourcc 0x..." would drown the rest.
#pragma once

#include <cstdint>
#include <string>

namespace texshare::info {

// texshare's name ("ARGB8888") for a format it knows, else libdrm's fourcc code ("NV16"),
// else the value in hex.
std::string fourcc_label(std::uint32_t fourcc);

// "0x34325241": the fourcc as JSON carries it, next to its label.
std::string fourcc_hex(std::uint32_t fourcc);

// "226:0": major and minor of a device number.
std::string device_number_label(std::uint64_t device_number);

}  // namespace texshare::info
