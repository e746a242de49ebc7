# Lets whisper.cpp's AMX kernels take the q8_0 weight matrices of Whisper models.
#
# cargo passes this file to whisper.cpp's cmake as CMAKE_PROJECT_INCLUDE (see .cargo/config.toml),
# so it runs at configure time on the copy of whisper.cpp that whisper-rs-sys builds in its OUT_DIR;
# nothing outside the build directory is touched.
#
# ggml's AMX buffer (Intel Xeon 4th gen and later: amx_int8) accepts a weight only when its row
# length K is a multiple of 2048, a guard marked "not sure if correct" upstream
# (ggml-org/llama.cpp#16315). Whisper's K is 384 to 5120, so on AMX machines every product ran on
# the AVX-512 kernels. For K a multiple of 64 the AMX q8_0 kernel agrees with the plain CPU
# kernels to about 3e-7 of the scale (the same integer products summed in another order):
# `amx_q8_0_matches_the_cpu_kernels_at_whispers_shapes` in tests/amx_kernels.rs checks it at
# Whisper's shapes. At K = 32 it returns garbage, hence the 64. Other types keep upstream's guard.
#
# The replacement is idempotent (project() runs more than once) and fails the build if neither the
# original nor the patched text is there, so a whisper-rs-sys upgrade cannot drop it silently.

# cargo hands CMAKE_* variables to every build script that runs cmake: act on whisper.cpp only.
if(NOT CMAKE_PROJECT_NAME STREQUAL "whisper.cpp")
  return()
endif()

set(_viva_amx_file "${CMAKE_SOURCE_DIR}/ggml/src/ggml-cpu/amx/amx.cpp")
if(NOT EXISTS "${_viva_amx_file}")
  message(FATAL_ERROR "viva: ${_viva_amx_file} is gone; review scripts/whisper-amx-q8_0.cmake")
endif()

file(READ "${_viva_amx_file}" _viva_amx_text)
set(_viva_amx_old "op->src[0]->ne[0] % (TILE_K * 2 * 32) == 0 &&")
set(_viva_amx_new "(op->src[0]->ne[0] % (TILE_K * 2 * 32) == 0 || (op->src[0]->type == GGML_TYPE_Q8_0 && op->src[0]->ne[0] % (TILE_K * 2) == 0)) && /* viva: q8_0 at Whisper's shapes */")
string(FIND "${_viva_amx_text}" "${_viva_amx_new}" _viva_amx_done)
if(_viva_amx_done EQUAL -1)
  string(FIND "${_viva_amx_text}" "${_viva_amx_old}" _viva_amx_at)
  if(_viva_amx_at EQUAL -1)
    message(FATAL_ERROR "viva: the AMX guard in ${_viva_amx_file} changed; review scripts/whisper-amx-q8_0.cmake")
  endif()
  string(REPLACE "${_viva_amx_old}" "${_viva_amx_new}" _viva_amx_text "${_viva_amx_text}")
  file(WRITE "${_viva_amx_file}" "${_viva_amx_text}")
  message(STATUS "viva: AMX kernels enabled for q8_0 weights with K a multiple of 64")
endif()
