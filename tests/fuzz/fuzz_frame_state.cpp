// Fuzz target: the frame protocol's state machine. The input is a script of steps, each
// either a raw message from a hostile peer (to a FrameReceiver or to a FrameSender) or a
// call of the endpoint's own API; after every step the endpoints are dispatched and their
// invariants checked. Errors are expected; crashes, broken invariants and leaks are not.
// One invariant is that a refusal leaves no trace: a call that fails, and a message refused
// as a protocol error, leave the endpoint's whole state summary (support/frame_state.hpp)
// as it was.
//   input: a sequence of steps: u8 op | u8 id | u8 arg (op % 24; 16..23 are protocol 2's:
//   present metadata, begin_frame both ways, presented, feedback, a second hello)
#include <sys/socket.h>

#include <optional>
#include <type_traits>

#include "fuzz/fuzz_support.hpp"
#include "support/frame_state.hpp"
#include "support/raw_peer.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/memfd_allocator.hpp"

using namespace texshare;

namespace {

// A victim endpoint and the raw socket of the peer attacking it.
template <typename Endpoint>
struct Arena {
    int attacker = -1;
    std::optional<Endpoint> endpoint;

    Arena() {
        int ends[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0) std::abort();
        attacker = ends[0];
        // Both fence kinds accepted, so that an OPAQUE_FD fence's checks and its close are fuzzed too.
        typename Endpoint::Options options;
        options.accepted_fence_kinds = FenceKind::sync_file | FenceKind::vulkan_opaque_semaphore;
        if constexpr (std::is_same_v<Endpoint, FrameSender>) options.paced = true;  // begin_frame is fuzzed too
        auto created = Endpoint::create(*FrameChannel::adopt(UniqueFd(ends[1])), options);
        if (!created) std::abort();
        endpoint.emplace(std::move(*created));
        // The attacker's hello, with pacing and feedback, so that every protocol 2 rule is reachable.
        const HelloRole role = std::is_same_v<Endpoint, FrameSender> ? HelloRole::consumer : HelloRole::producer;
        send_message(make_hello_message(role, hello_feature_pacing | hello_feature_feedback));
        if (!endpoint->dispatch()) std::abort();
    }
    // A message as it is, without fds.
    void send_message(const FrameMessage& message) {
        const auto bytes = testing::frame_bytes(message, aux_channel_magic, sizeof(FrameMessage), {std::uint8_t{0}});
        (void)testing::raw_send(attacker, bytes, std::span<const int>(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    ~Arena() {
        endpoint.reset();
        ::close(attacker);
    }

    void send(FrameKind kind, std::uint64_t id, std::uint64_t frame, std::uint8_t arg,
              const FrameMessage* payload_from = nullptr) {
        FrameMessage message = make_frame_message(kind, id, frame);
        if (payload_from != nullptr) message.payload = payload_from->payload;
        int fds[2] = {-1, -1};
        std::uint8_t mask = 0;
        int count = 0;
        if (kind == FrameKind::add_image) {
            const std::uint32_t side = 1 + arg % 32;
            ImageDescriptor d{};
            d.backing = static_cast<std::uint8_t>(Backing::shared_memory);
            d.fd_plane_mask = 1;
            d.image_id = id;
            d.width = d.height = side;
            d.fourcc = DRM_FORMAT_ARGB8888;
            d.plane_count = 1;
            d.planes[0].stride = side * 4;
            message.set_descriptor(d);
            fds[count++] = fuzz::make_fd(arg >> 5, side * side * 4);
            mask = 1;
        } else if ((arg & 1) != 0) {  // a fence, on kinds that may or may not carry one
            // bits 1-2: the fd (a pipe, an eventfd, /dev/null, a memfd); bits 3-4: the fence
            // kind it claims (none, sync_file, vulkan_opaque_semaphore, unknown).
            constexpr std::uint8_t fd_kinds[4] = {3, 4, 5, 0};
            fds[count++] = fuzz::make_fd(fd_kinds[(arg >> 1) & 3], 0);
            mask = 1 << frame_fence_slot;
            message.fence_kind = static_cast<std::uint8_t>((arg >> 3) & 3);
        } else {
            message.fence_kind = static_cast<std::uint8_t>((arg >> 3) & 3);  // a kind without an fd
        }
        const auto bytes = testing::frame_bytes(message, aux_channel_magic, sizeof(FrameMessage), {mask});
        (void)testing::raw_send(attacker, bytes, std::span<const int>(fds, static_cast<std::size_t>(count)),
                                MSG_NOSIGNAL | MSG_DONTWAIT);
        for (int i = 0; i < count; ++i) ::close(fds[i]);
    }

    // Drains what the endpoint sent to the attacker, so its buffer does not fill (unless the
    // script says to stop reading).
    void read_replies() {
        std::byte buffer[512];
        alignas(cmsghdr) std::byte control[256];
        while (true) {
            iovec io{buffer, sizeof buffer};
            msghdr header{};
            header.msg_iov = &io;
            header.msg_iovlen = 1;
            header.msg_control = control;
            header.msg_controllen = sizeof control;
            if (::recvmsg(attacker, &header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0) return;
            for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
                const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (std::size_t i = 0; i < n; ++i) {
                    int fd;
                    std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                    ::close(fd);
                }
            }
        }
    }
};

DmaBufImage small_image() {
    auto image = MemfdAllocator().allocate(4, 4, DRM_FORMAT_ARGB8888);
    if (!image) std::abort();
    return std::move(*image);
}

void check(bool invariant, const char* what) {
    if (!invariant) {
        std::fprintf(stderr, "invariant broken: %s\n", what);
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::LeakCheck leak_check;
    fuzz::Input input(data, size);
    Arena<FrameReceiver> consumer;  // attacked by a hostile producer
    Arena<FrameSender> producer;    // attacked by a hostile consumer
    std::uint64_t frame = 0;
    bool read_replies = true;
    bool consumer_drained = true, producer_drained = true;  // its last dispatch handled all pending
    for (int step = 0; step < 256 && !input.empty(); ++step) {
        const auto op = input.take<std::uint8_t>();
        const auto raw_id = input.take<std::uint8_t>();
        const auto arg = input.take<std::uint8_t>();
        // Small ids collide often; the top bit of raw_id moves it into the consumer's space.
        const std::uint64_t id = (raw_id & 0x0f) | ((raw_id & 0x80) != 0 ? consumer_image_id_bit : 0);
        frame = (arg & 0x80) != 0 ? frame - (arg & 3) : frame + (arg & 3);
        std::string consumer_before = testing::state_of(*consumer.endpoint);
        std::string producer_before = testing::state_of(*producer.endpoint);
        const auto unless_refused = [](const auto& result, const auto& endpoint, const std::string& before) {
            if (!result) check(testing::state_of(endpoint) == before, "a refused call left no trace");
        };
        bool to_consumer = false, to_producer = false;
        switch (op % 24) {
            case 0: consumer.send(FrameKind::add_image, id, 0, arg); to_consumer = true; break;
            case 1: consumer.send(FrameKind::present, id, frame, arg); to_consumer = true; break;
            case 2: consumer.send(FrameKind::retire, id, 0, arg); to_consumer = true; break;
            case 3: consumer.send(FrameKind::retired, id, 0, arg); to_consumer = true; break;
            case 4: consumer.send(static_cast<FrameKind>(arg % 16), id, arg, arg); to_consumer = true; break;
            case 5: unless_refused(consumer.endpoint->add_image(small_image()), *consumer.endpoint, consumer_before); break;
            case 6: unless_refused(consumer.endpoint->release(id), *consumer.endpoint, consumer_before); break;
            case 7: unless_refused(consumer.endpoint->retire(id), *consumer.endpoint, consumer_before); break;
            case 8: producer.send(FrameKind::release, id, 0, arg); to_producer = true; break;
            case 9: producer.send(static_cast<FrameKind>(arg % 16), id, 0, arg); to_producer = true; break;
            case 10: unless_refused(producer.endpoint->add_image(small_image()), *producer.endpoint, producer_before); break;
            case 11: {
                auto free_image = producer.endpoint->acquire_free_image();  // takes its fence: a change
                producer_before = testing::state_of(*producer.endpoint);
                unless_refused(producer.endpoint->present(free_image ? free_image->id : id), *producer.endpoint,
                               producer_before);
                break;
            }
            case 12: unless_refused(producer.endpoint->retire(id), *producer.endpoint, producer_before); break;
            case 13: (void)producer.endpoint->take_release_fence(id); break;
            case 14: read_replies = !read_replies; break;
            case 15: (void)consumer.endpoint->take_acquire_fence(); break;
            // protocol 2: metadata, pacing, feedback, a second hello
            case 16: {  // a present with metadata: arg picks damage, flags, begin_frame sequence
                FrameMessage with = make_frame_message(FrameKind::present, id, frame);
                PresentMetadata metadata;
                metadata.begin_frame_sequence = arg >> 5U;
                metadata.flags = (arg >> 4U) & 1U;
                metadata.damage_count = arg & 0x0fU;
                for (std::uint32_t i = 0; i < 8; ++i) {
                    metadata.damage[i] = {i * (arg & 3U), i, 1U + (arg >> 6U), 1U};
                }
                with.set_payload(metadata);
                consumer.send(FrameKind::present, id, frame, arg, &with);
                to_consumer = true;
                break;
            }
            case 17: {
                auto sent = consumer.endpoint->begin_frame((arg & 0x80) != 0 ? 0 : 1000 + step, 16'666'667);
                unless_refused(sent, *consumer.endpoint, consumer_before);
                break;
            }
            case 18: unless_refused(consumer.endpoint->presented(arg & 0x7f, arg >> 6U), *consumer.endpoint, consumer_before); break;
            case 19: {
                FrameMessage with = make_frame_message(FrameKind::begin_frame, 0);
                with.set_payload(BeginFrame{arg & 0x3fU, (arg & 0x40) != 0 ? 0 : 5000, 1});
                producer.send(FrameKind::begin_frame, 0, 0, arg, &with);
                to_producer = true;
                break;
            }
            case 20: {  // presented or discarded, fields from arg
                const FrameKind kind = (arg & 1) != 0 ? FrameKind::discarded : FrameKind::presented;
                FrameMessage with = make_frame_message(kind, id, frame);
                with.set_payload(PresentationFeedback{(arg & 2) != 0 ? 0 : 7, (arg >> 2) & 3U, (arg >> 4) & 3U,
                                                      (arg >> 6) & 1U});
                producer.send(kind, id, frame, arg & 0x80, &with);
                to_producer = true;
                break;
            }
            case 21: {
                auto free_image = producer.endpoint->acquire_free_image();
                producer_before = testing::state_of(*producer.endpoint);
                const DamageRect rect{arg & 3U, (arg >> 2U) & 3U, 1U + ((arg >> 4U) & 3U), 1U + (arg >> 6U)};
                PresentInfo info;
                info.damage = {&rect, 1};
                info.flags = (arg & 0x80) != 0 ? present_flag_opaque : 0;
                unless_refused(producer.endpoint->present(free_image ? free_image->id : id, info), *producer.endpoint,
                               producer_before);
                break;
            }
            case 22: (void)producer.endpoint->take_feedback(); break;
            case 23:
                if ((arg & 1) != 0) {
                    consumer.send_message(make_hello_message(HelloRole::producer, arg >> 1U));
                    to_consumer = true;
                } else {
                    producer.send_message(make_hello_message(HelloRole::consumer, arg >> 1U));
                    to_producer = true;
                }
                break;
        }
        // A protocol error for the one message this step sent (nothing else was pending):
        // it changed nothing. (Errc::truncated and a quota's Errc::rejected report messages
        // that took effect.)
        auto consumer_handled = consumer.endpoint->dispatch();
        if (to_consumer && consumer_drained && !consumer_handled && consumer_handled.error().code == Errc::protocol) {
            check(testing::state_of(*consumer.endpoint) == consumer_before, "a refused message left no trace (consumer)");
        }
        consumer_drained = consumer_handled.has_value();
        auto producer_handled = producer.endpoint->dispatch();
        if (to_producer && producer_drained && !producer_handled && producer_handled.error().code == Errc::protocol) {
            check(testing::state_of(*producer.endpoint) == producer_before, "a refused message left no trace (producer)");
        }
        producer_drained = producer_handled.has_value();
        if (read_replies) {
            consumer.read_replies();
            producer.read_replies();
        }
        check(consumer.endpoint->image_count() <= max_frame_images, "consumer table size");
        check(producer.endpoint->image_count() <= max_frame_images, "producer table size");
        // Each side's quota of the peer's images (half the table by default): the ids the
        // script can reach are 1..15 in either space.
        std::size_t producer_images = 0, consumer_images = 0;
        for (std::uint64_t n = 1; n < 16; ++n) {
            producer_images += consumer.endpoint->image(n) != nullptr && !consumer.endpoint->is_local(n);
            consumer_images += producer.endpoint->image(n | consumer_image_id_bit) != nullptr &&
                               !producer.endpoint->is_local(n | consumer_image_id_bit);
        }
        check(producer_images <= max_frame_images / 2, "the producer's images within its quota");
        check(consumer_images <= max_frame_images / 2, "the consumer's images within its quota");
        if (auto current = consumer.endpoint->current()) {
            check(consumer.endpoint->image(current->image_id) == current->image.get() && current->image, "current frame is in the table");
            check(consumer.endpoint->state(current->image_id) == FrameImageState::presented, "current is held");
        }
    }
    return 0;
}
