# A call can be handed a draft of the tokens it will likely produce, and checks the draft in one
# decoder pass instead of one pass per token.
#
# Why: a live answer's open stretch is read again and again as it grows: a partial every second,
# then the pause decode or the stretch that closes the answer, each time over the same start of
# audio with the same prompt. Greedy decoding then mostly repeats the previous call's tokens
# before it reaches the new audio. Each decoding step is one decoder pass over one token (tiny.en:
# about 3.7 ms on two threads, most of it reading the weights once, the vocabulary's 51,864 rows
# included); a pass over 30 tokens at once costs little more than over one.
#
# With the patch, whisper_full checks the draft as it samples (greedy, one decoder, the call's
# first window only): where the last two tokens sampled are found in the draft, the draft's next
# tokens (up to 16) are fed after the last sampled one in one batch, whose logits (one row per
# position, causal as for the prompt) serve the next steps without another pass, as long as the
# tokens sampled are the ones fed. The first token that differs ends the batch: the positions fed
# past it are removed from the self-attention cache, and the draft is searched again from there
# (a reading that segments the audio differently, with another timestamp, rejoins it two tokens
# later). Every token is still sampled from logits of the tokens actually chosen before it, so the
# text is what the call would have given without a draft, give or take rounding between a batched
# and a one-token pass (tests/drafts.rs).
#
# The draft is per thread (viva calls whisper on the worker's own thread): viva_whisper_set_draft
# sets it for the next call, which takes it (a call without one decodes as before), and
# viva_whisper_produced reads back the tokens the last call's first window sampled, the draft for
# the call after it. viva_whisper_drafted counts the tokens the last call took from its draft.

viva_patch("src/whisper.cpp"
  "int whisper_full_with_state(
        struct whisper_context * ctx,
          struct whisper_state * state,
    struct whisper_full_params   params,
                   const float * samples,
                           int   n_samples) {
    // clear old results
"
  "// viva: draft tokens (scripts/whisper-patches/draft-tokens.cmake)
static thread_local std::vector<whisper_token> viva_draft;
static thread_local std::vector<whisper_token> viva_produced;
static thread_local int viva_drafted = 0;

extern \"C\" void viva_whisper_set_draft(const whisper_token * tokens, int n_tokens) {
    viva_draft.assign(tokens, tokens + std::max(0, n_tokens));
}

extern \"C\" int viva_whisper_produced(whisper_token * out, int capacity) {
    const int n = (int) viva_produced.size();
    std::copy(viva_produced.begin(), viva_produced.begin() + std::min(n, std::max(0, capacity)), out);
    return n;
}

extern \"C\" int viva_whisper_drafted(void) {
    return viva_drafted;
}

// The most draft tokens fed in one pass: each costs its row of logits (the vocabulary's 51,864
// rows times the token), wasted if the call leaves the draft before it.
static const int VIVA_MAX_DRAFT_BATCH = 16;
// How far ahead of the last token matched the draft is searched for where it goes on.
static const int VIVA_DRAFT_SEARCH = 32;

int whisper_full_with_state(
        struct whisper_context * ctx,
          struct whisper_state * state,
    struct whisper_full_params   params,
                   const float * samples,
                           int   n_samples) {
    // viva: this call's draft, taken so that it serves no other call
    std::vector<whisper_token> viva_call_draft;
    viva_call_draft.swap(viva_draft);
    viva_produced.clear();
    viva_drafted = 0;

    // clear old results
"
  "a call takes its draft")

