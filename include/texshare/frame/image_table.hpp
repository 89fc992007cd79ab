// The table of images a frame endpoint tracks, and FrameImage, a checked view of one.
//
// Each FrameSender and FrameReceiver owns one table: a fixed array of max_frame_images
// slots (the per-frame path never allocates), keyed by image id, holding each image with
// its state and who added it, and telling the listener of every image that enters or
// leaves. The table knows nothing of sockets: the endpoint decides, the table records.
// Applications meet it only through FrameImage (FrameReceiver::Frame::image).
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <utility>

#include "texshare/detail/fence_probe.hpp"
#include "texshare/frame/image_listener.hpp"
#include "texshare/frame/messages.hpp"

namespace texshare {

// free: the producer may render into it; presented: the consumer holds it; retiring: on
// its way out (see retire()).
enum class FrameImageState { free, presented, retiring };

namespace detail {

// Reads an endpoint's private state for tests (a comparable summary: a refused message must
// leave it as it was). Declared here, defined by the tests (tests/support/frame_state.hpp).
struct FrameStateProbe;

struct FrameSlot {
    std::uint64_t id = 0;  // 0: empty slot
    DmaBufImage image;
    bool local = false;     // this side allocated it
    bool unshared = false;  // local, and the current peer does not have it (not told yet, or it refused it)
    bool refused = false;   // local, and the current peer refused it (its fds did not arrive)
    FrameImageState state = FrameImageState::free;
    std::uint64_t last_frame = 0;      // the frame it was last presented as
    UniqueFd fence;                    // producer: the release fence that came back
    FenceKind fence_kind = FenceKind::none;  // what `fence` is (none while it and fence_point are empty)
    std::uint64_t fence_point = 0;     // producer: the release point that came back (drm_syncobj_timeline)
    bool held_while_retiring = false;  // retired (by the producer) while the consumer held it
    bool awaiting_feedback = false;    // producer: its last present awaits presented or discarded
    std::uint64_t begin_frame_sequence = 0;  // producer: the begin_frame its last present answered
    std::uint32_t generation = 0;      // counts the images this slot has held (FrameImage checks it)
};

}  // namespace detail

// A view of one image in a FrameReceiver's table, as FrameReceiver::Frame hands it out.
// It stays usable while the image stays in the table (through later frames, even); once
// the image leaves (retired, the producer gone, the receiver closed) using it aborts with
// a message naming the image, instead of reading a destroyed image. get() says whether it
// is still there without aborting. It must not outlive the receiver itself (moving the
// receiver is fine: the table does not move).
class FrameImage {
public:
    FrameImage() = default;

    const DmaBufImage* get() const noexcept {
        return slot_ != nullptr && slot_->generation == generation_ && slot_->id == id_ ? &slot_->image : nullptr;
    }
    explicit operator bool() const noexcept { return get() != nullptr; }
    const DmaBufImage& operator*() const { return *checked(); }
    const DmaBufImage* operator->() const { return checked(); }
    std::uint64_t id() const noexcept { return id_; }

private:
    friend class FrameReceiver;
    explicit FrameImage(const detail::FrameSlot& slot) noexcept
        : slot_(&slot), id_(slot.id), generation_(slot.generation) {}

    const DmaBufImage* checked() const {
        const DmaBufImage* image = get();
        if (image == nullptr) {
            std::fprintf(stderr,
                         "texshare: FrameImage of image %llu used after the image left the receiver "
                         "(retired, its producer gone, or never set)\n",
                         static_cast<unsigned long long>(id_));
            std::abort();
        }
        return image;
    }

    const detail::FrameSlot* slot_ = nullptr;
    std::uint64_t id_ = 0;
    std::uint32_t generation_ = 0;
};

namespace detail {

class FrameImageTable {
public:
    enum class Side { producer, consumer };

    explicit FrameImageTable(Side side)
        : slots_(std::make_unique<std::array<FrameSlot, max_frame_images>>()), side_(side) {}
    FrameImageTable(FrameImageTable&& other) noexcept
        : slots_(std::move(other.slots_)),
          listener_(std::exchange(other.listener_, nullptr)),
          side_(other.side_),
          next_id_(other.next_id_),
          used_(std::exchange(other.used_, 0)),
          refused_(other.refused_),
          refused_next_(other.refused_next_),
          peer_quota_(other.peer_quota_) {}
    FrameImageTable& operator=(FrameImageTable&& other) noexcept {
        if (this != &other) {
            clear();
            slots_ = std::move(other.slots_);
            listener_ = std::exchange(other.listener_, nullptr);
            side_ = other.side_;
            next_id_ = other.next_id_;
            refused_ = other.refused_;
            refused_next_ = other.refused_next_;
            peer_quota_ = other.peer_quota_;
            used_ = std::exchange(other.used_, 0);
        }
        return *this;
    }
    ~FrameImageTable() { clear(); }

    // Not owned; must outlive the table or be unset (nullptr) first.
    void set_listener(FrameImageListener* listener) noexcept { listener_ = listener; }
    FrameImageListener* listener() const noexcept { return listener_; }

