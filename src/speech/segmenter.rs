//! The segmenter: a small state machine over 16 ms voice-activity frames.

use earshot::Detector;

/// earshot classifies frames of exactly 256 samples (16 ms at 16 kHz).
pub const VAD_FRAME: usize = 256;

#[derive(Debug, Clone, Copy)]
pub struct SegmenterConfig {
    /// Score at or above which a frame keeps an open stretch going.
    pub threshold: f32,
    /// Higher score every onset frame must reach to open a stretch: white noise scores up to
    /// about 0.66 with earshot, speech mostly above 0.7 (hysteresis, as in most VADs).
    pub onset_threshold: f32,
    /// Consecutive onset frames needed to open a stretch (rejects clicks and bumps).
    pub min_onset_frames: usize,
    /// Silence that closes a stretch; shorter pauses stay inside it.
    pub close_after_silence_ms: u64,
    /// Past this length a shorter pause closes a stretch (`soft_close_after_silence_ms`), so a
    /// long monologue still goes out in pieces, cut between phrases.
    pub soft_max_stretch_ms: u64,
    pub soft_close_after_silence_ms: u64,
    /// Longest stretch before it is cut, so one whisper call stays well under its 30 s window.
    /// The cut falls at the quietest frame heard since the soft maximum, not at this instant,
    /// which is most likely inside a word.
    pub max_stretch_ms: u64,
}

impl SegmenterConfig {
    pub const DEFAULT_SOFT_MAX_MS: u64 = 12_000;
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            onset_threshold: 0.7,
            min_onset_frames: 3,
            close_after_silence_ms: 600,
            soft_max_stretch_ms: Self::DEFAULT_SOFT_MAX_MS,
            soft_close_after_silence_ms: 150,
            max_stretch_ms: 20_000,
        }
    }
}

/// One stretch of speech, in samples from the start of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    pub start_sample: u64,
    /// End of the last voiced frame.
    pub end_sample: u64,
    /// Samples in voiced frames (pauses inside the stretch excluded).
    pub voiced_samples: u64,
    /// Longest silence inside the stretch.
    pub longest_gap_samples: u64,
    /// Silence heard after the end when the stretch closed: 0 when it was cut for length while
    /// speech went on (the audio after it then belongs to the next stretch).
    pub silence_after_samples: u64,
}

#[derive(Debug, Clone, Copy)]
struct Onset {
    start_sample: u64,
    voiced_frames: usize,
}

/// The quietest frame of the open stretch past the soft maximum: where a stretch that reaches the
/// maximum is cut, with what the stretch held before it.
#[derive(Debug, Clone, Copy)]
struct QuietFrame {
    /// The frame's middle, where the cut goes.
    at_sample: u64,
    energy: f32,
    /// The open stretch's figures just before the frame.
    voiced_before: u64,
    longest_gap_before: u64,
    /// Longest gap inside the stretch after the frame.
    longest_gap_after: u64,
}

pub struct Segmenter {
    config: SegmenterConfig,
    /// The open stretch's quietest frame past the soft maximum.
    quiet: Option<QuietFrame>,
    detector: Box<Detector>,
    /// Samples not yet filling a whole VAD frame.
    carry: Vec<f32>,
    /// Samples classified so far: the start of the next frame.
    position: u64,
    onset: Option<Onset>,
    open: Option<Stretch>,
}

impl Segmenter {
    pub fn new(config: SegmenterConfig) -> Self {
        Self {
            config,
            quiet: None,
            detector: Detector::default_boxed(),
            carry: Vec::new(),
            position: 0,
            onset: None,
            open: None,
        }
    }

    /// Samples classified so far (the segmenter's position on the answer's clock).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The stretch still open, if the candidate is speaking now.
    pub fn open_stretch(&self) -> Option<Stretch> {
        self.open
    }

    /// Feeds 16 kHz samples; returns the stretches that closed.
    pub fn push(&mut self, samples: &[f32]) -> Vec<Stretch> {
        let mut closed = Vec::new();
        self.carry.extend_from_slice(samples);
        let whole = self.carry.len() / VAD_FRAME * VAD_FRAME;
        let frames: Vec<f32> = self.carry.drain(..whole).collect();
        for frame in frames.chunks_exact(VAD_FRAME) {
            let score = self.detector.predict_f32(frame);
            let voiced =
                if self.open.is_some() { score >= self.config.threshold } else { score >= self.config.onset_threshold };
            let energy = frame.iter().map(|x| x * x).sum::<f32>();
            if let Some(stretch) = self.step(voiced, energy) {
                closed.push(stretch);
            }
        }
        closed
    }

