# ctest's example.host_renderer: runs the example with its default plan (300 frames, a resize
# at 100, the renderer SIGKILLed at 200 and respawned) and checks its summary line itself,
# so the example's own exit status is not the only witness.
#   cmake -DEXAMPLE=<texshare_host_renderer> -DOUTPUT=<png> [-DALLOCATOR=<choice>
#         -DEXPECT_METHOD=<regex>] -P check_summary.cmake
# ALLOCATOR runs it with --allocator=<choice>; EXPECT_METHOD must then match the "frames read
# through ..." part of its log line (the path the frames took, said in words).
cmake_minimum_required(VERSION 3.18)  # cmake_language(EVAL)
# --helper-hold=5: every renderer leaves a process holding its channel end 5 s after it is
# gone; the host must see the killed one's death at once all the same (its pidfd).
set(allocator_argument "")
if(DEFINED ALLOCATOR)
  set(allocator_argument --allocator=${ALLOCATOR})
endif()
execute_process(COMMAND ${EXAMPLE} --output=${OUTPUT} --helper-hold=5 ${allocator_argument} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE status)
message("${out}${err}")
if(NOT status EQUAL 0)
  message(FATAL_ERROR "texshare_host_renderer exited with ${status}")
endif()
string(REGEX MATCH "summary: [^\n]*" summary "${out}")
if(DEFINED EXPECT_METHOD)
  string(REGEX MATCH "frames read through [^\n]*" method "${out}")
  if(NOT method MATCHES "${EXPECT_METHOD}")
    message(FATAL_ERROR "the log says \"${method}\", expected it to match \"${EXPECT_METHOD}\"")
  endif()
endif()
if(summary STREQUAL "")
  message(FATAL_ERROR "no summary line")
endif()
foreach(key frames presented received skipped shown verified lost in_flight_at_kill images_added images_retired
            images_reclaimed mismatched_pixels renderers rate_hz begin_frames latency_samples latency_p50_us
            latency_p99_us feedback_presented feedback_discarded fds_before fds_after)
  if(NOT summary MATCHES " ${key}=(-?[0-9]+)")
    message(FATAL_ERROR "the summary has no ${key}=<number>")
  endif()
  set(${key} ${CMAKE_MATCH_1})
endforeach()

function(expect condition what)  # condition: an if() expression, as a string
  cmake_language(EVAL CODE "if(NOT (${condition}))
    message(FATAL_ERROR \"summary check failed: ${what}\\n  \${summary}\")
  endif()")
endfunction()
math(EXPR accounted "${received} + ${skipped} + ${lost}")
expect("${presented} EQUAL ${frames}" "the renderers presented --frames frames in all")
expect("${accounted} EQUAL ${presented}" "every present was received, skipped (crossed the resize) or lost")
expect("${lost} GREATER_EQUAL 0 AND ${lost} LESS_EQUAL ${in_flight_at_kill}" "nothing lost but frames in flight at the kill")
expect("${shown} GREATER 0 AND ${verified} EQUAL ${shown}" "every frame shown was verified")
expect("${mismatched_pixels} EQUAL 0" "no mismatched pixels")
expect("${renderers} EQUAL 2" "one renderer killed, one respawned")
expect("${images_added} EQUAL 6 AND ${images_retired} EQUAL 3" "3 images, resized once")
expect("${images_reclaimed} EQUAL 3" "the killed renderer's images all came back")
expect("${fds_before} EQUAL ${fds_after}" "the host's open-fd count is unchanged")
# Pacing (the default 60 Hz begin_frame timer), feedback and damage.
expect("${rate_hz} EQUAL 60 AND ${begin_frames} GREATER 0" "the host paced its renderers at 60 Hz")
expect("${latency_samples} GREATER 0 AND ${latency_p50_us} GREATER 0 AND ${latency_p99_us} GREATER_EQUAL ${latency_p50_us}"
       "shown frames answered begin_frames and their latency was measured")
expect("${feedback_presented} GREATER 0 AND ${feedback_presented} LESS_EQUAL ${shown}"
       "the renderers heard 'presented' for frames shown, and no more")
math(EXPR feedback_total "${feedback_presented} + ${feedback_discarded}")
expect("${feedback_total} LESS_EQUAL ${presented}" "at most one feedback per present")
if(NOT summary MATCHES " damaged_share=0\\.([0-9]+)")
  message(FATAL_ERROR "the summary has no damaged_share=0.<digits> (damage must cover less than every pixel)")
endif()
expect("${CMAKE_MATCH_1} GREATER 0" "the renderer's damage covered some of the pixels")
if(NOT out MATCHES "its death seen ([0-9]+)\\.[0-9]+ ms later \\(by ([a-z ]+)\\)")
  message(FATAL_ERROR "no 'its death seen ... ms later (by ...)' in the killed renderer's line")
endif()
expect("${CMAKE_MATCH_1} LESS 1000" "the killed renderer's death was seen within 1 s (by ${CMAKE_MATCH_2}), though its helper held the channel")
if(NOT summary MATCHES " result=ok$")
  message(FATAL_ERROR "summary check failed: result is not ok\n  ${summary}")
endif()
