// Everything in texshare's header-only core, for code that would include most of it anyway.
#pragma once

#include "texshare/detail/require_cxx20.hpp"

#include "texshare/aux_channel.hpp"
#include "texshare/child_process.hpp"
#include "texshare/dma_buf_image.hpp"
#include "texshare/dma_heap_allocator.hpp"
#include "texshare/drm_syncobj.hpp"
#include "texshare/format.hpp"
#include "texshare/format_table.hpp"
#include "texshare/frame/protocol.hpp"
#include "texshare/image_layout.hpp"
#include "texshare/image_mapping.hpp"
#include "texshare/image_wire.hpp"
#include "texshare/memfd_allocator.hpp"
#include "texshare/negotiation.hpp"
#include "texshare/result.hpp"
#include "texshare/sync_file.hpp"
#include "texshare/udmabuf.hpp"
#include "texshare/udmabuf_cache.hpp"
#include "texshare/unique_fd.hpp"
#include "texshare/unix_socket.hpp"