    /// Ends the audio: closes any open stretch (a short onset counts, the speaker may have been cut).
    pub fn finish(&mut self) -> Option<Stretch> {
        self.onset = None;
        self.quiet = None;
        let position = self.position;
        self.open.take().map(|mut s| {
            s.silence_after_samples = position - s.end_sample;
            s
        })
    }

    fn step(&mut self, voiced: bool, energy: f32) -> Option<Stretch> {
        let frame_start = self.position;
        let frame_end = frame_start + VAD_FRAME as u64;
        self.position = frame_end;
        let ms = |samples: u64| samples / 16;

        if let Some(open) = self.open.as_mut() {
            if ms(frame_start - open.start_sample) >= self.config.soft_max_stretch_ms
                && self.quiet.is_none_or(|q| energy < q.energy)
            {
                self.quiet = Some(QuietFrame {
                    at_sample: frame_start + VAD_FRAME as u64 / 2,
                    energy,
                    voiced_before: open.voiced_samples,
                    longest_gap_before: open.longest_gap_samples,
                    longest_gap_after: 0,
                });
            }
            if voiced {
                let gap = frame_start - open.end_sample;
                open.longest_gap_samples = open.longest_gap_samples.max(gap);
                // A gap counts for the part after the quiet frame only if it starts after it.
                if let Some(quiet) = self.quiet.as_mut().filter(|q| q.at_sample <= open.end_sample) {
                    quiet.longest_gap_after = quiet.longest_gap_after.max(gap);
                }
                open.end_sample = frame_end;
                open.voiced_samples += VAD_FRAME as u64;
                if ms(open.end_sample - open.start_sample) >= self.config.max_stretch_ms {
                    return self.cut_at_quietest();
                }
                return None;
            }
            let silence = ms(frame_end - open.end_sample);
            let long = ms(open.end_sample - open.start_sample) >= self.config.soft_max_stretch_ms;
            if silence >= self.config.close_after_silence_ms
                || (long && silence >= self.config.soft_close_after_silence_ms)
            {
                open.silence_after_samples = frame_end - open.end_sample;
                self.quiet = None;
                return self.open.take();
            }
            return None;
        }

        match (voiced, self.onset.as_mut()) {
            (true, Some(onset)) => {
                onset.voiced_frames += 1;
                if onset.voiced_frames >= self.config.min_onset_frames {
                    let samples = (onset.voiced_frames * VAD_FRAME) as u64;
                    self.open = Some(Stretch {
                        start_sample: onset.start_sample,
                        end_sample: frame_end,
                        voiced_samples: samples,
                        longest_gap_samples: 0,
                        silence_after_samples: 0,
                    });
                    self.onset = None;
                }
            }
            (true, None) => {
                self.onset = Some(Onset { start_sample: frame_start, voiced_frames: 1 });
                if self.config.min_onset_frames <= 1 {
                    return self.step_open_now(frame_start, frame_end);
                }
            }
            (false, _) => self.onset = None,
        }
        None
    }

    /// Closes the open stretch, at its maximum length, at the quietest frame past the soft
    /// maximum, most likely between two words (a cut inside a word loses it on both sides); the
    /// speech after that frame opens the next stretch.
    fn cut_at_quietest(&mut self) -> Option<Stretch> {
        let open = self.open.take()?;
        let Some(quiet) = self.quiet.take() else { return Some(open) };
        let closed = Stretch {
            start_sample: open.start_sample,
            end_sample: quiet.at_sample,
            voiced_samples: quiet.voiced_before,
            longest_gap_samples: quiet.longest_gap_before,
            silence_after_samples: 0,
        };
        self.open = Some(Stretch {
            start_sample: closed.end_sample,
            end_sample: open.end_sample,
            voiced_samples: open.voiced_samples - quiet.voiced_before,
            longest_gap_samples: quiet.longest_gap_after,
            silence_after_samples: 0,
        });
        Some(closed)
    }

