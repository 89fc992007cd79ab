# A consumer compiled without C++20 gets one clear message, not a hundred errors: every
# public header of texshare (include/texshare/**, but detail/) is compiled alone as C++17
# and must fail with detail/require_cxx20.hpp's #error as its first error, followed by at
# most the fatal error that ends the unit there.
#   cmake -DSOURCE_DIR=... -DWORK_DIR=... -P cxx17_check.cmake
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
# The dependencies' headers are found, so the only thing wrong is the language version.
execute_process(COMMAND pkg-config --cflags fmt libdrm OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE
                COMMAND_ERROR_IS_FATAL ANY)
separate_arguments(flags UNIX_COMMAND "${flags}")

file(GLOB_RECURSE headers RELATIVE "${SOURCE_DIR}/include" "${SOURCE_DIR}/include/texshare/*.hpp")
list(FILTER headers EXCLUDE REGEX "/detail/")
set(failures)
foreach(header ${headers})
  string(MAKE_C_IDENTIFIER "${header}" name)
  file(WRITE "${WORK_DIR}/${name}.cpp" "#include <${header}>\nint main() { return 0; }\n")
  execute_process(COMMAND c++ -std=c++17 -fsyntax-only -I "${SOURCE_DIR}/include" ${flags} "${WORK_DIR}/${name}.cpp"
                  RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
  string(REPLACE ";" "," output "${output}")  # a CMake list separator
  string(REGEX MATCHALL "error:[^\n]*" errors "${output}")
  list(LENGTH errors count)
  set(first "(none)")
  if(count GREATER 0)
    list(GET errors 0 first)
  endif()
  if(result EQUAL 0)
    list(APPEND failures "${header}: compiled as C++17")
  elseif(NOT first MATCHES "texshare needs C\\+\\+20" OR count GREATER 2)
    list(APPEND failures "${header}: ${count} errors, the first: ${first}")
  endif()
endforeach()
list(LENGTH headers checked)
if(failures)
  list(JOIN failures "\n  " listed)
  message(FATAL_ERROR "compiled as C++17, these public headers do not stop with one clear message "
                      "(each must include texshare/detail/require_cxx20.hpp first):\n  ${listed}")
endif()
message(STATUS "all ${checked} public headers stop a C++17 compile with one message")
