// GPU lane support: the few CUDA driver API calls the lane needs, loaded from the driver's
// libcuda.so.1 at run time. The lane's binaries are built on Debian 12 (no CUDA headers or
// toolkit there) and run on the accelerator machine, whose driver ships libcuda; declaring
// the calls here, with the types and values of cuda.h (CUDA 11.7+, where
// cuMemGetHandleForAddressRange appeared), keeps the build free of the toolkit.
#pragma once

#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "texshare/result.hpp"
#include "texshare/unique_fd.hpp"

namespace texshare::gpu_lane {

class CudaDriver {
public:
    using CUresult = int;
    using CUdevice = int;
    using CUcontext = void*;
    using CUdeviceptr = unsigned long long;  // NOLINT(google-runtime-int): cuda.h's type
    static constexpr int attribute_dma_buf_supported = 124;  // CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED
    static constexpr int range_handle_type_dma_buf_fd = 1;   // CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD

    CudaDriver() = default;
    CudaDriver(const CudaDriver&) = delete;
    CudaDriver& operator=(const CudaDriver&) = delete;
    ~CudaDriver() {
        if (context_ != nullptr) release_context_(device_);
        if (library_ != nullptr) ::dlclose(library_);
    }

    // Loads libcuda.so.1, initialises CUDA and retains device 0's primary context.
    Result<void> open() {
        library_ = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (library_ == nullptr) return make_error(Errc::unsupported, "dlopen libcuda.so.1: {}", ::dlerror());
        if (auto loaded = load_all(); !loaded) return loaded;
        if (auto r = check(init_(0), "cuInit"); !r) return r;
        if (auto r = check(device_get_(&device_, 0), "cuDeviceGet(0)"); !r) return r;
        if (auto r = check(retain_context_(&context_, device_), "cuDevicePrimaryCtxRetain"); !r) return r;
        return check(set_current_(context_), "cuCtxSetCurrent");
    }

    Result<int> attribute(int attribute) const {
        int value = 0;
        if (auto r = check(get_attribute_(&value, attribute, device_), "cuDeviceGetAttribute"); !r) {
            return std::move(r).error();
        }
        return value;
    }

    // `bytes` of device memory (cuMemAlloc), freed by free().
    Result<CUdeviceptr> allocate(std::size_t bytes) const {
        CUdeviceptr pointer = 0;
        if (auto r = check(mem_alloc_(&pointer, bytes), fmt::format("cuMemAlloc({} bytes)", bytes)); !r) {
            return std::move(r).error();
        }
        return pointer;
    }
    Result<void> fill(CUdeviceptr pointer, std::uint32_t value, std::size_t words) const {
        return check(memset_d32_(pointer, value, words), "cuMemsetD32");
    }
    void free(CUdeviceptr pointer) const noexcept { mem_free_(pointer); }

    // The range as a DMA-BUF fd the caller owns (cuMemGetHandleForAddressRange; the range
    // must be aligned to the host page size).
    Result<UniqueFd> export_dma_buf(CUdeviceptr pointer, std::size_t bytes) const {
        int fd = -1;
        if (auto r = check(get_handle_(&fd, pointer, bytes, range_handle_type_dma_buf_fd, 0),
                           "cuMemGetHandleForAddressRange(DMA_BUF_FD)");
            !r) {
            return std::move(r).error();
        }
        return UniqueFd(fd);
    }

private:
    template <typename F>
    bool load(F& function, const char* name) {
        function = reinterpret_cast<F>(::dlsym(library_, name));
        if (function == nullptr) missing_ += std::string(missing_.empty() ? "" : ", ") + name;
        return function != nullptr;
    }
    Result<void> load_all() {
        load(init_, "cuInit");
        load(device_get_, "cuDeviceGet");
        load(get_attribute_, "cuDeviceGetAttribute");
        load(retain_context_, "cuDevicePrimaryCtxRetain");
        load(release_context_, "cuDevicePrimaryCtxRelease_v2");
        load(set_current_, "cuCtxSetCurrent");
        load(mem_alloc_, "cuMemAlloc_v2");
        load(mem_free_, "cuMemFree_v2");
        load(memset_d32_, "cuMemsetD32_v2");
        load(get_handle_, "cuMemGetHandleForAddressRange");
        load(error_name_, "cuGetErrorName");
        if (!missing_.empty()) return make_error(Errc::library, "libcuda.so.1 lacks {}", missing_);
        return {};
    }
    Result<void> check(CUresult result, std::string_view call) const {
        if (result == 0) return {};
        const char* name = nullptr;
        if (error_name_ != nullptr) error_name_(result, &name);
        return make_error(Errc::library, "{} failed: {} ({})", call, name != nullptr ? name : "?", result);
    }

    void* library_ = nullptr;
    std::string missing_;
    CUdevice device_ = 0;
    CUcontext context_ = nullptr;
    CUresult (*init_)(unsigned) = nullptr;
    CUresult (*device_get_)(CUdevice*, int) = nullptr;
    CUresult (*get_attribute_)(int*, int, CUdevice) = nullptr;
    CUresult (*retain_context_)(CUcontext*, CUdevice) = nullptr;
    CUresult (*release_context_)(CUdevice) = nullptr;
    CUresult (*set_current_)(CUcontext) = nullptr;
    CUresult (*mem_alloc_)(CUdeviceptr*, std::size_t) = nullptr;
    CUresult (*mem_free_)(CUdeviceptr) = nullptr;
    CUresult (*memset_d32_)(CUdeviceptr, unsigned, std::size_t) = nullptr;
    CUresult (*get_handle_)(void*, CUdeviceptr, std::size_t, int, unsigned long long) = nullptr;  // NOLINT
    CUresult (*error_name_)(CUresult, const char**) = nullptr;
};

}  // namespace texshare::gpu_lane
