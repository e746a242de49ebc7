//! Audio conversion: client PCM → 16 kHz mono `f32`, the one format the rest of viva uses, and
//! 16 kHz mono WAV for playback. Pure code, unit-tested here.

mod decode;
mod resample;
mod wav;

pub use decode::{decode_frame, FrameError};
pub use resample::StreamResampler;
pub use wav::{encode_wav, read_wav_mono_16k, WavError};

/// Sample rate of everything after the decoder: whisper and the voice detector both want it.
pub const SAMPLE_RATE: u32 = 16_000;

/// Samples per millisecond at [`SAMPLE_RATE`].
pub const SAMPLES_PER_MS: u64 = (SAMPLE_RATE / 1000) as u64;

pub fn samples_to_ms(samples: u64) -> u64 {
    samples / SAMPLES_PER_MS
}

pub fn ms_to_samples(ms: u64) -> u64 {
    ms * SAMPLES_PER_MS
}

/// Converts `f32` samples in [-1, 1] to `i16` for storage, clamping overs.
pub fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples.iter().map(|s| (s.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16).collect()
}

pub fn to_f32(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&s| s as f32 / 32768.0).collect()
}
