// A renderer's own counts, in a page of shared memory the host hands it: they survive the
// renderer's SIGKILL, so the host can compare what a killed renderer presented with what
// reached the host. Instrumentation for the summary; a real renderer needs none of it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace host_renderer {

struct TallyCounts {
    std::uint64_t presented = 0;  // present() calls about to be made (counted just before)
    std::uint64_t released = 0;   // releases the renderer got back
    // Presentation feedback the renderer got (FrameSender::take_feedback()): presents the
    // host reported shown, and presents it replaced or released unshown.
    std::uint64_t feedback_presented = 0;
    std::uint64_t feedback_discarded = 0;
};

class Tally {
public:
    // Host: a fresh zeroed page (a memfd), mapped here; give dup() of it to the renderer.
    static texshare::Result<Tally> create();
    // Renderer: the page on the inherited `fd`, which must be a memfd of the right size.
    static texshare::Result<Tally> adopt(int fd);

    texshare::Result<texshare::UniqueFd> dup() const;
    TallyCounts read() const noexcept;
    void set_presented(std::uint64_t count) noexcept;
    void set_released(std::uint64_t count) noexcept;
    void set_feedback(std::uint64_t presented, std::uint64_t discarded) noexcept;

private:
    struct Page {
        std::atomic<std::uint64_t> presented;
        std::atomic<std::uint64_t> released;
        std::atomic<std::uint64_t> feedback_presented;
        std::atomic<std::uint64_t> feedback_discarded;
    };
    struct Unmap {
        void operator()(Page* page) const noexcept;
    };
    static texshare::Result<Tally> map(texshare::UniqueFd fd);

    texshare::UniqueFd fd_;
    std::unique_ptr<Page, Unmap> page_;
};

}  // namespace host_renderer
