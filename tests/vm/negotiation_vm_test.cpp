// VM lane: capability negotiation between two real DRM devices. The guest has vgem and
// virtio_gpu, so a producer allocating on one and a consumer importing on the other is the
// cross-device case for real: negotiate() must fall back to LINEAR; where even LINEAR does
// not import (it does not here), renegotiation must end on shared memory; and a consumer
// must refuse a DMA-BUF it never advertised.
#include <cstring>
#include <optional>
#include <string>

#include "support/fd_count.hpp"
#include "support/frame_pair.hpp"
#include "texshare/egl/importer.hpp"
#include "texshare/gbm/allocator.hpp"
#include "texshare/memfd_allocator.hpp"
#include "texshare/negotiation.hpp"

namespace texshare {
namespace {

// The primary node of the DRM device whose driver is `driver` (render nodes of vgem and
// virtio_gpu refuse dumb buffers, see docs/vm-lane-facts.md).
std::optional<gbm::Device> open_driver(const std::string& driver) {
    auto nodes = gbm::list_drm_nodes();
    if (!nodes) return std::nullopt;
    for (const gbm::DrmNode& node : *nodes) {
        if (node.render_node) continue;
        auto device = gbm::Device::open(node.path);
        if (device && device->node().driver == driver) return std::move(*device);
    }
    return std::nullopt;
}

// What a GBM producer can allocate: its device and the formats probed with its EGL
// display's render modifiers (gbm::Device::allocatable_formats), as they come.
ProducerCapabilities capabilities_of(const gbm::Device& device) {
    auto display = egl::Display::open_gbm(device.native());
    auto render = display ? display->render_formats() : Result<FormatSet>(display.error());
    EXPECT_TRUE(render) << render.error().message;
    return ProducerCapabilities{device.node().device_number, device.allocatable_formats(render ? *render : FormatSet{})};
}

// What a consumer advertises: EGL's importable formats, on its own device, as they come.
FormatTable table_of(const egl::Importer& importer, const gbm::Device& device) {
    return FormatTable{device.node().device_number, importer.formats()};
}

// st_rdev of the guest's primary and render node of `driver`.
struct Nodes {
    std::uint64_t primary = 0;
    std::uint64_t render = 0;
};
Nodes nodes_of(const std::string& driver) {
    Nodes found;
    auto nodes = gbm::list_drm_nodes();
    if (!nodes) return found;
    for (const gbm::DrmNode& node : *nodes) {
        auto device = gbm::Device::open(node.path);
        if (!device || device->node().driver != driver) continue;
        (node.render_node ? found.render : found.primary) = node.device_number;
    }
    return found;
}

class NegotiationVmTest : public testing::FramePairTest {
protected:
    void SetUp() override {
        FramePairTest::SetUp();
        vgem_ = open_driver("vgem");
        virtio_ = open_driver("virtio_gpu");
        ASSERT_TRUE(vgem_ && virtio_) << "the guest has both vgem and virtio_gpu";
        auto display = egl::Display::open_gbm(virtio_->native());
        ASSERT_TRUE(display) << display.error().message;
        display_.emplace(std::move(*display));
        auto importer = egl::Importer::create(*display_);
        ASSERT_TRUE(importer) << importer.error().message;
        importer_.emplace(std::move(*importer));
    }
    void TearDown() override {
        importer_.reset();
        display_.reset();
        vgem_.reset();
        virtio_.reset();
        FramePairTest::TearDown();
    }
    std::optional<gbm::Device> vgem_, virtio_;
    std::optional<egl::Display> display_;
    std::optional<egl::Importer> importer_;
};

TEST_F(NegotiationVmTest, AcrossVgemAndVirtioGpuLinearIsTriedThenSharedMemory) {
    ASSERT_FALSE(same_drm_device(vgem_->node().device_number, virtio_->node().device_number));
    const FormatTable table = table_of(*importer_, *virtio_);
    ASSERT_TRUE(receiver_->advertise(table));
    pump_sender();
    ASSERT_NE(sender_->peer_formats(), nullptr);
    const std::uint32_t wanted[] = {DRM_FORMAT_ARGB8888};
    auto choice = negotiate(*sender_->peer_formats(), capabilities_of(*vgem_), wanted);
    ASSERT_TRUE(choice) << choice.error().message;
    EXPECT_EQ(choice->path, SharingPath::linear_cross_device) << choice->reason;
    EXPECT_EQ(choice->modifiers, (std::vector<std::uint64_t>{DRM_FORMAT_MOD_LINEAR}));
    std::printf("negotiated across devices: %s\n", choice->reason.c_str());

    auto image = vgem_->allocate({64, 32, choice->fourcc, choice->modifiers, 0});
    ASSERT_TRUE(image) << image.error().message;
    {
        auto mapping = image->map(Access::write);
        ASSERT_TRUE(mapping) << mapping.error().message;
        std::memset(mapping->plane(0).data(), 0x7f, mapping->plane(0).size());
    }
    auto id = sender_->add_image(std::move(*image));
    ASSERT_TRUE(id);
    EXPECT_EQ(pump_receiver(), 1U) << "advertised (ARGB8888, LINEAR): accepted";
    // Measured: kms_swrast on virtio_gpu imports a buffer by PRIME into virtio_gpu, which
    // refuses vgem's. Asserted, so a kernel or Mesa that changes this is noticed.
    auto imported = importer_->import(*id, *receiver_->image(*id));
    ASSERT_FALSE(imported) << "a vgem buffer now imports into virtio_gpu's EGL: update docs/vm-lane-facts.md";
    EXPECT_NE(imported.error().message.find("EGL_BAD_ALLOC"), std::string::npos) << imported.error().message;

    // So the consumer takes (ARGB8888, LINEAR) out of its table and says so again; the
    // producer renegotiates once and lands on shared memory: a new swapchain, not a loop.
    FormatTable narrowed = table;
    ASSERT_TRUE(narrowed.formats.remove(DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR));
    ASSERT_TRUE(receiver_->advertise(narrowed));
    pump_sender();
    ASSERT_TRUE(sender_->take_formats_changed());
    auto fallback = negotiate(*sender_->peer_formats(), capabilities_of(*vgem_), wanted);
    ASSERT_TRUE(fallback);
    EXPECT_EQ(fallback->path, SharingPath::shared_memory) << fallback->reason;
    std::printf("renegotiated: %s\n", fallback->reason.c_str());
    ASSERT_TRUE(sender_->retire(*id));
    auto memory = MemfdAllocator().allocate(64, 32, fallback->fourcc);
    ASSERT_TRUE(memory);
    auto shared = sender_->add_image(std::move(*memory));
    ASSERT_TRUE(shared);
    pump_receiver();
    pump_sender();
    EXPECT_EQ(receiver_->image_count(), 1U) << "the DMA-BUF retired, the memfd accepted";
    ASSERT_NE(receiver_->image(*shared), nullptr);
    EXPECT_EQ(receiver_->image(*shared)->backing(), Backing::shared_memory);
    EXPECT_FALSE(sender_->take_formats_changed()) << "nothing more to renegotiate";
}

TEST_F(NegotiationVmTest, OnOneDeviceTheConsumersModifiersAreKept) {
    const FormatTable table = table_of(*importer_, *virtio_);
    const std::uint32_t wanted[] = {DRM_FORMAT_ARGB8888};
    const ProducerCapabilities producer = capabilities_of(*virtio_);
    auto choice = negotiate(table, producer, wanted);
    // What the guest's drivers list, for the record (docs/vm-lane-facts.md).
    auto names = [](const DrmFormat* format) {
        std::string listed;
        for (const FormatModifier& m : format != nullptr ? format->modifiers : std::vector<FormatModifier>{}) {
            listed += fmt::format(" {}{}", modifier_name(m.modifier), m.flags & format_external_only ? "(external)" : "");
        }
        return listed;
    };
    std::printf("virtio_gpu AR24: EGL imports%s; GBM allocates%s; %zu formats, %zu pairs importable\n",
                names(table.formats.find(DRM_FORMAT_ARGB8888)).c_str(),
                names(producer.formats.find(DRM_FORMAT_ARGB8888)).c_str(), table.formats.size(),
                table.formats.pair_count());
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->path, SharingPath::zero_copy) << choice->reason;
    EXPECT_FALSE(choice->modifiers.empty());
}

// Issue 12 item 4 on the guest's real nodes: a consumer on vgem's render node (226:128) and
// a producer on its primary node (226:0, where GBM allocates, since vgem's render node
// refuses dumb buffers) are one device, so zero-copy with every common modifier in the
// consumer's order; a producer on virtio_gpu is another device: LINEAR only. The tiled
// modifier is named, not allocated: neither guest driver tiles, and negotiate() only
// matches what each side says.
TEST_F(NegotiationVmTest, PrimaryAndRenderNodeOfOneGpuAreOneDevice) {
    const Nodes vgem = nodes_of("vgem");
    const Nodes virtio = nodes_of("virtio_gpu");
    ASSERT_TRUE(vgem.primary && vgem.render && virtio.primary && virtio.render)
        << "the guest has card and renderD nodes of vgem and virtio_gpu";
    ASSERT_NE(vgem.primary, vgem.render);
    EXPECT_TRUE(same_drm_device(vgem.primary, vgem.render));
    EXPECT_TRUE(same_drm_device(virtio.render, virtio.primary));
    EXPECT_FALSE(same_drm_device(vgem.primary, virtio.primary));
    EXPECT_FALSE(same_drm_device(vgem.render, virtio.render));

    const FormatTable consumer{vgem.render,
                               {{DRM_FORMAT_ARGB8888, I915_FORMAT_MOD_Y_TILED}, {DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR}}};
    const ProducerCapabilities producer{vgem.primary,
                                        {{DRM_FORMAT_ARGB8888, DRM_FORMAT_MOD_LINEAR}, {DRM_FORMAT_ARGB8888, I915_FORMAT_MOD_Y_TILED}}};
    const std::uint32_t wanted[] = {DRM_FORMAT_ARGB8888};
    auto choice = negotiate(consumer, producer, wanted);
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->path, SharingPath::zero_copy) << choice->reason;
    EXPECT_EQ(choice->modifiers, (std::vector<std::uint64_t>{I915_FORMAT_MOD_Y_TILED, DRM_FORMAT_MOD_LINEAR}));
    std::printf("one GPU, two nodes: %s\n", choice->reason.c_str());

    auto across = negotiate(consumer, ProducerCapabilities{virtio.primary, producer.formats}, wanted);
    ASSERT_TRUE(across);
    EXPECT_EQ(across->path, SharingPath::linear_cross_device) << across->reason;
    EXPECT_EQ(across->modifiers, (std::vector<std::uint64_t>{DRM_FORMAT_MOD_LINEAR}));
}

TEST_F(NegotiationVmTest, ADmaBufTheConsumerNeverAdvertisedIsRefused) {
    ASSERT_TRUE(receiver_->advertise(FormatTable{virtio_->node().device_number,
                                                 {{DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR}}}));
    auto image = vgem_->allocate({16, 16, DRM_FORMAT_ARGB8888, {DRM_FORMAT_MOD_LINEAR}, 0});
    ASSERT_TRUE(image) << image.error().message;
    ASSERT_TRUE(sender_->add_image(std::move(*image)));
    auto handled = receiver_->dispatch();
    ASSERT_FALSE(handled);
    EXPECT_EQ(handled.error().code, Errc::rejected);
    EXPECT_NE(handled.error().message.find("was never advertised"), std::string::npos) << handled.error().message;
    EXPECT_EQ(receiver_->image_count(), 0U);
}

}  // namespace
}  // namespace texshare
