//! Streaming resampling to 16 kHz with `rubato`, aligned so output sample `n` is input time
//! `n / 16000` s: the resampler's own delay is dropped, which keeps timing on the audio clock.

use rubato::{FftFixedInOut, Resampler};

use super::SAMPLE_RATE;

/// Input frames per resampler call; about 64 ms at 16 kHz, short enough to stay live.
const CHUNK_FRAMES: usize = 1024;

pub struct StreamResampler {
    inner: Option<Resampler16k>,
}

struct Resampler16k {
    resampler: FftFixedInOut<f32>,
    pending: Vec<f32>,
    delay_to_drop: usize,
}

impl StreamResampler {
    /// A pass-through when the input already is 16 kHz.
    pub fn new(input_rate: u32) -> Self {
        if input_rate == SAMPLE_RATE {
            return Self { inner: None };
        }
        let resampler = FftFixedInOut::<f32>::new(input_rate as usize, SAMPLE_RATE as usize, CHUNK_FRAMES, 1)
            .expect("rates are validated at the protocol edge");
        let delay_to_drop = resampler.output_delay();
        Self { inner: Some(Resampler16k { resampler, pending: Vec::new(), delay_to_drop }) }
    }

    /// Feeds mono samples at the input rate; returns the 16 kHz samples now available.
    pub fn push(&mut self, input: &[f32]) -> Vec<f32> {
        let Some(inner) = self.inner.as_mut() else {
            return input.to_vec();
        };
        inner.pending.extend_from_slice(input);
        let mut out = Vec::new();
        loop {
            let needed = inner.resampler.input_frames_next();
            if inner.pending.len() < needed {
                break;
            }
            let chunk: Vec<f32> = inner.pending.drain(..needed).collect();
            let produced = inner.resampler.process(&[chunk], None).expect("chunk has the size asked for");
            inner.append_aligned(&produced[0], &mut out);
        }
        out
    }

    /// Pushes out what is still buffered (end of an answer): pads with silence to a whole chunk.
    pub fn flush(&mut self) -> Vec<f32> {
        let Some(inner) = self.inner.as_mut() else {
            return Vec::new();
        };
        if inner.pending.is_empty() {
            return Vec::new();
        }
        let real_input = inner.pending.len();
        let needed = inner.resampler.input_frames_next();
        let mut chunk: Vec<f32> = inner.pending.drain(..).collect();
        chunk.resize(needed, 0.0);
        let produced = inner.resampler.process(&[chunk], None).expect("chunk has the size asked for");
        let ratio = inner.resampler.output_frames_next() as f64 / needed as f64;
        let keep = (real_input as f64 * ratio).round() as usize;
        let mut out = Vec::new();
        inner.append_aligned(&produced[0][..keep.min(produced[0].len())], &mut out);
        out
    }
}

impl Resampler16k {
    fn append_aligned(&mut self, produced: &[f32], out: &mut Vec<f32>) {
        let skip = self.delay_to_drop.min(produced.len());
        self.delay_to_drop -= skip;
        out.extend_from_slice(&produced[skip..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, seconds: f32) -> Vec<f32> {
        (0..(rate as f32 * seconds) as usize)
            .map(|i| (i as f32 * 440.0 * 2.0 * std::f32::consts::PI / rate as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn sixteen_k_passes_through() {
        let mut r = StreamResampler::new(16_000);
        assert_eq!(r.push(&[0.1, 0.2]), vec![0.1, 0.2]);
        assert!(r.flush().is_empty());
    }

    #[test]
    fn keeps_duration_for_common_rates_in_odd_pieces() {
        for rate in [8_000, 22_050, 44_100, 48_000] {
            let input = tone(rate, 2.0);
            let mut r = StreamResampler::new(rate);
            let mut out = Vec::new();
            for piece in input.chunks(777) {
                out.extend(r.push(piece));
            }
            out.extend(r.flush());
            let expected = 32_000usize;
            let diff = (out.len() as i64 - expected as i64).abs();
            // The dropped start-up delay is not produced back at the end, so a few ms may be short.
            assert!(diff <= 16 * 80, "rate {rate}: got {} samples, expected about {expected}", out.len());
            let rms = (out[4000..28000].iter().map(|s| s * s).sum::<f32>() / 24000.0).sqrt();
            assert!((rms - 0.3535).abs() < 0.02, "rate {rate}: rms {rms}");
        }
    }
}
