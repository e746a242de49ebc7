# viva's patches to the whisper.cpp that whisper-rs-sys builds, one file each under
# scripts/whisper-patches/, each saying why it is safe and which test checks it.
#
# cargo passes this file to whisper.cpp's cmake as CMAKE_PROJECT_INCLUDE (see .cargo/config.toml),
# so it runs at configure time on the copy of whisper.cpp in whisper-rs-sys's OUT_DIR; nothing
# outside the build directory is touched.
#
# Each replacement is idempotent (project() runs more than once) and fails the build if neither
# the original nor the patched text is there, so a whisper-rs-sys upgrade cannot drop one silently.
# cargo does not track these files: after editing one, `cargo clean -p whisper-rs-sys`.

# cargo hands CMAKE_* variables to every build script that runs cmake: act on whisper.cpp only.
if(NOT CMAKE_PROJECT_NAME STREQUAL "whisper.cpp")
  return()
endif()

# Replaces every occurrence of OLD with NEW in FILE (relative to whisper.cpp's source), unless NEW
# is there already.
function(viva_patch file old new what)
  set(path "${CMAKE_SOURCE_DIR}/${file}")
  if(NOT EXISTS "${path}")
    message(FATAL_ERROR "viva: ${path} is gone; review the patch '${what}' in scripts/whisper-patches/")
  endif()
  file(READ "${path}" text)
  string(FIND "${text}" "${new}" done)
  if(NOT done EQUAL -1)
    return()
  endif()
  string(FIND "${text}" "${old}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "viva: ${path} changed where '${what}' applies; review scripts/whisper-patches/")
  endif()
  string(REPLACE "${old}" "${new}" text "${text}")
  file(WRITE "${path}" "${text}")
  message(STATUS "viva: patched ${file}: ${what}")
endfunction()

include("${CMAKE_CURRENT_LIST_DIR}/whisper-patches/amx-q8_0.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/whisper-patches/dtw-on-request.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/whisper-patches/draft-tokens.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/whisper-patches/encoder-abort.cmake")
