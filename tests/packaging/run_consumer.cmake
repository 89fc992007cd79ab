# Builds and runs tests/packaging/consumer one way, in a scratch directory.
#   cmake -DMODE=<install|pkg-config|add_subdirectory> -DSOURCE_DIR=... -DBUILD_DIR=...
#         -DWORK_DIR=... -P run_consumer.cmake
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "failed (${result}): ${command}")
  endif()
endfunction()

set(consumer "${SOURCE_DIR}/tests/packaging/consumer")
if(MODE STREQUAL "add_subdirectory")
  run(${CMAKE_COMMAND} -S "${consumer}" -B "${WORK_DIR}/build" -DTEXSHARE_CONSUME=add_subdirectory
      "-DTEXSHARE_SOURCE_DIR=${SOURCE_DIR}")
else()
  run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
  if(MODE STREQUAL "install")
    run(${CMAKE_COMMAND} -S "${consumer}" -B "${WORK_DIR}/build" "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix")
  else()  # pkg-config: the way a non-CMake build would consume it
    set(ENV{PKG_CONFIG_PATH} "${WORK_DIR}/prefix/share/pkgconfig")
    execute_process(COMMAND pkg-config --cflags --libs texshare OUTPUT_VARIABLE flags
                    RESULT_VARIABLE result OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT result EQUAL 0)
      message(FATAL_ERROR "pkg-config does not find the installed texshare.pc")
    endif()
    separate_arguments(flags UNIX_COMMAND "${flags}")
    file(MAKE_DIRECTORY "${WORK_DIR}/build")
    run(c++ -std=c++20 "${consumer}/main.cpp" ${flags} -o "${WORK_DIR}/build/consumer")
    run("${WORK_DIR}/build/consumer")
    return()
  endif()
endif()
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/consumer")