    // Every slot that ever held an image, empty ones included (none for a moved-from
    // table): the slots past the highest ever used are never looked at, so a swapchain of
    // two images costs two slots per lookup, not max_frame_images.
    std::span<FrameSlot> slots() noexcept {
        return slots_ ? std::span<FrameSlot>(slots_->data(), used_) : std::span<FrameSlot>();
    }
    std::span<const FrameSlot> slots() const noexcept {
        return slots_ ? std::span<const FrameSlot>(slots_->data(), used_) : std::span<const FrameSlot>();
    }
    FrameSlot* find(std::uint64_t id) noexcept {
        if (id == 0) return nullptr;
        for (FrameSlot& slot : slots()) {
            if (slot.id == id) return &slot;
        }
        return nullptr;
    }
    const FrameSlot* find(std::uint64_t id) const noexcept { return const_cast<FrameImageTable*>(this)->find(id); }
    // What both endpoints answer about an id (FrameSender/FrameReceiver::image, state, is_local).
    const DmaBufImage* image(std::uint64_t id) const noexcept {
        const FrameSlot* slot = find(id);
        return slot != nullptr ? &slot->image : nullptr;
    }
    std::optional<FrameImageState> state(std::uint64_t id) const noexcept {
        const FrameSlot* slot = find(id);
        return slot != nullptr ? std::optional(slot->state) : std::nullopt;
    }
    bool is_local(std::uint64_t id) const noexcept {
        const FrameSlot* slot = find(id);
        return slot != nullptr && slot->local;
    }
    std::size_t count() const noexcept {
        std::size_t count = 0;
        for (const FrameSlot& slot : slots()) count += slot.id != 0 ? 1 : 0;
        return count;
    }
    std::size_t index_of(const FrameSlot& slot) const noexcept {
        return static_cast<std::size_t>(&slot - slots_->data());
    }
    FrameSlot& operator[](std::size_t index) noexcept { return (*slots_)[index]; }
    const FrameSlot& operator[](std::size_t index) const noexcept { return (*slots_)[index]; }

    const char* peer_name() const noexcept { return side_ == Side::producer ? "consumer" : "producer"; }

    // How many images the peer may add to this table (0: none), so that it can never take
    // the slots of this side's own images. The endpoint's option sets it (its name is in the
    // refusal); at most max_frame_images.
    void set_peer_quota(std::size_t quota) noexcept { peer_quota_ = std::min(quota, max_frame_images); }
    std::size_t peer_quota() const noexcept { return peer_quota_; }
    const char* peer_quota_option() const noexcept {
        return side_ == Side::consumer ? "FrameReceiverOptions::max_producer_images"
                                       : "FrameSenderOptions::max_consumer_images";
    }
    // The images the current peer added. A dead producer's kept frame (retained_image_id)
    // is nobody's now and does not count: a new producer must be able to add the image
    // whose present releases it.
    std::size_t peer_count() const noexcept {
        std::size_t count = 0;
        for (const FrameSlot& slot : slots()) {
            count += slot.id != 0 && !slot.local && slot.id != retained_image_id ? 1 : 0;
        }
        return count;
    }

    // The id the next local image gets, once the caller has a slot and the listener's
    // consent (reserve_local); Errc::invalid_argument for an empty image or a full table.
    Result<std::uint64_t> reserve_local(const DmaBufImage& image) {
        if (image.empty()) return make_error(Errc::invalid_argument, "add_image: the image is empty");
        if (empty_slot() == nullptr) {
            return make_error(Errc::invalid_argument, "add_image: all {} image slots are in use; retire one first",
                              max_frame_images);
        }
        const std::uint64_t id = id_space(side_) | next_id_;
        if (listener_ != nullptr) {
            if (auto accepted = listener_->image_added(id, image, false); !accepted) return accepted.error();
        }
        return id;
    }
    // The reserved image could not be shared: the listener forgets it again.
    void unreserve(std::uint64_t id) noexcept {
        if (listener_ != nullptr) listener_->image_removed(id);
    }
    // Takes the reserved image (shared: whether the peer has been told of it).
    FrameSlot& insert_local(std::uint64_t id, DmaBufImage&& image, bool shared) noexcept {
        FrameSlot& slot = *empty_slot();  // reserve_local checked there is one
        ++next_id_;
        fill(slot, id, std::move(image));
        slot.local = true;
        slot.unshared = !shared;
        return slot;
    }

