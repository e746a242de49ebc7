# Word times by DTW only in the calls that ask for token times.
#
# whisper.cpp's DTW alignment is a setting of the context (the alignment heads), so once it is on,
# every call pays for it after decoding: one more decoder pass over the call's tokens with the
# heads' cross-attention kept, then a median filter and the alignment itself. viva needs DTW times
# only for the words of live partials (the calls that set `token_timestamps`); finals, pause
# decodes and uploads read segments. Measured on an AMD EPYC: bench viva / peer on uploads 0.79
# -> 0.62, with the same text, since DTW only times tokens already chosen.
#
# With the patch, a context with DTW runs it only when the call sets `token_timestamps`; a call
# without leaves every token's `t_dtw` at -1 and hands its segments to `new_segment_callback` as
# it goes, as a context without DTW does. tests/dtw_on_request.rs checks both sides and fails
# without the patch.

viva_patch("src/whisper.cpp"
  "if (ctx->params.dtw_token_timestamps && n_segments) {"
  "if (ctx->params.dtw_token_timestamps && params.token_timestamps && n_segments) { // viva: DTW on request"
  "DTW only in calls that ask for token times")

viva_patch("src/whisper.cpp"
  "if (params.new_segment_callback && !ctx->params.dtw_token_timestamps) {"
  "if (params.new_segment_callback && !(ctx->params.dtw_token_timestamps && params.token_timestamps)) {"
  "segment callbacks as they come when DTW does not run")
