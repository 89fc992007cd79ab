// Test support: skipping a test for what this machine lacks, without hiding a lane.
//
// The host (no DRM device, Debian 12's lavapipe) lacks what the VM lane's 6.12 guest has
// (DRM syncobj timelines on virtio_gpu, Mesa 25's lavapipe with its DMA-BUF and semaphore
// extensions). A test that needs those skips on the host, saying why, and FAILS in the
// backports guest (TEXSHARE_VM_STACK=backports, set by the guest's environment): a skip there
// would hide a regression in the lane CI runs.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

#define TEXSHARE_SKIP_OUTSIDE_BACKPORTS_GUEST(why)                                                      \
    do {                                                                                                 \
        const char* stack = std::getenv("TEXSHARE_VM_STACK");                                            \
        if (stack != nullptr && std::string_view(stack) == "backports") FAIL() << "in the backports guest: " << why; \
        GTEST_SKIP() << why;                                                                             \
    } while (false)
