// GPU lane (scripts/gpu-lane.sh; an NVIDIA GPU, never CI): texshare::vulkan across two
// processes on a driver without DMA-BUF export. NVIDIA's Vulkan driver has no
// VK_EXT_external_memory_dma_buf and no SYNC_FD semaphores, so images travel as the
// opaque_fd backing (OPAQUE_FD memory with the device and driver UUIDs) and fences as
// OPAQUE_FD binary semaphores, the second fence kind on the wire:
//   - the renderer child draws every frame with a compute shader (support/vulkan_pattern.hpp)
//     into images from vulkan::Exporter, shares them once through the frame protocol and
//     presents each frame with an OPAQUE_FD semaphore;
//   - the host child imports them with vulkan::ImportListener, waits on that semaphore in
//     the submit that copies the frame out, checks every pixel of every frame, and releases
//     with an OPAQUE_FD semaphore of its own, which the renderer's next dispatch waits on;
//   - 1000 frames, with each child's open-fd count and texshare's Vulkan objects (imports,
//     pattern targets) the same after frame 20 and after the last; Khronos' validation
//     layer, carried by the lane, checks every call and reports objects left at
//     vkDestroyDevice (a message fails the test).
// And the round trip (present -> received -> release -> received) with semaphores and GPU
// work each way, as a ratio to a raw SOCK_SEQPACKET ping-pong carrying one fd each way,
// measured in the same run.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <vector>

#include "support/two_process.hpp"
#include "support/vulkan_pattern.hpp"
#include "support/vulkan_queue.hpp"
#include "support/vulkan_test_device.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/vulkan/exporter.hpp"
#include "texshare/vulkan/fence.hpp"
#include "texshare/vulkan/import_listener.hpp"

