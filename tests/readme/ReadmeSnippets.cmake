# The README's code compiles: every ```cpp block of README.md is a whole file, extracted
# here into <build>/tests/readme/snippet_<n>.cpp and compiled with -Wall -Wextra -Werror
# against texshare (not linked: a snippet may declare the application's own functions).
# README.md stays the one source: editing it re-runs this at the next build, and ctest
# `readme.snippets` builds the target, so a snippet that stops compiling (an API change,
# an ignored [[nodiscard]] Result) fails that test with the compiler's message.
set(readme "${PROJECT_SOURCE_DIR}/README.md")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${readme}")
file(READ "${readme}" text)

set(snippets)
set(index 0)
while(TRUE)
  string(FIND "${text}" "```cpp\n" open)
  if(open EQUAL -1)
    break()
  endif()
  math(EXPR open "${open} + 7")
  string(SUBSTRING "${text}" ${open} -1 text)
  string(FIND "${text}" "\n```" close)
  if(close EQUAL -1)
    message(FATAL_ERROR "README.md: a ```cpp block is never closed")
  endif()
  math(EXPR close "${close} + 1")
  string(SUBSTRING "${text}" 0 ${close} code)
  string(SUBSTRING "${text}" ${close} -1 text)
  math(EXPR index "${index} + 1")
  set(file "${CMAKE_CURRENT_BINARY_DIR}/readme/snippet_${index}.cpp")
  # Rewritten only when it changed, so an unrelated README edit recompiles nothing.
  file(WRITE "${file}.new" "// Extracted from README.md (${CMAKE_CURRENT_LIST_FILE}); edit the README.\n${code}")
  file(COPY_FILE "${file}.new" "${file}" ONLY_IF_DIFFERENT)
  file(REMOVE "${file}.new")
  list(APPEND snippets "${file}")
endwhile()
if(NOT snippets)
  message(FATAL_ERROR "README.md has no ```cpp block for tests/readme to compile")
endif()

add_library(texshare_readme_snippets OBJECT EXCLUDE_FROM_ALL ${snippets})
target_link_libraries(texshare_readme_snippets PRIVATE texshare::texshare)
target_compile_options(texshare_readme_snippets PRIVATE -Wall -Wextra -Werror)
add_test(NAME readme.snippets
         COMMAND ${CMAKE_COMMAND} --build ${PROJECT_BINARY_DIR} --target texshare_readme_snippets)
set_tests_properties(readme.snippets PROPERTIES LABELS packaging TIMEOUT 300)
