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

/// Converts `f32` samples in [-1, 1] to `i16` for storage, clamping overs. The exact inverse
/// of [`to_f32`] (and of the s16 frame decoder, both ÷ 32768), so 16 kHz s16 audio is stored
/// bit for bit as the client sent it and a resumed answer replays the very same samples.
/// (`as` saturates: +1.0 becomes 32767.)
pub fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples.iter().map(|s| (s.clamp(-1.0, 1.0) * 32768.0).round() as i16).collect()
}

pub fn to_f32(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&s| s as f32 / 32768.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i16_round_trips_exactly() {
        let all: Vec<i16> = (i16::MIN..=i16::MAX).collect();
        assert_eq!(to_i16(&to_f32(&all)), all);
        assert_eq!(to_i16(&[1.0, -1.0, 7.5, f32::NEG_INFINITY]), vec![32767, -32768, 32767, -32768]);
    }
}
