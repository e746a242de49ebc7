# Lets whisper.cpp's AMX kernels take the q8_0 weight matrices of Whisper models.
#
# ggml's AMX buffer (Intel Xeon 4th gen and later: amx_int8) accepts a weight only when its row
# length K is a multiple of 2048, a guard marked "not sure if correct" upstream
# (ggml-org/llama.cpp#16315). Whisper's K is 384 to 5120, so on AMX machines every product ran on
# the AVX-512 kernels. For K a multiple of 64 the AMX q8_0 kernel agrees with the plain CPU
# kernels to about 3e-7 of the scale (the same integer products summed in another order):
# `amx_q8_0_matches_the_cpu_kernels_at_whispers_shapes` in tests/amx_kernels.rs checks it at
# Whisper's shapes. At K = 32 it returns garbage, hence the 64. Other types keep upstream's guard.
# On CPUs without AMX these kernels are not compiled in.

viva_patch("ggml/src/ggml-cpu/amx/amx.cpp"
  "op->src[0]->ne[0] % (TILE_K * 2 * 32) == 0 &&"
  "(op->src[0]->ne[0] % (TILE_K * 2 * 32) == 0 || (op->src[0]->type == GGML_TYPE_Q8_0 && op->src[0]->ne[0] % (TILE_K * 2) == 0)) && /* viva: q8_0 at Whisper's shapes */"
  "AMX kernels for q8_0 weights with K a multiple of 64")
