// Section 2, first share: sharing an image once (its descriptor and one fd per plane in
// one message, then every receive-side check of import_image) against a raw sendmsg of the
// same fds in a message of the same size (received, fds closed). In one process over a
// socket pair, so it is the CPU cost of both sides without the scheduler's wake-ups.
// Shared by the host's benchmark and the VM lane's (where real DMA-BUFs exist).
#pragma once

#include <string>
#include <vector>

#include "report.hpp"
#include "texshare/dma_buf_image.hpp"

namespace bench {

struct FirstShareCase {
    std::string label;                           // e.g. "3-plane YUV420 memfd"
    const texshare::DmaBufImage* image = nullptr;  // must outlive the measurement
};

// Two rows per case: the raw send (baseline) and texshare's, held to at most 1.5x.
std::vector<Row> measure_first_share(const std::vector<FirstShareCase>& cases, int repetitions, double min_time);

}  // namespace bench
