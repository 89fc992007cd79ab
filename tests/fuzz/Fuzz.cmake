# Fuzz targets (tests/fuzz/fuzz_*.cpp). Each is built two ways:
# - always, as a replay binary (replay_main.cpp) that runs its corpus directory: the seeds
#   and every crash input kept as a regression case (ctest fuzz.<target>.replay);
# - with TEXSHARE_FUZZ=ON and clang, as a libFuzzer binary with ASan + UBSan
#   (scripts/fuzz.sh runs each for a bounded time; CI does, for a minute each).
option(TEXSHARE_FUZZ "Build libFuzzer targets (needs clang)" OFF)
set(TEXSHARE_FUZZ_TARGETS fuzz_frame_message fuzz_image_descriptor fuzz_frame_state fuzz_format_table)

foreach(target ${TEXSHARE_FUZZ_TARGETS})
  add_executable(${target}_replay fuzz/${target}.cpp fuzz/replay_main.cpp)
  target_link_libraries(${target}_replay PRIVATE texshare::texshare texshare_warnings)
  target_include_directories(${target}_replay PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_compile_definitions(${target}_replay PRIVATE TEXSHARE_FD_SAFETY_CHECKS=1)
  add_test(NAME fuzz.${target}.replay
           COMMAND ${target}_replay ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${target})
  set_tests_properties(fuzz.${target}.replay PROPERTIES LABELS fuzz TIMEOUT 120)

  if(TEXSHARE_FUZZ)
    if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
      message(FATAL_ERROR "TEXSHARE_FUZZ needs clang (libFuzzer); configure with CXX=clang++-14")
    endif()
    add_executable(${target} fuzz/${target}.cpp)
    target_link_libraries(${target} PRIVATE texshare::texshare)
    target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    target_compile_definitions(${target} PRIVATE TEXSHARE_FD_SAFETY_CHECKS=1)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g -O1)
    target_link_options(${target} PRIVATE -fsanitize=fuzzer,address,undefined)
  endif()
endforeach()
