// This process's open fds, for the host's before/after leak check and the renderer's check
// that it inherited nothing but its own fds.
#pragma once

#include <dirent.h>

#include <cerrno>
#include <charconv>
#include <memory>
#include <string_view>
#include <vector>

#include "texshare/result.hpp"

namespace host_renderer {

inline texshare::Result<std::vector<int>> list_open_fds() {
    const std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/proc/self/fd"), ::closedir);
    if (!dir) return texshare::make_sys_error(errno, "opendir(/proc/self/fd)");
    std::vector<int> fds;
    while (const dirent* entry = ::readdir(dir.get())) {
        const std::string_view name(entry->d_name);
        int fd = -1;
        const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), fd);
        if (error == std::errc{} && end == name.data() + name.size() && fd != ::dirfd(dir.get()))
            fds.push_back(fd);
    }
    return fds;
}

}  // namespace host_renderer
