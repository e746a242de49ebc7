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
    input_rate: u32,
    resampler: FftFixedInOut<f32>,
    pending: Vec<f32>,
    delay_to_drop: usize,
    /// Samples taken in and given out since the start (or the last flush): the flush makes
    /// the output exactly as long as the input lasted, so no audio is lost at the end.
    input_frames: u64,
    output_frames: u64,
}

impl StreamResampler {
    /// A pass-through when the input already is 16 kHz.
    pub fn new(input_rate: u32) -> Self {
        if input_rate == SAMPLE_RATE {
            return Self { inner: None };
        }
        Self { inner: Some(Resampler16k::new(input_rate)) }
    }

    /// Feeds mono samples at the input rate; returns the 16 kHz samples now available.
    pub fn push(&mut self, input: &[f32]) -> Vec<f32> {
        let Some(inner) = self.inner.as_mut() else {
            return input.to_vec();
        };
        inner.pending.extend_from_slice(input);
        inner.input_frames += input.len() as u64;
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

    /// Pushes out what is still buffered (end of an answer), padding with silence until the
    /// resampler's delay is drained too: the output then lasts exactly as long as the input
    /// (rounded to a sample). The resampler starts afresh afterwards.
    pub fn flush(&mut self) -> Vec<f32> {
        let Some(inner) = self.inner.as_mut() else {
            return Vec::new();
        };
        let rate = u64::from(inner.input_rate);
        let target = (inner.input_frames * u64::from(SAMPLE_RATE) + rate / 2) / rate;
        let mut out = Vec::new();
        // Each round yields at least one chunk of output, so this ends; at most two rounds
        // (the delay is under one chunk).
        while inner.output_frames < target {
            let needed = inner.resampler.input_frames_next();
            let mut chunk: Vec<f32> = inner.pending.drain(..).collect();
            chunk.resize(needed, 0.0);
            let produced = inner.resampler.process(&[chunk], None).expect("chunk has the size asked for");
            inner.append_aligned(&produced[0], &mut out);
        }
        let surplus = (inner.output_frames - target) as usize;
        out.truncate(out.len().saturating_sub(surplus));
        *inner = Resampler16k::new(inner.input_rate);
        out
    }
}

impl Resampler16k {
    fn new(input_rate: u32) -> Self {
        let resampler = FftFixedInOut::<f32>::new(input_rate as usize, SAMPLE_RATE as usize, CHUNK_FRAMES, 1)
            .expect("rates are validated at the protocol edge");
        let delay_to_drop = resampler.output_delay();
        Self { input_rate, resampler, pending: Vec::new(), delay_to_drop, input_frames: 0, output_frames: 0 }
    }

    fn append_aligned(&mut self, produced: &[f32], out: &mut Vec<f32>) {
        let skip = self.delay_to_drop.min(produced.len());
        self.delay_to_drop -= skip;
        // Band-limited interpolation overshoots between full-scale samples (past ±2 on
        // full-scale noise, found by fuzzing); clip, so everything after the decoder stays in
        // [-1, 1] as the voice detector, whisper and storage expect.
        out.extend(produced[skip..].iter().map(|s| s.clamp(-1.0, 1.0)));
        self.output_frames += (produced.len() - skip) as u64;
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
        for rate in [8_000, 22_050, 44_100, 48_000, 47_999] {
            let input = tone(rate, 2.0);
            let mut r = StreamResampler::new(rate);
            let mut out = Vec::new();
            for piece in input.chunks(777) {
                out.extend(r.push(piece));
            }
            out.extend(r.flush());
            // The flush drains the resampler's delay: the length is exact.
            assert_eq!(out.len(), 32_000, "rate {rate}");
            // The last 100 ms are real audio too, not the padding.
            let tail = (out[30_400..].iter().map(|s| s * s).sum::<f32>() / 1600.0).sqrt();
            assert!((tail - 0.3535).abs() < 0.05, "rate {rate}: tail rms {tail}");
            let rms = (out[4000..28000].iter().map(|s| s * s).sum::<f32>() / 24000.0).sqrt();
            assert!((rms - 0.3535).abs() < 0.02, "rate {rate}: rms {rms}");
        }
    }
}
