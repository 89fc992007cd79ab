// texshare_import_bench: the VM lane's part of the benchmark, run inside the qemu guest by
// scripts/bench.sh because only there are there DMA-BUFs to import (Mesa's kms_swrast and
// llvmpipe under TCG: compare its rows with each other, never with the host's).
//   5.  Import cost per frame: the texture of a frame's image from texshare's import cache
//       (egl::ImportListener, which imported it once when it was shared) against
//       re-importing it every frame (eglCreateImage + texture, destroyed after use); each
//       also with the frame sampled (a 1x1 read through an FBO), since a driver may defer
//       the real work of an import to its first use.
//   2b. First share of a 4-plane DMA-BUF image (descriptor + 4 fds + validation) against a
//       raw sendmsg of the same 4 fds.
//
//   texshare_import_bench [--scale=F]
#include <drm_fourcc.h>

#include <string>
#include <string_view>

#include <benchmark/benchmark.h>

#include "first_share.hpp"
#include "gbench.hpp"
#include "harness.hpp"
#include "support/gl_helpers.hpp"
#include "texshare/egl/import_listener.hpp"
#include "texshare/egl/importer.hpp"
#include "texshare/gbm/allocator.hpp"

namespace {

using namespace bench;
using namespace texshare;

struct Gpu {
    gbm::Device device;
    egl::Display display;
    egl::Importer importer;
};

DmaBufImage allocate(const gbm::Device& device) {
    return must(device.allocate({256, 256, DRM_FORMAT_ARGB8888, {DRM_FORMAT_MOD_LINEAR}, 0}), "GBM allocation");
}

// A 4-plane image as a compressing driver lays one out (NV12 with Intel's media-compression
// planes): four DMA-BUFs, one per plane. Validation checks what it always checks; that the
// memory is really compressed matters to no check.
DmaBufImage four_plane_image(const gbm::Device& device, std::vector<DmaBufImage>& buffers) {
    ImageLayout layout{256, 256, DRM_FORMAT_NV12, I915_FORMAT_MOD_Y_TILED_GEN12_MC_CCS, 4, {}};
    PlaneFds fds;
    for (std::size_t i = 0; i < max_planes; ++i) {
        buffers.push_back(allocate(device));
        fds[i] = must(UniqueFd::dup(buffers.back().plane_fd(0)), "dup");
        layout.planes[i] = PlaneLayout{0, 256};
    }
    return must(DmaBufImage::adopt(layout, Backing::dma_buf, std::move(fds)), "a 4-plane image");
}

void sample(const egl::Display& display, const egl::ImportedTexture& texture) {
    auto pixels = texshare::testing::read_pixels(display, texture.target, texture.texture, 1, 1);
    if (!pixels) fail(fmt::format("read_pixels: {}", pixels.error().message));
    benchmark::DoNotOptimize(pixels->data());
}

void cached(benchmark::State& state, Gpu* gpu, egl::ImportListener* cache, bool sampled) {
    for (auto _ : state) {
        const egl::ImportedTexture* texture = cache->texture(1);
        glBindTexture(texture->target, texture->texture);
        if (sampled) sample(gpu->display, *texture);
        benchmark::DoNotOptimize(texture);
    }
}

void reimported(benchmark::State& state, Gpu* gpu, const DmaBufImage* image, bool sampled) {
    for (auto _ : state) {
        const egl::ImportedTexture texture = must(gpu->importer.import(2, *image), "import");
        glBindTexture(texture.target, texture.texture);
        if (sampled) sample(gpu->display, texture);
        must(gpu->importer.release(2), "release");
    }
}

}  // namespace

int main(int argc, char** argv) {
    double scale = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg(argv[i]);
        if (arg.rfind("--scale=", 0) == 0) scale = std::stod(std::string(arg.substr(8)));
        else fail(fmt::format("unknown argument {}", arg));
    }
    blank_line = " ";  // the guest's output reaches the host through a serial console that drops empty lines
    print_machine("texshare benchmark, VM lane (qemu TCG guest: compare rows only with each other)");
    auto device = must(gbm::Device::open_default(), "a GBM device");
    auto display = must(egl::Display::open_gbm(device.native()), "the EGL GBM display");
    auto importer = must(egl::Importer::create(display), "egl::Importer");
    Gpu gpu{std::move(device), std::move(display), std::move(importer)};
    const DmaBufImage image = allocate(gpu.device);
    egl::ImportListener cache(gpu.importer);
    must(cache.image_added(1, image, true), "importing the image once");

    // The first read of a texture compiles llvmpipe's code for it (milliseconds): not an import cost.
    sample(gpu.display, *cache.texture(1));
    {
        const egl::ImportedTexture texture = must(gpu.importer.import(2, image), "import");
        sample(gpu.display, texture);
        must(gpu.importer.release(2), "release");
    }
    benchmark::RegisterBenchmark("cached", cached, &gpu, &cache, false);
    benchmark::RegisterBenchmark("reimport", reimported, &gpu, &image, false);
    benchmark::RegisterBenchmark("cached+sample", cached, &gpu, &cache, true);
    benchmark::RegisterBenchmark("reimport+sample", reimported, &gpu, &image, true);
    const auto t = run_registered_benchmarks(5, 0.2 * scale);
    Table imports(fmt::format("5. Import cost per frame (VM lane guest: {}, {} on {})", gpu.display.platform(),
                              gpu.display.renderer(), gpu.device.node().driver),
                  "re-importing costs");
    imports.rows.push_back({"texshare's import cache: ImportListener::texture(id) + glBindTexture",
                            format_seconds(t.at("cached")), 1.0, "", {}});
    imports.rows.push_back({"re-import each frame: eglCreateImage + texture + bind, destroyed after",
                            format_seconds(t.at("reimport")), t.at("reimport") / t.at("cached"), "the cached", {}});
    imports.rows.push_back({"cached, and the frame sampled (1x1 read through an FBO)",
                            format_seconds(t.at("cached+sample")), 1.0, "", {}});
    imports.rows.push_back({"re-imported, and the frame sampled", format_seconds(t.at("reimport+sample")),
                            t.at("reimport+sample") / t.at("cached+sample"), "the cached + sampled", {}});
    imports.notes.push_back("A 256x256 ARGB8888 LINEAR GBM buffer. Google Benchmark, 5 repetitions randomly interleaved, medians; warmed up first.");
    print_table(imports);

    std::vector<DmaBufImage> buffers;
    const DmaBufImage four_planes = four_plane_image(gpu.device, buffers);
    Table share("2b. First share of a 4-plane DMA-BUF image (VM lane guest)");
    share.rows = measure_first_share({{"4-plane NV12 + CCS DMA-BUF", &four_planes}}, 5, 0.2 * scale);
    share.notes.push_back("NV12 with Intel's media-compression planes (4 planes), each plane its own GBM DMA-BUF.");
    print_table(share);
    return 0;
}