namespace texshare::vulkan {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::Peer;
using testing::run_pair;
using testing::send_note;
using testing::TestQueue;
using testing::TestVulkan;
using testing::value_or_fail;
using testing::wait_note;

constexpr std::uint32_t width = 256;
constexpr std::uint32_t height = 256;
constexpr std::uint64_t image_count = 3;
constexpr std::uint32_t frames = 1000;
constexpr std::uint32_t steady_frame = 20;  // fd and object counts compared from here on
constexpr auto patience = 20s;              // a failure bound only

// An application's Vulkan as on NVIDIA: OPAQUE_FD memory and semaphores. EXTERNAL is the
// queue family of another process on the same device (no VK_EXT_queue_family_foreign).
struct App {
    TestVulkan vk;
    TestQueue queue;
    Fences fences;
};
std::optional<App> open_app(bool validate = true) {
    const std::vector<std::string> wanted{VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME,
                                          VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME};
    auto vk = value_or_fail(TestVulkan::create(wanted, validate), "vulkan");
    if (!vk) return std::nullopt;
    EXPECT_EQ(vk->enabled().size(), wanted.size());
    auto queue = value_or_fail(TestQueue::create(*vk), "queue");
    Fences::Options options;
    options.allow_opaque_fd = true;  // both children are on this one device and driver
    auto fences = value_or_fail(Fences::create(vk->handles(), options), "fences");
    if (!queue || !fences) return std::nullopt;
    return App{std::move(*vk), std::move(*queue), std::move(*fences)};
}

template <typename Endpoint, typename Ready>
Result<void> dispatch_until(Endpoint& endpoint, Ready&& ready) {
    const auto deadline = Clock::now() + patience;
    while (!ready()) {
        if (Clock::now() >= deadline) return make_error(Errc::timed_out, "dispatch_until");
        pollfd entry{endpoint.native_handle().get(), POLLIN, 0};
        (void)::poll(&entry, 1, 50);
        if (auto handled = endpoint.dispatch(); !handled) return std::move(handled).error();
    }
    return {};
}

void barrier(VkCommandBuffer c, VkImage image, VkImageLayout from, std::uint32_t src_family,
             std::uint32_t dst_family, VkAccessFlags src_access, VkAccessFlags dst_access) {
    const VkImageMemoryBarrier b{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER, nullptr, src_access, dst_access, from,
                                 VK_IMAGE_LAYOUT_GENERAL, src_family, dst_family, image,
                                 {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1}};
    vkCmdPipelineBarrier(c, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 0, nullptr, 0,
                         nullptr, 1, &b);
}

// Declared after the Vulkan objects a scope uses, so that however the scope ends (a failed
// assertion too) the GPU is done with them before they are destroyed.
struct IdleFirst {
    TestQueue& queue;
    ~IdleFirst() { (void)queue.wait_idle(); }
};

std::size_t open_fds() { return static_cast<std::size_t>(testing::open_fd_count()); }

// The renderer's side, shared by the frame test and the benchmark: `frame_count` frames
// drawn by the compute shader, each presented with the fence Fences gives, the release
// fence of the image's previous round waited on by the GPU before it is drawn again.
void render_frames(Peer& peer, std::uint32_t frame_count, bool check_counts, std::vector<double>* round_trips = nullptr) {
    auto app = open_app(round_trips == nullptr);  // the benchmark runs without the validation layer
    ASSERT_TRUE(app);
    EXPECT_EQ(app->fences.mode(), SyncMode::opaque_fd) << "measured: NVIDIA has OPAQUE_FD semaphores, not SYNC_FD";
    Exporter::Options export_options;
    export_options.usage = VK_IMAGE_USAGE_STORAGE_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT;
    auto exporter = value_or_fail(Exporter::create(app->vk.handles(), export_options), "exporter");
    auto renderer = value_or_fail(testing::PatternRenderer::create(app->vk.handles().device, image_count), "pattern renderer");
    FrameSenderOptions sender_options;
    sender_options.accepted_fence_kinds = app->fences.accepted_fence_kinds();
    auto sender = value_or_fail(FrameSender::create(std::move(peer.frames), sender_options), "sender");
    ASSERT_TRUE(exporter && renderer && sender);
    std::printf("[measured] renderer: %s, fence mode %s %s, validation %s\n", exporter->device().name().c_str(),
                std::string(to_string(app->fences.mode())).c_str(), app->fences.reason().c_str(),
                app->vk.validated() ? "on" : "off");
    std::array<ExportedImage, image_count> images;
    IdleFirst idle_first{app->queue};
    for (std::uint64_t id = 1; id <= image_count; ++id) {
        auto exported = value_or_fail(exporter->allocate(width, height, DRM_FORMAT_ABGR8888), "export");
        ASSERT_TRUE(exported);
        EXPECT_EQ(exported->image.backing(), Backing::opaque_fd) << "NVIDIA exports no DMA-BUF";
        images[id - 1] = std::move(exported->vulkan);
        auto added = value_or_fail(sender->add_image(std::move(exported->image)), "add_image");
        ASSERT_TRUE(added);
        ASSERT_EQ(*added, id);
    }
    std::size_t fds_at_steady = 0;  // the same point of frames steady_frame and frame_count
    std::size_t fds_at_last = 0;
    for (std::uint32_t frame = 1; frame <= frame_count; ++frame) {
        const std::uint64_t id = (frame - 1) % image_count + 1;
        const ExportedImage& target = images[id - 1];
        const bool first_use = frame <= image_count;
        ASSERT_TRUE(dispatch_until(*sender, [&] { return sender->state(id) == FrameImageState::free; }));
        PeerFence release;
        release.kind = sender->release_fence_kind(id);
        release.fd = sender->take_release_fence(id);
        auto wait = value_or_fail(app->fences.wait_semaphore(std::move(release), patience), "release fence");
        auto signal = value_or_fail(app->fences.signal_semaphore(), "signal semaphore");
        ASSERT_TRUE(wait && signal);
        IdleFirst frame_idle{app->queue};
        ASSERT_TRUE(app->queue.submit(*wait, *signal, [&](VkCommandBuffer c) {
            barrier(c, target.image(), first_use ? VK_IMAGE_LAYOUT_UNDEFINED : VK_IMAGE_LAYOUT_GENERAL,
                    first_use ? VK_QUEUE_FAMILY_IGNORED : VK_QUEUE_FAMILY_EXTERNAL,
                    first_use ? VK_QUEUE_FAMILY_IGNORED : app->queue.family(), 0, VK_ACCESS_SHADER_WRITE_BIT);
            ASSERT_TRUE(renderer->record(c, target.image(), VK_FORMAT_R8G8B8A8_UNORM, target.extent(), frame));
            barrier(c, target.image(), VK_IMAGE_LAYOUT_GENERAL, app->queue.family(), VK_QUEUE_FAMILY_EXTERNAL,
                    VK_ACCESS_SHADER_WRITE_BIT, 0);
        }));
        auto acquire = value_or_fail(app->fences.fence_for_peer(app->queue.queue(), *signal), "acquire fence");
        ASSERT_TRUE(acquire);
        const auto presented = Clock::now();
        ASSERT_TRUE(sender->present(id, acquire->borrow(), acquire->kind));
        if (round_trips != nullptr) {  // the benchmark: present -> the release received
            ASSERT_TRUE(dispatch_until(*sender, [&] { return sender->state(id) == FrameImageState::free; }));
            if (frame > steady_frame) {
                round_trips->push_back(std::chrono::duration<double, std::micro>(Clock::now() - presented).count());
            }
        }
        // The semaphores go when the GPU is done with them: keep the last round's until then.
        ASSERT_TRUE(app->queue.wait_idle());
        // Release fences that arrived for other images and wait in the sender are the
        // peer's, held on purpose until taken: how many is a matter of timing.
        const auto own_fds = [&] {
            std::size_t held = 0;
            for (std::uint64_t other = 1; other <= image_count; ++other) {
                held += sender->release_fence_kind(other) != FenceKind::none ? 1 : 0;
            }
            return open_fds() - held;
        };
        if (check_counts && frame == steady_frame) fds_at_steady = own_fds();
        if (check_counts && frame == frame_count) fds_at_last = own_fds();
    }
    ASSERT_TRUE(dispatch_until(*sender, [&] {
        for (std::uint64_t id = 1; id <= image_count; ++id) {
            if (sender->state(id) != FrameImageState::free) return false;
        }
        return true;
    }));
    for (std::uint64_t id = 1; id <= image_count; ++id) (void)sender->take_release_fence(id);
    if (check_counts) {
        EXPECT_EQ(fds_at_last, fds_at_steady) << "renderer fds after frame " << steady_frame << " and after " << frame_count;
        EXPECT_EQ(renderer->known_images(), image_count);
        std::printf("[measured] renderer: %zu fds open after frame %u, %zu after frame %u\n", fds_at_steady,
                    steady_frame, fds_at_last, frame_count);
    }
    send_note(peer, {100, 0, 0});
    EXPECT_EQ(wait_note(peer).message.step, 101U);
    for (auto& image : images) renderer->forget(image.image());
}

// The host's side: every frame imported once per image, its acquire fence waited on by the
// GPU, every pixel compared when `check_pixels`, released with the host's own fence.
void host_frames(Peer& peer, std::uint32_t frame_count, bool check_pixels) {
    auto app = open_app(check_pixels);
    ASSERT_TRUE(app);
    auto device = value_or_fail(Device::create(app->vk.handles()), "device");
    ASSERT_TRUE(device);
    auto importer = value_or_fail(Importer::create(*device), "importer");
    ASSERT_TRUE(importer);
    ImportListener listener(*importer);
    FrameReceiverOptions receiver_options;
    receiver_options.accepted_fence_kinds = app->fences.accepted_fence_kinds();
    auto receiver = value_or_fail(FrameReceiver::create(std::move(peer.frames), receiver_options), "receiver");
    ASSERT_TRUE(receiver);
    receiver->set_listener(&listener);
    std::uint64_t last = 0;
    std::uint64_t mismatches = 0;
    std::size_t fds_at_steady = 0;  // the same point of frames steady_frame and frame_count
    std::size_t fds_at_last = 0;
    for (std::uint32_t step = 1; step <= frame_count; ++step) {
        auto frame = value_or_fail(receiver->wait_for_frame(last, patience), "frame");
        ASSERT_TRUE(frame);
        last = frame->frame_number;
        ASSERT_EQ(frame->image_id, (step - 1) % image_count + 1);
        const ImportedImage* imported = listener.image(frame->image_id);
        ASSERT_NE(imported, nullptr);
        ASSERT_EQ(importer->size(), image_count) << "one import per image, each made when it was shared";
        PeerFence acquire;
        acquire.kind = receiver->acquire_fence_kind();
        acquire.fd = receiver->take_acquire_fence();
        EXPECT_EQ(acquire.kind, FenceKind::vulkan_opaque_semaphore);
        auto wait = value_or_fail(app->fences.wait_semaphore(std::move(acquire), patience), "acquire fence");
        auto signal = value_or_fail(app->fences.signal_semaphore(), "signal semaphore");
        ASSERT_TRUE(wait && signal);
        IdleFirst frame_idle{app->queue};
        if (check_pixels) {
            auto pixels = app->queue.download(imported->image, imported->extent, *wait, *signal);
            ASSERT_TRUE(pixels) << pixels.error().message;
            mismatches += testing::count_pattern_mismatches(*pixels, width, height, std::size_t{width} * 4, step);
        } else {
            ASSERT_TRUE(app->queue.submit(*wait, *signal, [&](VkCommandBuffer c) {
                barrier(c, imported->image, VK_IMAGE_LAYOUT_GENERAL, VK_QUEUE_FAMILY_EXTERNAL, app->queue.family(), 0,
                        VK_ACCESS_SHADER_READ_BIT);
                barrier(c, imported->image, VK_IMAGE_LAYOUT_GENERAL, app->queue.family(), VK_QUEUE_FAMILY_EXTERNAL,
                        VK_ACCESS_SHADER_READ_BIT, 0);
            }));
        }
        auto release = value_or_fail(app->fences.fence_for_peer(app->queue.queue(), *signal), "release fence");
        ASSERT_TRUE(release);
        ASSERT_TRUE(receiver->release(frame->image_id, release->borrow(), release->kind));
        ASSERT_TRUE(app->queue.wait_idle());
        if (check_pixels && step == steady_frame) fds_at_steady = open_fds();
        if (check_pixels && step == frame_count) fds_at_last = open_fds();
    }
    if (check_pixels) {
        EXPECT_EQ(mismatches, 0U) << "pixels differing from the pattern over " << frame_count << " frames";
        EXPECT_EQ(fds_at_last, fds_at_steady) << "host fds after frame " << steady_frame << " and after " << frame_count;
        std::printf("[measured] host: %u frames x %u pixels compared, %llu differ; %zu fds open after frame %u, "
                    "%zu after frame %u; %zu imports\n",
                    frame_count, width * height, static_cast<unsigned long long>(mismatches), fds_at_steady,
                    steady_frame, fds_at_last, frame_count, importer->size());
    }
    EXPECT_EQ(wait_note(peer).message.step, 100U);
    receiver.reset();
    EXPECT_EQ(importer->size(), 0U) << "a closed receiver leaves no imports behind";
    send_note(peer, {101, 0, 0});
}

class VulkanOpaqueLane : public testing::FdLeakTest {};

TEST_F(VulkanOpaqueLane, ComputeShaderFramesReachTheHostExactlyFor1000FramesWithoutLeaks) {
    run_pair([](Peer& peer) { render_frames(peer, frames, true); },
             [](Peer& peer) { host_frames(peer, frames, true); });
}

// The raw baseline: a 64-byte SOCK_SEQPACKET message carrying one fd each way per round
// trip, as present (acquire fence) and release (release fence) do; the receiver closes each
// fd it gets, as any correct user must. What texshare and the GPU add is the ratio's rest.
bool send_with_fd(int socket, int fd) {
    std::array<char, 64> bytes{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    iovec io{bytes.data(), bytes.size()};
    msghdr message{};
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(header), &fd, sizeof fd);
    return ::sendmsg(socket, &message, MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}
bool receive_and_close_fd(int socket) {
    std::array<char, 64> bytes{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    iovec io{bytes.data(), bytes.size()};
    msghdr message{};
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    if (::recvmsg(socket, &message, MSG_CMSG_CLOEXEC) != static_cast<ssize_t>(bytes.size())) return false;
    const cmsghdr* header = CMSG_FIRSTHDR(&message);
    if (header == nullptr || header->cmsg_type != SCM_RIGHTS) return false;
    int received = -1;
    std::memcpy(&received, CMSG_DATA(header), sizeof received);
    return ::close(received) == 0;
}

std::vector<double> raw_round_trips_us(std::uint32_t rounds) {
    std::vector<double> times;
    int sockets[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sockets) != 0) {
        ADD_FAILURE() << "socketpair";
        return times;
    }
    std::fflush(stdout);  // else the child repeats this process's unwritten output
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(sockets[0]);
        const int fd = ::eventfd(0, EFD_CLOEXEC);
        for (std::uint32_t i = 0; i < rounds; ++i) {
            if (!receive_and_close_fd(sockets[1]) || !send_with_fd(sockets[1], fd)) ::_exit(1);
        }
        ::_exit(0);
    }
    ::close(sockets[1]);
    const int fd = ::eventfd(0, EFD_CLOEXEC);
    for (std::uint32_t i = 0; i < rounds; ++i) {
        const auto started = Clock::now();
        if (!send_with_fd(sockets[0], fd) || !receive_and_close_fd(sockets[0])) {
            ADD_FAILURE() << "raw ping-pong broke at round " << i;
            break;
        }
        times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - started).count());
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    ::close(fd);
    ::close(sockets[0]);
    EXPECT_EQ(status, 0);
    return times;
}

