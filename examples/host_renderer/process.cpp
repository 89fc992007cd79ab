#include "process.hpp"

#include <dirent.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "protocol.hpp"

namespace host_renderer {
namespace {

using texshare::Errc;
using texshare::make_error;
using texshare::make_sys_error;
using texshare::UniqueFd;

struct DirCloser {
    void operator()(DIR* dir) const noexcept { ::closedir(dir); }
};

// dup2(fd, fd) would leave CLOEXEC set, and dup2(a, 3) clobbers b if b is 3: so the sources
// of the child's fds must sit above every target. F_DUPFD_CLOEXEC keeps the host's copy
// private until posix_spawn's dup2 makes the child's copy inheritable.
constexpr int first_source_fd = 10;

texshare::Result<UniqueFd> move_above_targets(UniqueFd fd) {
    if (fd.get() >= first_source_fd) return fd;
    UniqueFd moved(::fcntl(fd.get(), F_DUPFD_CLOEXEC, first_source_fd));
    if (!moved)
        return make_sys_error(errno, "fcntl(F_DUPFD_CLOEXEC, {}) of fd {}", first_source_fd, fd.get());
    return moved;  // `fd` closes the low copy
}

class FileActions {
public:
    FileActions() noexcept : error_(::posix_spawn_file_actions_init(&actions_)) {}
    ~FileActions() {
        if (error_ == 0) ::posix_spawn_file_actions_destroy(&actions_);
    }
    FileActions(const FileActions&) = delete;
    FileActions& operator=(const FileActions&) = delete;

    int init_error() const noexcept { return error_; }
    posix_spawn_file_actions_t* get() noexcept { return &actions_; }

private:
    posix_spawn_file_actions_t actions_{};
    int error_;
};

}  // namespace

texshare::Result<std::vector<int>> list_open_fds() {
    std::unique_ptr<DIR, DirCloser> dir(::opendir("/proc/self/fd"));
    if (!dir) return make_sys_error(errno, "opendir(/proc/self/fd)");
    const int own = ::dirfd(dir.get());
    std::vector<int> fds;
    errno = 0;
    while (const dirent* entry = ::readdir(dir.get())) {
        const std::string_view name(entry->d_name);
        int fd = -1;
        const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), fd);
        if (error != std::errc{} || end != name.data() + name.size()) continue;  // "." and ".."
        if (fd != own) fds.push_back(fd);
    }
    if (errno != 0) return make_sys_error(errno, "readdir(/proc/self/fd)");
    return fds;
}

texshare::Result<std::size_t> count_open_fds() {
    auto fds = list_open_fds();
    if (!fds) return std::move(fds).error();
    return fds->size();
}

texshare::Result<pid_t> spawn_renderer(const Options& host, const std::string& program, UniqueFd image_end,
                                       UniqueFd frame_end) {
    auto image_source = move_above_targets(std::move(image_end));
    if (!image_source) return std::move(image_source).error();
    auto frame_source = move_above_targets(std::move(frame_end));
    if (!frame_source) return std::move(frame_source).error();

    FileActions actions;
    if (actions.init_error() != 0)
        return make_sys_error(actions.init_error(), "posix_spawn_file_actions_init");
    if (int error = ::posix_spawn_file_actions_adddup2(actions.get(), image_source->get(), child_image_fd)) {
        return make_sys_error(error, "posix_spawn_file_actions_adddup2({}, {})", image_source->get(),
                              child_image_fd);
    }
    if (int error = ::posix_spawn_file_actions_adddup2(actions.get(), frame_source->get(), child_frame_fd)) {
        return make_sys_error(error, "posix_spawn_file_actions_adddup2({}, {})", frame_source->get(),
                              child_frame_fd);
    }
#if defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 34)
    // Our own fds are all CLOEXEC, but whoever started us may have leaked some to us; they
    // are not ours to pass on.
    if (int error = ::posix_spawn_file_actions_addclosefrom_np(actions.get(), child_frame_fd + 1)) {
        return make_sys_error(error, "posix_spawn_file_actions_addclosefrom_np({})", child_frame_fd + 1);
    }
#endif
#endif

    std::vector<std::string> arguments = renderer_command_line(host, program, child_image_fd, child_frame_fd);
    std::vector<char*> argv;
    for (std::string& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);

    // /proc/self/exe is this very binary even when argv[0] is a bare name found on PATH.
    pid_t pid = -1;
    const int error = ::posix_spawn(&pid, "/proc/self/exe", actions.get(), nullptr, argv.data(), environ);
    if (error != 0) return make_sys_error(error, "posix_spawn of /proc/self/exe --renderer");
    return pid;
}

std::string ChildStatus::describe() const {
    if (exited) return fmt::format("exit {}", code);
    return fmt::format("killed by signal {} ({})", code, ::strsignal(code));
}

texshare::Result<ChildStatus> wait_for_child(pid_t pid) {
    int status = 0;
    pid_t waited = -1;
    do {
        waited = ::waitpid(pid, &status, 0);
    } while (waited < 0 && errno == EINTR);
    if (waited < 0) return make_sys_error(errno, "waitpid({})", pid);
    if (WIFEXITED(status)) return ChildStatus{true, WEXITSTATUS(status)};
    if (WIFSIGNALED(status)) return ChildStatus{false, WTERMSIG(status)};
    return make_error(Errc::system, "waitpid({}): status 0x{:x} is neither an exit nor a signal", pid,
                      status);
}

}  // namespace host_renderer
