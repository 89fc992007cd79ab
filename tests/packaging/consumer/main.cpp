// Shares one memfd image over a socketpair and checks it arrived: proof that the package
// links and works, not a test of texshare's behaviour (the unit tests do that).
#include <texshare/texshare.hpp>

#include <cstdio>

int main() {
    auto channels = texshare::ImageChannel::create_pair();
    auto image = texshare::MemfdAllocator().allocate(64, 64, DRM_FORMAT_ARGB8888);
    if (!channels || !image) return 1;
    if (auto sent = texshare::send_image(channels->first, 1, *image); !sent) {
        fmt::print(stderr, "{}\n", sent.error());
        return 1;
    }
    auto received = texshare::receive_image(channels->second);
    if (!received) {
        fmt::print(stderr, "{}\n", received.error());
        return 1;
    }
    std::printf("consumer: received image %llu, %s\n", static_cast<unsigned long long>(received->id),
                texshare::format_name(received->image.fourcc()).c_str());
    return 0;
}
