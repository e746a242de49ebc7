//! Drafts for whisper calls: the tokens a recent call sampled from the same start of audio with
//! the same prompt. A live stretch is read again every second as it grows (partials, then the
//! pause decode or the final), and greedy decoding mostly repeats the last reading's tokens before
//! it reaches the new audio; whisper checks a draft in one decoder pass instead of one pass per
//! token (`scripts/whisper-patches/draft-tokens.cmake`). A wrong draft costs one pass and changes
//! nothing else: every token is still whisper's own choice.
//!
//! Shared by all workers, so a stretch's next reading finds its draft whichever worker takes it.

use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use hashlink::LruCache;

/// How much of a clip's start identifies it: a second of audio (clips are cut from the same
/// stream at the same sample, so a longer reading of the same stretch starts with the same
/// samples).
const KEY_SAMPLES: usize = 16_000;

/// Drafts kept: each live candidate has one or two stretches being read at a time.
pub const DRAFTS_KEPT: usize = 64;

/// Token ids of recent whisper calls, by what they read.
pub struct Drafts {
    cache: Mutex<LruCache<u64, Vec<i32>>>,
}

impl Drafts {
    pub fn new(capacity: usize) -> Self {
        Self { cache: Mutex::new(LruCache::new(capacity.max(1))) }
    }

    /// What a call reads, and for whom: its scope (one live stream), its prompt and the start of
    /// its audio, bit for bit.
    pub fn key(scope: u64, prompt: Option<&str>, audio: &[f32]) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        scope.hash(&mut hasher);
        prompt.hash(&mut hasher);
        for sample in &audio[..audio.len().min(KEY_SAMPLES)] {
            sample.to_bits().hash(&mut hasher);
        }
        hasher.finish()
    }

    /// The tokens the last call with this key sampled, if it is still kept.
    pub fn get(&self, key: u64) -> Option<Vec<i32>> {
        self.cache.lock().ok()?.get(&key).cloned()
    }

    /// Keeps a call's tokens as the draft for the next call with the same key.
    pub fn put(&self, key: u64, tokens: Vec<i32>) {
        if tokens.is_empty() {
            return;
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_longer_reading_of_the_same_start_finds_the_draft_and_another_start_does_not() {
        let drafts = Drafts::new(2);
        let stretch: Vec<f32> = (0..40_000).map(|i| (i as f32 * 0.01).sin()).collect();
        let first = Drafts::key(1, Some("Uh."), &stretch[..20_000]);
        drafts.put(first, vec![50363, 314, 1101]);
        // The same stretch a second later: same start, same prompt.
        assert_eq!(drafts.get(Drafts::key(1, Some("Uh."), &stretch)), Some(vec![50363, 314, 1101]));
        // Another stream, another prompt, or audio that starts elsewhere, is another reading.
        assert_eq!(drafts.get(Drafts::key(2, Some("Uh."), &stretch)), None);
        assert_eq!(drafts.get(Drafts::key(1, Some("Uh. We paged."), &stretch)), None);
        assert_eq!(drafts.get(Drafts::key(1, Some("Uh."), &stretch[160..])), None);
        // Nothing sampled, nothing kept.
        let other = Drafts::key(1, None, &stretch);
        drafts.put(other, Vec::new());
        assert_eq!(drafts.get(other), None);
    }

    #[test]
    fn the_least_recently_used_draft_goes_first() {
        let drafts = Drafts::new(2);
        let clip = |n: usize| vec![n as f32; 100];
        for n in 0..3 {
            drafts.put(Drafts::key(1, None, &clip(n)), vec![n as i32]);
        }
        assert_eq!(drafts.get(Drafts::key(1, None, &clip(0))), None);
        assert_eq!(drafts.get(Drafts::key(1, None, &clip(2))), Some(vec![2]));
    }
}
