# ctest's example.host_renderer_vulkan: runs the example's --api=vulkan mode and checks what
# it says. Where the machine has a Vulkan driver that exports and imports images it must
# succeed and its summary must show every frame verified; where it has none (Debian 12's
# lavapipe: no VK_EXT_external_memory_dma_buf) it must exit 3 naming what is missing, not
# crash. The backports guest, whose driver has it, runs the mode through the VM lane (which
# fails on any exit but 0). The arguments the mode cannot take are refused (exit 2).
#   cmake -DEXAMPLE=<texshare_host_renderer> -DOUTPUT=<png> -P check_vulkan.cmake
cmake_minimum_required(VERSION 3.18)
foreach(refused --kill-at=10 --resize-at=10 --allocator=gbm --helper-hold=1 --resize-to=8x8)
  execute_process(COMMAND ${EXAMPLE} --api=vulkan ${refused} OUTPUT_VARIABLE out ERROR_VARIABLE err
                  RESULT_VARIABLE status)
  if(NOT status EQUAL 2 OR NOT err MATCHES "is not available with --api=vulkan")
    message(FATAL_ERROR "--api=vulkan ${refused}: expected exit 2 and a refusal, got ${status}: ${out}${err}")
  endif()
endforeach()
foreach(case "--api=metal;--api: \"metal\" is not cpu or vulkan" "--api=vulkan;--fences=gpu;--fences: \"gpu\" is not auto or cpu_wait"
             "--fences=cpu_wait;--fences is for --api=vulkan")
  list(POP_BACK case expected)
  execute_process(COMMAND ${EXAMPLE} ${case} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE status)
  if(NOT status EQUAL 2 OR NOT err MATCHES "${expected}")
    message(FATAL_ERROR "${case}: expected exit 2 and \"${expected}\", got ${status}: ${out}${err}")
  endif()
endforeach()

execute_process(COMMAND ${EXAMPLE} --api=vulkan --frames=40 --output=${OUTPUT} OUTPUT_VARIABLE out
                ERROR_VARIABLE err RESULT_VARIABLE status)
message("${out}${err}")
if(status EQUAL 3)
  if(NOT err MATCHES "--api=vulkan needs a Vulkan driver that exports and imports images" OR
     NOT err MATCHES "VK_[A-Za-z_]+|DMA-BUF|OPAQUE_FD|no Vulkan")
    message(FATAL_ERROR "exit 3 without saying what is missing")
  endif()
  if(out MATCHES "summary:")
    message(FATAL_ERROR "exit 3 after a session: it must refuse before spawning a renderer")
  endif()
  message("this machine cannot run --api=vulkan (said above); the refusal was checked")
  return()
endif()
if(NOT status EQUAL 0)
  message(FATAL_ERROR "texshare_host_renderer --api=vulkan exited with ${status}")
endif()
string(REGEX MATCH "summary: [^\n]*" summary "${out}")
foreach(key frames presented shown verified mismatched_pixels lost fds_before fds_after)
  if(NOT summary MATCHES " ${key}=(-?[0-9]+)")
    message(FATAL_ERROR "the summary has no ${key}=<number>: ${summary}")
  endif()
  set(${key} ${CMAKE_MATCH_1})
endforeach()
if(NOT (presented EQUAL frames AND shown GREATER 0 AND verified EQUAL shown AND mismatched_pixels EQUAL 0 AND
        lost EQUAL 0 AND fds_before EQUAL fds_after AND summary MATCHES " result=ok$"))
  message(FATAL_ERROR "summary check failed: ${summary}")
endif()
if(NOT out MATCHES "frames read through Vulkan import [^\n]*; fences (sync_fd|opaque_fd|cpu_wait)")
  message(FATAL_ERROR "no 'frames read through Vulkan import ...; fences ...' line")
endif()