    fn step_open_now(&mut self, start: u64, end: u64) -> Option<Stretch> {
        self.onset = None;
        self.open = Some(Stretch {
            start_sample: start,
            end_sample: end,
            voiced_samples: end - start,
            longest_gap_samples: 0,
            silence_after_samples: 0,
        });
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segmenter() -> Segmenter {
        Segmenter::new(SegmenterConfig::default())
    }

    fn frames(seg: &mut Segmenter, pattern: &[(bool, usize)]) -> Vec<Stretch> {
        let mut out = Vec::new();
        for &(voiced, n) in pattern {
            for _ in 0..n {
                out.extend(seg.step(voiced, if voiced { 1.0 } else { 0.0 }));
            }
        }
        out
    }

    #[test]
    fn opens_after_onset_and_closes_after_silence() {
        let mut seg = segmenter();
        // 10 silent frames, 2 voiced (too short), silence, then 50 voiced frames and 40 silent.
        let closed = frames(&mut seg, &[(false, 10), (true, 2), (false, 5), (true, 50), (false, 40)]);
        assert_eq!(closed.len(), 1);
        let s = closed[0];
        assert_eq!(s.start_sample, 17 * 256);
        assert_eq!(s.end_sample, 67 * 256);
        assert_eq!(s.voiced_samples, 50 * 256);
        assert!(seg.open_stretch().is_none());
    }

    #[test]
    fn short_pauses_stay_inside_a_stretch_and_are_measured() {
        let mut seg = segmenter();
        let closed = frames(&mut seg, &[(true, 20), (false, 20), (true, 20), (false, 60)]);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].longest_gap_samples, 20 * 256);
        assert_eq!(closed[0].voiced_samples, 40 * 256);
    }

    #[test]
    fn long_speech_is_cut_at_the_maximum() {
        let mut seg = Segmenter::new(SegmenterConfig { max_stretch_ms: 1_600, ..Default::default() });
        let closed = frames(&mut seg, &[(true, 250)]);
        assert_eq!(closed.len(), 2);
        assert_eq!(closed[0].end_sample - closed[0].start_sample, 100 * 256);
        assert_eq!(closed[1].start_sample, closed[0].end_sample);
        assert_eq!(closed[0].silence_after_samples, 0);
    }

    #[test]
    fn at_the_maximum_the_cut_falls_at_the_quietest_frame_past_the_soft_maximum() {
        let mut seg =
            Segmenter::new(SegmenterConfig { soft_max_stretch_ms: 1_600, max_stretch_ms: 3_200, ..Default::default() });
        let mut closed = Vec::new();
        // Speech all along, no pause long enough to close the stretch; the quietest frame is
        // frame 90 (before the soft maximum at frame 100, so not a cut), then frame 150, a short
        // gap with frame 160 (quieter), then 170 (quiet, but less so).
        for i in 0..250u64 {
            let (voiced, energy) = match i {
                90 => (true, 0.01),
                150 => (true, 0.2),
                159..=161 => (false, if i == 160 { 0.05 } else { 0.3 }),
                170 => (true, 0.1),
                _ => (true, 1.0),
            };
            closed.extend(seg.step(voiced, energy));
        }
        assert_eq!(closed.len(), 1, "{closed:?}");
        let cut = 160 * 256 + 128;
        assert_eq!(closed[0].start_sample, 0);
        assert_eq!(closed[0].end_sample, cut);
        assert_eq!(closed[0].voiced_samples, 159 * 256);
        assert_eq!(closed[0].silence_after_samples, 0);
        // The speech after the cut is the next stretch, still open, with its own figures.
        let open = seg.open_stretch().expect("the rest is open");
        assert_eq!(open.start_sample, cut);
        assert_eq!(open.end_sample, 250 * 256);
        assert_eq!(open.voiced_samples, (250 - 162) * 256);
        assert_eq!(open.longest_gap_samples, 0);
    }

    #[test]
    fn past_the_soft_maximum_a_short_pause_closes_the_stretch() {
        let mut seg = Segmenter::new(SegmenterConfig { soft_max_stretch_ms: 1_600, ..Default::default() });
        // Before the soft maximum a 160 ms pause stays inside; after it, the next one closes.
        let closed = frames(&mut seg, &[(true, 50), (false, 10), (true, 60), (false, 10), (true, 10)]);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].end_sample, 120 * 256);
        assert_eq!(closed[0].silence_after_samples, 10 * 256);
        let ordinary = frames(&mut segmenter(), &[(true, 20), (false, 60)]);
        assert_eq!(ordinary[0].silence_after_samples, 38 * 256);
    }

    #[test]
    fn finish_returns_the_open_stretch() {
        let mut seg = segmenter();
        frames(&mut seg, &[(true, 10)]);
        let s = seg.finish().unwrap();
        assert_eq!((s.start_sample, s.end_sample), (0, 2560));
        assert!(seg.finish().is_none());
    }

    #[test]
    fn silence_and_noise_open_nothing() {
        let mut seg = segmenter();
        assert!(seg.push(&vec![0.0; 16_000 * 3]).is_empty());
        // Deterministic white noise from a small LCG.
        let mut x: u32 = 12345;
        let noise: Vec<f32> = (0..16_000 * 3)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((x >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.2
            })
            .collect();
        assert!(seg.push(&noise).is_empty());
        assert!(seg.finish().is_none());
        assert_eq!(seg.position(), 16_000 * 6 / 256 * 256);
    }
}
