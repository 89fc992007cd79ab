// The round trips that decide texshare-info's verdicts: one per (DRM node, format) for
// zero-copy GBM->EGL, and one for the shared-memory fallback.
//
// Use them through collect_report(); they are separate so the steps stay readable and
// each failure names its stage. Both go through the library the way two processes would:
// the image crosses a Unix socket pair (send_image / receive_image, so the receiving side's
// validation runs) before the reader touches it. Nothing outlives a call: every fd, mapping,
// EGL image and texture a round trip makes is gone when it returns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pattern.hpp"
#include "report.hpp"
#include "texshare/egl/importer.hpp"
#include "texshare/gbm/allocator.hpp"

namespace texshare::info {

// What the node's GBM EGL platform offers for imports. `importer` is null when there is
// none, and `unavailable` then says why.
struct EglSide {
    const egl::Display* display = nullptr;
    egl::Importer* importer = nullptr;
    std::string unavailable;
};

// A probe_width x probe_height LINEAR `fourcc` image from `device`, written through a CPU
// mapping, sent over a socket pair, imported through `egl`, read back and compared.
// `allocatable` (what GBM allocated in allocatable_formats()) explains a format that
// allocates only with an implicit modifier. `image_id` must be unused in the importer.
RoundTrip gbm_round_trip(const gbm::Device& device, EglSide& egl, std::uint32_t fourcc,
                         const std::vector<FormatModifiers>& allocatable, std::uint64_t image_id);

// Producer end to consumer end in one process: the fds pass through SCM_RIGHTS and come out
// as new fds, validated as a receiver would (DMA_BUF_MAGIC or seals, real size).
Result<DmaBufImage> share_through_socket(const DmaBufImage& image, std::uint64_t image_id);

// The pattern (pattern.hpp) written into plane 0 through a write mapping.
Result<void> write_pattern_to(const DmaBufImage& image, const ByteOrder& order);

// `image` (a 32-bit RGB format) imported through `egl`, read back and compared with the
// pattern; `outcome`, `stage` (empty when it works) and `detail` say how far it got. The import is released
// on every path.
void import_and_compare(EglSide& egl, const DmaBufImage& image, std::uint64_t image_id, Outcome& outcome,
                        std::string& stage, std::string& detail);

// A sealed-memfd ARGB8888 image written through a mapping, sent over a socket pair
// (where the receiver checks its seals and size), mapped again and compared.
Feature shared_memory_round_trip();

}  // namespace texshare::info
