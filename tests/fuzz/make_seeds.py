#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/seed-*).

Seeds are well-formed inputs of each target's input format (see the comment at the top of
each fuzz_*.cpp), so the fuzzer starts from messages that pass the first checks. Crash
inputs found later are added next to them by hand (crash-*), as regression cases.
"""
import os
import struct
import sys

ARGB8888 = 0x34325241  # 'AR24'
NV12 = 0x3231564E      # 'NV12'
LINEAR = 0
ABGR8888 = 0x34324241  # 'AB24'
ABGR2101010 = 0x30334241  # 'AB30'
MOD_INVALID = 0x00FFFFFFFFFFFFFF
BACKING = {"cpu_only": 0, "shared_memory": 1, "dma_buf": 2, "opaque_fd": 3}
DESCRIPTOR_SIZE = 168  # version 3: 104 bytes, OpaqueMemory's 56, then ColorInfo's 8
KIND = {"add_image": 1, "present": 2, "release": 3, "retire": 4, "retired": 5, "bye": 6, "capabilities": 7,
        "refused": 8, "hello": 9, "begin_frame": 10, "presented": 11, "discarded": 12, "timeline": 13}
PRESENT_METADATA_SIZE = 152  # begin_frame sequence, content time, flags, damage count, 8 rects
# FrameMessage's payload: the largest per-kind payload, in whole 8-byte words.
PAYLOAD_SIZE = (max(DESCRIPTOR_SIZE, PRESENT_METADATA_SIZE) + 7) // 8 * 8
FENCE = {"none": 0, "sync_file": 1, "vulkan_opaque_semaphore": 2, "drm_syncobj_timeline": 3}


def opaque_memory(allocation_size, memory_type=0, flags=1, usage=0x17):
    """OpaqueMemory: device UUID, driver UUID, allocation size, memory type, flags, usage, reserved."""
    return bytes(range(16)) + bytes(range(16, 32)) + struct.pack("<QIIII", allocation_size, memory_type, flags,
                                                                 usage, 0)


def descriptor(image_id, width, height, fourcc=ARGB8888, backing="shared_memory", planes=None, mask=1,
               modifier=LINEAR, opaque=None, color=None):
    planes = planes if planes is not None else [(0, width * 4)]
    body = struct.pack("<IHBBQIIIIQ", 0x49535854, 3, BACKING[backing], mask, image_id, width, height, fourcc,
                       max(len(planes), 1), modifier)
    for i in range(4):
        offset, stride = planes[i] if i < len(planes) else (0, 0)
        body += struct.pack("<QII", offset, stride, 0)
    body += opaque or bytes(56)
    body += color or bytes(8)
    assert len(body) == DESCRIPTOR_SIZE
    return body


def colour(matrix=0, yuv_range=0, horizontal=0, vertical=0, transfer=0, primaries=0, alpha=0):
    """ColorInfo: matrix, range, chroma siting horizontal/vertical, transfer, primaries, alpha, reserved."""
    return bytes([matrix, yuv_range, horizontal, vertical, transfer, primaries, alpha, 0])


def frame_message(kind, image_id, frame=0, desc=None, fence="none", payload=None, fence_point=0):
    # kind u32, fence_kind u8, reserved_byte u8, reserved u16, image_id, frame_number, fence_point,
    # then the per-kind payload (the descriptor of add_image), zero-padded.
    body = desc if desc is not None else (payload or b"")
    assert len(body) <= PAYLOAD_SIZE
    return (struct.pack("<IBBHQQQ", KIND[kind], FENCE[fence], 0, 0, image_id, frame, fence_point) + body +
            bytes(PAYLOAD_SIZE - len(body)))


def hello(role, features, major=2, minor=0):
    """Hello: major, minor, role (1 producer, 2 consumer), features (1 pacing, 2 feedback)."""
    return struct.pack("<HHIQ", major, minor, role, features)


def present_metadata(sequence, content_time, flags, rects):
    """PresentMetadata: begin_frame sequence, content time, flags, count, 8 rects (x, y, w, h)."""
    body = struct.pack("<QqII", sequence, content_time, flags, len(rects))
    for i in range(8):
        body += struct.pack("<IIII", *(rects[i] if i < len(rects) else (0, 0, 0, 0)))
    assert len(body) == PRESENT_METADATA_SIZE
    return body


def channel_frame(message, mask):
    return struct.pack("<II", 0x43535854, len(message)) + bytes([mask]) + message


def fd_spec(kind, size):
    return struct.pack("<BI", kind, size)


def write(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main(root):
    d = os.path.join(root, "fuzz_frame_message")
    add = frame_message("add_image", 1, 0, descriptor(1, 16, 16))
    write(d, "seed-add-image", bytes([1]) + fd_spec(0, 1024) + channel_frame(add, 0b1))
    write(d, "seed-present", bytes([0]) + channel_frame(frame_message("present", 1, 1), 0))
    write(d, "seed-present-fence", bytes([1]) + fd_spec(4, 0) +
          channel_frame(frame_message("present", 1, 1, fence="sync_file"), 0b10000))
    write(d, "seed-release-fence", bytes([1]) + fd_spec(4, 0) +
          channel_frame(frame_message("release", 1, fence="sync_file"), 0b10000))
    write(d, "seed-present-opaque-fence", bytes([1]) + fd_spec(5, 0) +
          channel_frame(frame_message("present", 1, 1, fence="vulkan_opaque_semaphore"), 0b10000))
    write(d, "seed-present-fence-without-kind", bytes([1]) + fd_spec(4, 0) +
          channel_frame(frame_message("present", 1, 1), 0b10000))
    # Timeline sync: a timeline (an eventfd in the fence slot: refused as no syncobj), then
    # points on present and release without an fd, and a point carrying an fd (refused).
    write(d, "seed-timeline", bytes([1]) + fd_spec(4, 0) +
          channel_frame(frame_message("timeline", 0, fence="drm_syncobj_timeline"), 0b10000))
    write(d, "seed-present-point", bytes([0]) +
          channel_frame(frame_message("present", 1, 1, fence="drm_syncobj_timeline", fence_point=7), 0))
    write(d, "seed-release-point", bytes([0]) +
          channel_frame(frame_message("release", 1, fence="drm_syncobj_timeline", fence_point=8), 0))
    write(d, "seed-point-with-fd", bytes([1]) + fd_spec(4, 0) +
          channel_frame(frame_message("present", 1, 1, fence="drm_syncobj_timeline", fence_point=7), 0b10000))
    write(d, "seed-retire", bytes([0]) + channel_frame(frame_message("retire", 3), 0))
    write(d, "seed-bye", bytes([0]) + channel_frame(frame_message("bye", 0), 0))
    write(d, "seed-short", bytes([0]) + channel_frame(frame_message("retire", 3), 0)[:40])
    # protocol 2: hello (major 2.0, role producer, both features), begin_frame, feedback,
    # and a present with metadata (begin_frame 1, content time, opaque, two damage rects).
    write(d, "seed-hello", bytes([0]) + channel_frame(frame_message("hello", 0, payload=hello(1, 3)), 0))
    write(d, "seed-hello-major-3", bytes([0]) + channel_frame(frame_message("hello", 0, payload=hello(1, 3, 3)), 0))
    write(d, "seed-begin-frame", bytes([0]) + channel_frame(
        frame_message("begin_frame", 0, payload=struct.pack("<QqQ", 1, 1_000_000, 16_666_667)), 0))
    write(d, "seed-presented", bytes([0]) + channel_frame(
        frame_message("presented", 1, 1, payload=struct.pack("<qQII", 5_000, 1, 1, 0)), 0))
    write(d, "seed-discarded", bytes([0]) + channel_frame(
        frame_message("discarded", 1, 1, payload=struct.pack("<qQII", 0, 1, 0, 0)), 0))
    write(d, "seed-present-metadata", bytes([0]) + channel_frame(
        frame_message("present", 1, 2, payload=present_metadata(1, 42, 1, [(0, 0, 8, 8), (60, 60, 4, 4)])), 0))
    write(d, "seed-present-fence-point", bytes([0]) + channel_frame(
        frame_message("present", 1, 2, fence_point=7), 0))

    d = os.path.join(root, "fuzz_image_descriptor")
    write(d, "seed-argb-shm", bytes([0b1]) + fd_spec(0, 1024) + descriptor(1, 16, 16))
    write(d, "seed-argb-short-fd", bytes([0b1]) + fd_spec(0, 100) + descriptor(1, 16, 16))
    nv12 = descriptor(2, 16, 16, NV12, planes=[(0, 16), (256, 16)], mask=0b11)
    write(d, "seed-nv12-shm", bytes([0b11]) + fd_spec(0, 512) + fd_spec(0, 512) + nv12)
    write(d, "seed-cpu-only", bytes([0]) + descriptor(3, 8, 8, backing="cpu_only", mask=0))
    # Colour (descriptor version 3): NV12 video in BT.709 limited range, cosited/midpoint
    # chroma, BT.709 transfer and primaries; an HDR ABGR2101010 with straight alpha; and an
    # RGB image claiming a YUV matrix (refused).
    video = descriptor(5, 16, 16, NV12, planes=[(0, 16), (256, 16)], mask=0b11,
                       color=colour(2, 1, 1, 2, 2, 1))
    write(d, "seed-nv12-bt709-limited", bytes([0b11]) + fd_spec(0, 512) + fd_spec(0, 512) + video)
    write(d, "seed-hdr-straight-alpha", bytes([0b1]) + fd_spec(0, 1024) +
          descriptor(6, 16, 16, ABGR2101010, color=colour(transfer=3, primaries=2, alpha=2)))
    write(d, "seed-rgb-with-yuv-matrix", bytes([0b1]) + fd_spec(0, 1024) + descriptor(7, 16, 16, color=colour(1)))
    write(d, "seed-unsealed", bytes([0b1]) + fd_spec(2, 1024) + descriptor(1, 16, 16))
    # opaque_fd: a character device (fd kind 7: /dev/null) passes; a memfd does not.
    opaque = descriptor(4, 16, 16, ABGR8888, backing="opaque_fd", planes=[], modifier=MOD_INVALID,
                        opaque=opaque_memory(4096))
    write(d, "seed-opaque-fd", bytes([0b1]) + fd_spec(7, 0) + opaque)
    write(d, "seed-opaque-fd-memfd", bytes([0b1]) + fd_spec(0, 4096) + opaque)

    d = os.path.join(root, "fuzz_frame_state")
    # op, id, arg triples: add two images, present them in turn, release, retire.
    steps = [(0, 1, 4), (0, 2, 4), (1, 1, 1), (1, 2, 1), (15, 0, 0), (2, 1, 0), (8, 1, 0), (10, 0, 0),
             (11, 0, 0), (8, 1, 1), (13, 1, 0), (12, 1, 0), (9, 1, 5), (5, 0, 0), (11, 0, 0), (7, 0x81, 0)]
    write(d, "seed-both-directions", bytes(b for step in steps for b in step))
    write(d, "seed-backwards-frames", bytes([0, 1, 4, 1, 1, 3, 1, 1, 0x81, 1, 1, 0x82]))
    write(d, "seed-stop-reading", bytes([14, 0, 0] + [1, 1, 1, 1, 2, 1] * 20))
    # A refused present (of the held image, with a later frame) must not move the frame
    # counter: the next present, of another image with an earlier frame, is taken.
    # Fenced presents and releases of every fence fd kind and fence kind (arg: bit 0 a fence,
    # bits 1-2 its fd: pipe, eventfd, /dev/null, memfd; bits 3-4 the kind it claims).
    steps = [(0, 1, 4), (0, 2, 4), (1, 1, 1 | 1 << 1 | 1 << 3), (1, 2, 1 | 2 << 1 | 2 << 3), (9, 1, 1 | 2 << 1 | 2 << 3),
             (1, 1, 1 | 0 << 1 | 2 << 3), (1, 1, 1 | 3 << 1 | 1 << 3), (1, 1, 1 | 1 << 1 | 3 << 3)]
    write(d, "seed-fence-kinds", bytes(b for step in steps for b in step))
    write(d, "seed-refused-present-keeps-last-frame", bytes([0, 1, 0, 0, 2, 0, 1, 1, 2, 1, 1, 3, 1, 2, 0x81]))
    # The producer fills its quota of the consumer's table and retires one to add another.
    steps = [(0, n, 4) for n in range(1, 12)] + [(2, 3, 0), (0, 12, 4), (5, 0, 0), (5, 0, 0)]
    write(d, "seed-producer-quota", bytes(b for step in steps for b in step))
    # Protocol 2 (ops 16..23): the consumer sends begin_frame, the producer presents with
    # damage, a hostile producer presents with metadata, the consumer reports presented; a
    # hostile consumer sends begin_frame and feedback; a second hello each way.
    steps = [(0, 1, 4), (0, 2, 4), (17, 0, 0), (16, 1, 0x22), (18, 0, 0x45), (17, 0, 0), (16, 2, 0x41),
             (10, 0, 0), (10, 0, 0), (19, 0, 1), (21, 0, 0x15), (20, 1, 0x01), (20, 1, 0x00), (21, 0, 0x81),
             (22, 0, 0), (19, 0, 1), (23, 0, 3), (23, 0, 2)]
    write(d, "seed-protocol-2", bytes(b for step in steps for b in step))


    d = os.path.join(root, "fuzz_format_table")
    # mode byte, then the table: header (magic, version, capabilities, entries, extensions,
    # device), the UUID block where extensions say so, entries (fourcc, flags, modifier).
    def table(version, capabilities, entries, extensions=0, device=0xE200, uuids=b""):
        body = struct.pack("<IHHIIQ", 0x46535854, version, capabilities, len(entries), extensions, device) + uuids
        return body + b"".join(struct.pack("<IIQ", f, fl, m) for f, fl, m in entries)
    pairs = [(ARGB8888, 0, LINEAR), (NV12, 2, LINEAR)]
    ids = bytes(range(0x10, 0x20)) + bytes(range(0xA0, 0xB0))
    write(d, "seed-v1", bytes([0]) + table(1, 0, pairs))
    write(d, "seed-v2-converts", bytes([0]) + table(2, 1, pairs))
    write(d, "seed-v2-uuids", bytes([0]) + table(2, 0, pairs, 1, uuids=ids))
    write(d, "seed-v2-opaque", bytes([0]) + table(2, 2, pairs, 1, uuids=ids))
    write(d, "seed-v2-opaque-no-uuids", bytes([0]) + table(2, 2, pairs))
    write(d, "seed-v2-zero-uuids", bytes([0]) + table(2, 2, pairs, 1, uuids=bytes(32)))
    write(d, "seed-writable", bytes([1]) + table(2, 2, [], 1, uuids=ids))

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus"))
