// Test support: a comparable summary of a frame endpoint's whole state (counters, frame
// numbers, the current frame, every slot's id, state, generation, ownership, fence and
// sharing, the refused ids, the quota), read through detail::FrameStateProbe, the one
// friend the endpoints grant tests. A refused message or a failed call must leave it equal.
// One line per field group, so that gtest's diff of two summaries names what moved.
#pragma once

#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "texshare/frame/protocol.hpp"

namespace texshare::detail {

struct FrameStateProbe {
    static std::string table(const FrameImageTable& table) {
        std::string out = fmt::format("table: next id {}, used {}, peer quota {}, refused [{}] next {}\n",
                                      table.next_id_, table.used_, table.peer_quota_,
                                      fmt::join(table.refused_, " "), table.refused_next_);
        for (const FrameSlot& slot : table.slots()) {
            out += fmt::format(
                "slot {}: id {:x} gen {} {} state {} last frame {} fence {} ({}) point {} held-while-retiring {} "
                "unshared {} refused {} image {}x{} fd {} awaiting feedback {} begin {}\n",
                table.index_of(slot), slot.id, slot.generation, slot.local ? "local" : "peer's",
                static_cast<int>(slot.state), slot.last_frame, slot.fence.valid() ? slot.fence.get() : -1,
                to_string(slot.fence_kind), slot.fence_point, slot.held_while_retiring, slot.unshared, slot.refused,
                slot.image.width(), slot.image.height(), slot.image.empty() ? -1 : slot.image.plane_fd(0).get(),
                slot.awaiting_feedback, slot.begin_frame_sequence);
        }
        return out;
    }
    static std::string link(const FrameLink& link) {
        return fmt::format("link: open {}, greeted {}, features {:x}, peer {}.{}\n", link.is_open(), link.greeted(),
                           link.features(), link.peer_hello().major, link.peer_hello().minor);
    }
    static std::string timelines(const FrameTimelines& t) {
        return fmt::format("timelines: own fd {} sent {} point {}, peer fd {} point {}\n",
                           t.own().valid() ? t.own().get() : -1, t.own_sent(), t.own_point(),
                           t.peer().valid() ? t.peer().get() : -1, t.peer_point());
    }

    static std::string summary(const FrameSender& s) {
        return fmt::format(
                   "producer: next frame {}, presented {}, released {}, reclaimed {}, peer formats {}, "
                   "formats changed {}\n"
                   "pacing: paced {}, offered {:x}, latest begin {} at {} every {}, pending {}, begins {}, skipped {}; "
                   "feedback: head {} count {} dropped {}\n",
                   s.next_frame_, s.presented_, s.released_, s.reclaimed_, s.peer_formats_.has_value(),
                   s.formats_changed_, s.paced_, s.offered_, s.latest_begin_.sequence, s.latest_begin_.target_time_ns,
                   s.latest_begin_.interval_ns, s.begin_pending_, s.begin_frames_, s.begin_frames_skipped_,
                   s.feedback_head_, s.feedback_count_, s.feedback_dropped_) +
               link(s.link_) + timelines(s.timelines_) + table(s.table_);
    }
    static std::string summary(const FrameReceiver& r) {
        return fmt::format(
                   "consumer: current slot {}, current frame {}, live {}, last frame {}, acquire fence {} ({}) "
                   "point {}, received {}, skipped {}, advertised {}\n"
                   "current metadata: begin {} time {} flags {:x} damage {}; answered {}; begin sent {} answered {}; "
                   "presented {} discarded {}; damage of {}x{} pending {}\n",
                   r.current_, r.current_frame_, r.current_live_, r.last_frame_,
                   r.acquire_fence_.valid() ? r.acquire_fence_.get() : -1, to_string(r.acquire_fence_kind_),
                   r.acquire_point_, r.received_, r.skipped_, r.advertised_.has_value(),
                   r.current_metadata_.begin_frame_sequence, r.current_metadata_.content_time_ns,
                   r.current_metadata_.flags, r.current_metadata_.damage_count, r.current_answered_, r.begin_sent_,
                   r.begin_answered_, r.presented_, r.discarded_, r.unshown_width_, r.unshown_height_,
                   r.unshown_pending_) +
               link(r.link_) + timelines(r.timelines_) + table(r.table_);
    }
    // Whether the link thinks its peer hung up (a failed send records that: it is a fact
    // learned, not a change the call made, so summary() leaves it out).
    template <typename Endpoint>
    static bool hung_up(const Endpoint& endpoint) {
        return endpoint.link_.hung_up();
    }
};

}  // namespace texshare::detail

namespace texshare::testing {

template <typename Endpoint>
std::string state_of(const Endpoint& endpoint) {
    return detail::FrameStateProbe::summary(endpoint);
}

}  // namespace texshare::testing
