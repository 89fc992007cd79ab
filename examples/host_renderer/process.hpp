// Process plumbing for the example: counting open fds, spawning the renderer, reaping it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "options.hpp"
#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace host_renderer {

// This process's open fds, without the one used to list them.
texshare::Result<std::vector<int>> list_open_fds();
texshare::Result<std::size_t> count_open_fds();

// Starts this executable again in --renderer mode with image_end on fd 3, frame_end on fd 4
// and nothing else but stdio. Consumes both ends: the host keeps no copy of them, so the
// renderer's death is seen as the channel closing.
texshare::Result<pid_t> spawn_renderer(const Options& host, const std::string& program,
                                       texshare::UniqueFd image_end, texshare::UniqueFd frame_end);

struct ChildStatus {
    bool exited = false;  // false: killed by a signal
    int code = 0;         // exit code or signal number
    bool ok() const noexcept { return exited && code == 0; }
    std::string describe() const;
};

// waitpid, retried on EINTR.
texshare::Result<ChildStatus> wait_for_child(pid_t pid);

}  // namespace host_renderer