viva_patch("src/whisper.cpp"
  "            for (int i = 0, n_max = whisper_n_text_ctx(ctx)/2 - 4; i < n_max; ++i) {
"
  "            // viva: draft tokens: the rows of the last batch fed at step viva_i0 serve the steps
            // after it for as long as the tokens sampled are the ones fed
            const bool viva_on = !viva_call_draft.empty() && seek == seek_start && n_decoders_cur == 1 &&
                params.strategy == whisper_sampling_strategy::WHISPER_SAMPLING_GREEDY;
            int viva_i0 = 0;      // the step whose batch fed the rows
            int viva_rows = 0;    // rows of that batch: row r serves step viva_i0 + r
            int viva_q0 = 0;      // the draft index of the batch's first token
            int viva_cursor = 0;  // where the next search of the draft starts
            std::vector<whisper_token> viva_fed(1 + VIVA_MAX_DRAFT_BATCH);

            for (int i = 0, n_max = whisper_n_text_ctx(ctx)/2 - 4; i < n_max; ++i) {
"
  "draft state per window")

viva_patch("src/whisper.cpp"
  "                    assert(batch.n_tokens > 0);

                    if (!whisper_decode_internal(*ctx, *state, state->batch, params.n_threads, false, params.abort_callback, params.abort_callback_user_data)) {
                        WHISPER_LOG_ERROR(\"%s: failed to decode\\n\", __func__);
                        return -9;
                    }
"
  "                    assert(batch.n_tokens > 0);

                    // viva: draft tokens
                    bool viva_reused = false;
                    if (viva_on) {
                        auto & decoder = state->decoders[0];
                        const auto & sampled = decoder.sequence.tokens;
                        const whisper_token token = sampled.back().id;
                        const int r = i - viva_i0;
                        if (r < viva_rows && viva_fed[r] == token) {
                            decoder.i_batch = r;
                            viva_reused = true;
                            viva_drafted++;
                            viva_cursor = viva_q0 + r + 1;
                        } else {
                            if (r < viva_rows) {
                                // Left the draft: the positions fed from this token's on are not the call's.
                                whisper_kv_cache_seq_rm(state->kv_self, 0, n_past, -1);
                            }
                            viva_rows = 0;
                            // Where the draft goes on after the last two tokens sampled: a reading that
                            // segments the audio differently (another timestamp) rejoins its draft two
                            // tokens later.
                            const int n_draft = (int) viva_call_draft.size();
                            const whisper_token prev = sampled.size() > 1 ? sampled[sampled.size() - 2].id : -1;
                            int q = -1;
                            for (int p = viva_cursor; p < n_draft - 1 && p <= viva_cursor + VIVA_DRAFT_SEARCH; ++p) {
                                if (viva_call_draft[p] == token && (i == 0 ? p == 0 : p > 0 && viva_call_draft[p - 1] == prev)) {
                                    q = p;
                                    break;
                                }
                            }
                            const int m = q < 0 ? 0 : std::min({ n_draft - 1 - q, VIVA_MAX_DRAFT_BATCH,
                                                                 n_max - 1 - i, whisper_n_text_ctx(ctx) - 1 - n_past });
                            for (int k = 1; k <= m; ++k) {
                                viva_fed[k]          = viva_call_draft[q + k];
                                batch.token   [k]    = viva_call_draft[q + k];
                                batch.pos     [k]    = n_past + k;
                                batch.n_seq_id[k]    = 1;
                                batch.seq_id  [k][0] = 0;
                                batch.logits  [k]    = 1;
                            }
                            if (m > 0) {
                                batch.n_tokens = 1 + m;
                                viva_i0 = i;
                                viva_rows = 1 + m;
                                viva_q0 = q;
                                viva_cursor = q + 1;
                            }
                        }
                    }

                    if (!viva_reused && !whisper_decode_internal(*ctx, *state, state->batch, params.n_threads, false, params.abort_callback, params.abort_callback_user_data)) {
                        WHISPER_LOG_ERROR(\"%s: failed to decode\\n\", __func__);
                        return -9;
                    }
"
  "decoding steps served by the draft")

viva_patch("src/whisper.cpp"
  "                    decoder.sequence.tokens.resize(decoder.sequence.result_len);
"
  "                    // viva: the first window's tokens as sampled, the next call's draft
                    if (seek == seek_start && n_decoders_cur == 1) {
                        viva_produced.clear();
                        for (const auto & t : decoder.sequence.tokens) {
                            if (t.id != whisper_token_eot(ctx)) {
                                viva_produced.push_back(t.id);
                            }
                        }
                    }
                    decoder.sequence.tokens.resize(decoder.sequence.result_len);
"
  "the tokens sampled, for the next call")
