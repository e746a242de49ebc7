//! Decoding one binary frame of client audio into mono `f32` samples.

use crate::protocol::{AudioSpec, Encoding};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("audio frame of {len} bytes is not a whole number of {frame_bytes}-byte sample frames")]
    PartialFrame { len: usize, frame_bytes: usize },
}

/// Decodes little-endian interleaved samples and mixes stereo down to mono by averaging.
/// Non-finite floats (NaN, ±inf) become silence so one bad sample cannot poison whisper.
pub fn decode_frame(spec: &AudioSpec, bytes: &[u8]) -> Result<Vec<f32>, FrameError> {
    let sample_bytes = spec.encoding.bytes_per_sample();
    let channels = spec.channels as usize;
    let frame_bytes = sample_bytes * channels;
    if !bytes.len().is_multiple_of(frame_bytes) {
        return Err(FrameError::PartialFrame { len: bytes.len(), frame_bytes });
    }
    let samples = bytes.chunks_exact(sample_bytes).map(|b| match spec.encoding {
        Encoding::PcmS16le => i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
        Encoding::PcmF32le => {
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if v.is_finite() {
                v.clamp(-1.0, 1.0)
            } else {
                0.0
            }
        }
    });
    if channels == 1 {
        return Ok(samples.collect());
    }
    let interleaved: Vec<f32> = samples.collect();
    Ok(interleaved.chunks_exact(channels).map(|f| f.iter().sum::<f32>() / channels as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(encoding: Encoding, channels: u16) -> AudioSpec {
        AudioSpec { encoding, sample_rate: 16_000, channels }
    }

    #[test]
    fn s16_mono_and_stereo() {
        let bytes: Vec<u8> = [16384i16, -16384].iter().flat_map(|s| s.to_le_bytes()).collect();
        assert_eq!(decode_frame(&spec(Encoding::PcmS16le, 1), &bytes).unwrap(), vec![0.5, -0.5]);
        assert_eq!(decode_frame(&spec(Encoding::PcmS16le, 2), &bytes).unwrap(), vec![0.0]);
    }

    #[test]
    fn f32_with_non_finite_values() {
        let bytes: Vec<u8> = [0.25f32, f32::NAN, 2.0].iter().flat_map(|s| s.to_le_bytes()).collect();
        assert_eq!(decode_frame(&spec(Encoding::PcmF32le, 1), &bytes).unwrap(), vec![0.25, 0.0, 1.0]);
    }

    #[test]
    fn partial_frames_are_refused() {
        assert!(decode_frame(&spec(Encoding::PcmS16le, 1), &[0, 1, 2]).is_err());
        assert!(decode_frame(&spec(Encoding::PcmS16le, 2), &[0, 1]).is_err());
        assert!(decode_frame(&spec(Encoding::PcmF32le, 1), &[0, 1, 2, 3, 4, 5]).is_err());
        assert_eq!(decode_frame(&spec(Encoding::PcmF32le, 2), &[]).unwrap(), Vec::<f32>::new());
    }
}
