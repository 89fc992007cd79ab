#include "first_share.hpp"

#include <sys/socket.h>

#include <array>

#include <benchmark/benchmark.h>

#include "gbench.hpp"
#include "harness.hpp"
#include "raw_socket.hpp"
#include "texshare/image_wire.hpp"

namespace bench {

using namespace texshare;

namespace {
// An ImageChannel message on the wire: header, slot mask, descriptor.
constexpr std::size_t image_wire_bytes = 2 * sizeof(std::uint32_t) + (max_planes + 7) / 8 + sizeof(ImageDescriptor);

void raw_share(benchmark::State& state, const DmaBufImage* image) {
    auto [sender, receiver] = socket_pair(SOCK_SEQPACKET);
    std::array<std::byte, image_wire_bytes> bytes{};
    std::vector<int> fds;
    for (std::size_t i = 0; i < max_planes; ++i) {
        if (image->plane_fd(i).valid()) fds.push_back(image->plane_fd(i).get());
    }
    for (auto _ : state) {
        raw_send(sender.get(), bytes, fds);
        benchmark::DoNotOptimize(raw_receive(receiver.get(), bytes));
    }
}

void texshare_share(benchmark::State& state, const DmaBufImage* image) {
    auto [sender, receiver] = must(ImageChannel::create_pair(), "ImageChannel::create_pair");
    for (auto _ : state) {
        must(send_image(sender, 1, *image), "send_image");
        auto received = receive_image(receiver);
        if (!received) fail(fmt::format("receive_image: {}", received.error().message));
        benchmark::DoNotOptimize(received->image);
    }  // the received image, and with it its fds, is closed at the end of each iteration
}

std::size_t fd_count(const DmaBufImage& image) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < max_planes; ++i) count += image.plane_fd(i).valid() ? 1 : 0;
    return count;
}
}  // namespace

std::vector<Row> measure_first_share(const std::vector<FirstShareCase>& cases, int repetitions, double min_time) {
    for (const FirstShareCase& c : cases) {
        benchmark::RegisterBenchmark(("raw/" + c.label).c_str(), raw_share, c.image);
        benchmark::RegisterBenchmark(("texshare/" + c.label).c_str(), texshare_share, c.image);
    }
    auto medians = run_registered_benchmarks(repetitions, min_time);
    std::vector<Row> rows;
    for (const FirstShareCase& c : cases) {
        const double raw = medians.at("raw/" + c.label);
        const double shared = medians.at("texshare/" + c.label);
        const std::size_t fds = fd_count(*c.image);
        rows.push_back({fmt::format("raw sendmsg + recvmsg of {} fd{} ({} B message), fds closed", fds,
                                    fds == 1 ? "" : "s", image_wire_bytes),
                        format_seconds(raw), 1.0, "", {}});
        rows.push_back({fmt::format("texshare send_image + receive_image, {} (validated), image closed", c.label),
                        format_seconds(shared), shared / raw, "of raw", Target{1.5, true}});
    }
    return rows;
}

}  // namespace bench