    // add_image from the peer, before its fds are looked at: an id from the peer's space and
    // not in use. Errc::protocol otherwise, naming the id.
    Result<void> check_peer_id(std::uint64_t id) const {
        const Side peer = side_ == Side::producer ? Side::consumer : Side::producer;
        const bool in_use = find(id) != nullptr;
        if (id == 0 || (id & consumer_image_id_bit) != id_space(peer) || id == retained_image_id || in_use) {
            return make_error(Errc::protocol, "add_image from the {} with image id {}, which is {}", peer_name(), id,
                              in_use ? "already in use" : "not in the peer's id space");
        }
        return {};
    }
    // Then whether there is room for it: the peer below its quota, and a free slot.
    // Errc::rejected otherwise, naming the quota and the counts (a policy, not a broken peer:
    // the endpoint tells the peer `refused`).
    Result<void> check_peer_room(std::uint64_t id) const {
        const std::size_t peer_images = peer_count();
        if (peer_images >= peer_quota_) {
            return make_error(Errc::rejected,
                              "add_image of image {}: the {} already has {} images here, "
                              "its quota ({}) is {}",
                              id, peer_name(), peer_images, peer_quota_option(), peer_quota_);
        }
        if (const_cast<FrameImageTable*>(this)->empty_slot() == nullptr) {
            return make_error(Errc::rejected,
                              "add_image of image {}: all {} image slots are in use ({} of them the {}'s)",
                              id, max_frame_images, peer_images, peer_name());
        }
        return {};
    }
    // Takes a peer's image that passed check_peer_id(), check_peer_room() and import_image(),
    // if the listener accepts it (Errc::rejected otherwise; nothing changes).
    Result<void> insert_peer(std::uint64_t id, DmaBufImage&& image) {
        if (listener_ != nullptr) {
            if (auto accepted = listener_->image_added(id, image, true); !accepted) {
                return make_error(Errc::rejected, "image {} from the {}: refused by the listener: {}", id, peer_name(),
                                  accepted.error().message);
            }
        }
        fill(*empty_slot(), id, std::move(image));
        return {};
    }

    // Peer images this side refused because their fds did not arrive (MSG_CTRUNC): a later
    // present or retire of one is answered, not blamed on the peer. A small ring: ids are
    // never reused, and the peer hears of the refusal within a message or two.
    void remember_refused(std::uint64_t id) noexcept {
        refused_[refused_next_] = id;
        refused_next_ = (refused_next_ + 1) % refused_.size();
    }
    bool was_refused(std::uint64_t id) const noexcept {
        for (std::uint64_t refused : refused_) {
            if (refused == id && id != 0) return true;
        }
        return false;
    }
    void forget_refused(std::uint64_t id) noexcept {
        for (std::uint64_t& refused : refused_) {
            if (refused == id) refused = 0;
        }
    }

    void drop(FrameSlot& slot) noexcept {
        if (slot.id == 0) return;
        if (listener_ != nullptr) listener_->image_removed(slot.id);
        if (slot.fence.valid()) drop_fence(slot.fence, slot.fence_kind);
        const std::uint32_t generation = slot.generation + 1;
        slot = FrameSlot{};
        slot.generation = generation;
    }

    void rename(FrameSlot& slot, std::uint64_t id) noexcept {
        const std::uint64_t old_id = std::exchange(slot.id, id);
        if (listener_ != nullptr) listener_->image_renamed(old_id, id);
    }

    // The peer is gone: its images go; local ones stay, free again and to be shared with
    // the next peer. The slot at index `keep` (if any) is left exactly as it is. Returns
    // how many local images the peer held (now reclaimed).
    std::size_t forget_peer(std::size_t keep = max_frame_images) noexcept {
        std::size_t reclaimed = 0;
        for (FrameSlot& slot : slots()) {
            if (slot.id == 0 || index_of(slot) == keep) continue;
            if (!slot.local || slot.state == FrameImageState::retiring) {
                drop(slot);  // a retiring image was going anyway, and nobody can answer `retired` now
                continue;
            }
            if (slot.state == FrameImageState::presented) ++reclaimed;
            slot.state = FrameImageState::free;
            slot.unshared = true;
            slot.refused = false;
            slot.held_while_retiring = false;
            slot.awaiting_feedback = false;  // nobody is left to answer
        }
        refused_ = {};
        return reclaimed;
    }

    void clear() noexcept {
        for (FrameSlot& slot : slots()) drop(slot);
    }

private:
    static std::uint64_t id_space(Side side) noexcept { return side == Side::consumer ? consumer_image_id_bit : 0; }

    FrameSlot* empty_slot() noexcept {
        if (!slots_) return nullptr;
        for (FrameSlot& slot : *slots_) {
            if (slot.id == 0) return &slot;
        }
        return nullptr;
    }

    void fill(FrameSlot& slot, std::uint64_t id, DmaBufImage&& image) noexcept {
        used_ = std::max(used_, index_of(slot) + 1);
        const std::uint32_t generation = slot.generation;
        slot = FrameSlot{};
        slot.id = id;
        slot.image = std::move(image);
        slot.generation = generation;
    }

    // On the heap so that FrameImage views stay valid when the endpoint is moved.
    std::unique_ptr<std::array<FrameSlot, max_frame_images>> slots_;
    FrameImageListener* listener_ = nullptr;
    Side side_ = Side::producer;
    std::uint64_t next_id_ = 1;
    std::size_t used_ = 0;  // slots ever filled: [0, used_)
    std::array<std::uint64_t, 4> refused_{};
    std::size_t refused_next_ = 0;
    std::size_t peer_quota_ = max_frame_images;

    friend struct FrameStateProbe;
};

}  // namespace detail
}  // namespace texshare
