# The encoder gives way when the call is asked to stop, not only once it has run to the end.
#
# whisper.cpp asks a call's abort callback after the whole encoder (conv, encoder, cross graphs)
# and after each decoding step. A decoding step takes a few milliseconds, but the encoder of one
# window takes tens to hundreds, and viva's engine has one worker by default: a candidate who ends
# an answer while a partial's encoder runs waited for the rest of that encoder before the closing
# stretch could start (see `src/transcribe/engine.rs`: a partial gives way to a closing stretch).
#
# With the patch, whisper_encode_internal hands the call's abort callback to its backends for the
# length of the encoder, so ggml's CPU backend asks it before each graph node and stops at once;
# the encoder then fails as it would have after running to the end, and whisper_full returns its
# "failed to encode" error, which viva already reads as "gave way" (the caller asked). The
# callback is reset on the way out: its data lives only as long as the call, and the decoder
# keeps asking between steps as before. tests/encoder_abort.rs
# (`the_encoder_asks_whether_to_give_way`) counts the callback's questions in one call and fails
# without the patch.

viva_patch("src/whisper.cpp"
  "                   void * abort_callback_data) {
    const int64_t t_start_us = ggml_time_us();

    // conv
"
  "                   void * abort_callback_data) {
    const int64_t t_start_us = ggml_time_us();

    // viva: the encoder stops as soon as the call is asked to (scripts/whisper-patches/encoder-abort.cmake)
    struct viva_encoder_abort {
        std::vector<ggml_backend_t> & backends;
        viva_encoder_abort(std::vector<ggml_backend_t> & b, ggml_abort_callback cb, void * data) : backends(b) { set(cb, data); }
        ~viva_encoder_abort() { set(nullptr, nullptr); }
        void set(ggml_abort_callback cb, void * data) {
            for (auto * backend : backends) {
                ggml_backend_dev_t dev = ggml_backend_get_device(backend);
                ggml_backend_reg_t reg = dev ? ggml_backend_dev_backend_reg(dev) : nullptr;
                auto * fn = reg ? (ggml_backend_set_abort_callback_t) ggml_backend_reg_get_proc_address(reg, \"ggml_backend_set_abort_callback\") : nullptr;
                if (fn) { fn(backend, cb, data); }
            }
        }
    } viva_abort(wstate.backends, abort_callback, abort_callback_data);

    // conv
"
  "the encoder gives way when asked")