double median(std::vector<double> values) {
    if (values.empty()) return 0;
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2), values.end());
    return values[values.size() / 2];
}
double percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    return values[std::min(values.size() - 1, static_cast<std::size_t>(p * static_cast<double>(values.size())))];
}

// What the host does with Vulkan per round trip, alone in one process with no socket:
// import the renderer's OPAQUE_FD semaphore, make and signal its own in a submit that waits
// on it, export that. Run in a child (the gtest process never loads the driver); its median
// comes back through a pipe. It explains most of the ratio: the driver's semaphore calls.
double host_vulkan_work_us(std::uint32_t rounds) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return 0;
    std::fflush(stdout);  // else the child repeats this process's unwritten output
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(pipe_fds[0]);
        double result = 0;
        if (auto app = open_app(false)) {
            std::vector<double> times;
            for (std::uint32_t i = 0; i < rounds; ++i) {
                auto first = app->fences.signal_semaphore();
                if (!first || !app->queue.submit(Semaphore{}, *first, [](VkCommandBuffer) {})) break;
                auto fence = app->fences.fence_for_peer(app->queue.queue(), *first);
                if (!fence) break;
                const auto started = Clock::now();
                auto wait = app->fences.wait_semaphore(std::move(*fence), patience);
                auto signal = app->fences.signal_semaphore();
                if (!wait || !signal || !app->queue.submit(*wait, *signal, [](VkCommandBuffer) {})) break;
                auto release = app->fences.fence_for_peer(app->queue.queue(), *signal);
                times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - started).count());
                if (!release || !app->queue.wait_idle()) break;
            }
            if (times.size() == rounds) result = median(times);
        }
        const bool written = ::write(pipe_fds[1], &result, sizeof result) == static_cast<ssize_t>(sizeof result);
        ::_exit(written && result > 0 ? 0 : 1);
    }
    ::close(pipe_fds[1]);
    double result = 0;
    EXPECT_EQ(::read(pipe_fds[0], &result, sizeof result), static_cast<ssize_t>(sizeof result));
    ::close(pipe_fds[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_EQ(status, 0) << "the Vulkan work probe failed";
    return result;
}

// Not a pass/fail on time (the ratio is reported, docs/gpu-lane.md): it fails only when a
// round trip breaks. Raw rounds before and after the frames, so drift shows.
TEST_F(VulkanOpaqueLane, RoundTripWithSemaphoresAgainstARawSocketPingPong) {
    constexpr std::uint32_t raw_rounds = 2000;
    constexpr std::uint32_t frame_rounds = 1000;
    const auto raw_before = raw_round_trips_us(raw_rounds);
    std::vector<double> frame_times;
    int pipe_fds[2];
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);  // the renderer's times come back through it
    run_pair(
        [&](Peer& peer) {
            std::vector<double> times;
            render_frames(peer, frame_rounds, false, &times);
            const auto bytes = static_cast<ssize_t>(times.size() * sizeof(double));
            EXPECT_EQ(::write(pipe_fds[1], times.data(), static_cast<std::size_t>(bytes)), bytes);
        },
        [](Peer& peer) { host_frames(peer, frame_rounds, false); });
    ::close(pipe_fds[1]);
    frame_times.resize(frame_rounds);
    const ssize_t got = ::read(pipe_fds[0], frame_times.data(), frame_times.size() * sizeof(double));
    ::close(pipe_fds[0]);
    ASSERT_GT(got, 0);
    frame_times.resize(static_cast<std::size_t>(got) / sizeof(double));
    const auto raw_after = raw_round_trips_us(raw_rounds);
    std::vector<double> raw = raw_before;
    raw.insert(raw.end(), raw_after.begin(), raw_after.end());
    const double raw_median = median(raw);
    const double frame_median = median(frame_times);
    std::printf("[measured] raw SOCK_SEQPACKET ping-pong, 1 fd each way: median %.1f us (before %.1f, after %.1f), "
                "p99 %.1f us, %zu rounds\n",
                raw_median, median(raw_before), median(raw_after), percentile(raw, 0.99), raw.size());
    std::printf("[measured] present -> release round trip, OPAQUE_FD semaphores and a GPU submit each way: median "
                "%.1f us, p99 %.1f us, %zu rounds\n",
                frame_median, percentile(frame_times, 0.99), frame_times.size());
    std::printf("[measured] ratio to raw: %.2fx\n", raw_median > 0 ? frame_median / raw_median : 0.0);
    const double vulkan_us = host_vulkan_work_us(frame_rounds);
    std::printf("[measured] the host's Vulkan work per round alone (OPAQUE_FD import, create, submit, export; one "
                "process, no socket): median %.1f us = %.0f%% of the round trip\n",
                vulkan_us, frame_median > 0 ? 100.0 * vulkan_us / frame_median : 0.0);
    EXPECT_GT(frame_times.size(), frame_rounds / 2);
}

}  // namespace
}  // namespace texshare::vulkan
