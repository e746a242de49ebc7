//! The live state of one answer: its audio, the segmenter, the segments so far and the clock.

use crate::audio::{ms_to_samples, samples_to_ms, to_f32};
use crate::config::Limits;
use crate::protocol::{Answer, Question, Segment};
use crate::speech::{Segmenter, SegmenterConfig, Stretch};
use crate::transcribe::TextPiece;

use super::agreement::{self, AgreedPrefix, Hypothesis};
use super::{compute_timing, speech_figures};

/// Audio kept before and after a stretch when it is transcribed: voice detectors clip the
/// soft start and end of words, whisper needs them.
const PAD_BEFORE_SAMPLES: u64 = 16 * 200;
const PAD_AFTER_SAMPLES: u64 = 16 * 300;
/// A partial hypothesis is offered this often (ms of audio) while a stretch is open.
const PARTIAL_EVERY_SAMPLES: u64 = 16 * 1000;

fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|x| x * x).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}

/// Whether the audio around `at_ms` (in `clip`) is a pause: its level over ±`QUIET_SPAN_MS` is
/// at most `QUIET_RATIO` of the clip's (`clip_level`), so a cut there splits no word.
fn is_quiet(clip: &[f32], clip_level: f32, at_ms: u64) -> bool {
    let at = ms_to_samples(at_ms) as usize;
    let span = ms_to_samples(QUIET_SPAN_MS) as usize;
    if at + span > clip.len() || at < span {
        return false;
    }
    rms(&clip[at - span..at + span]) <= QUIET_RATIO * clip_level
}
const QUIET_SPAN_MS: u64 = 60;
const QUIET_RATIO: f32 = 0.1;
/// When a partial reads the settled last word differently, its words after the cut are those
/// ending at least this far past it (see `agreement::words_after`).
const AFTER_CUT_MS: u64 = 150;

/// A stretch of speech that produced text, for timing; ms from the question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpokenStretch {
    pub start_ms: u64,
    pub end_ms: u64,
    pub voiced_ms: u64,
    pub longest_gap_ms: u64,
}

impl From<Stretch> for SpokenStretch {
    fn from(s: Stretch) -> Self {
        Self {
            start_ms: samples_to_ms(s.start_sample),
            end_ms: samples_to_ms(s.end_sample),
            voiced_ms: samples_to_ms(s.voiced_samples),
            longest_gap_ms: samples_to_ms(s.longest_gap_samples),
        }
    }
}

/// Audio to transcribe for one stretch (closed, or still open for a partial).
#[derive(Debug, Clone)]
pub struct StretchJob {
    pub stretch: Stretch,
    pub clip_start_sample: u64,
    /// The clip's length in samples (`audio` is handed to the engine, this stays).
    pub clip_samples: u64,
    pub audio: Vec<f32>,
}

#[derive(Debug)]
pub enum LiveEvent {
    /// A stretch closed: transcribe it and hand the text to [`LiveAnswer::add_transcription`].
    Transcribe(StretchJob),
    TimeWarning {
        remaining_ms: u64,
    },
    /// The time limit is reached: the answer must be finalised now; later audio is ignored.
    LimitReached,
}

pub struct LiveAnswer {
    pub index: usize,
    pub asked_at_ms: u64,
    question_limit_ms: Option<u64>,
    limit_samples: u64,
    warn_at_samples: u64,
    warned: bool,
    limit_reached: bool,
    audio: Vec<f32>,
    segmenter: Segmenter,
    stored_samples: u64,
    /// On a resumed answer, stretches ending at or before this were handled before the drop.
    done_until_sample: u64,
    /// End of the last closed stretch: the next clip's context starts no earlier.
    previous_stretch_end: u64,
    segments: Vec<Segment>,
    spoken: Vec<SpokenStretch>,
    next_partial_at: u64,
    /// End of the open stretch whose pause-time job was last handed out (see `pause_job`).
    pause_job_for: Option<u64>,
    /// The last two partial transcriptions of the open stretch (see [`agreement`]).
    hypotheses: Vec<Hypothesis>,
    /// The longest prefix two successive partials agreed on, for the clip starting there.
    settled: Option<(u64, AgreedPrefix)>,
}

impl LiveAnswer {
    pub fn new(
        index: usize,
        asked_at_ms: u64,
        question_limit_ms: Option<u64>,
        max_answer_ms: u64,
        warning_ms: u64,
    ) -> Self {
        let limit_ms = question_limit_ms.unwrap_or(max_answer_ms).min(max_answer_ms);
        // Short limits get their warning half-way rather than before the question starts.
        let warn_ms = if limit_ms > warning_ms * 2 { limit_ms - warning_ms } else { limit_ms / 2 };
        Self {
            index,
            asked_at_ms,
            question_limit_ms,
            limit_samples: ms_to_samples(limit_ms),
            warn_at_samples: ms_to_samples(warn_ms),
            warned: false,
            limit_reached: false,
            audio: Vec::new(),
            segmenter: Segmenter::new(SegmenterConfig::default()),
            stored_samples: 0,
            done_until_sample: 0,
            previous_stretch_end: 0,
            segments: Vec::new(),
            spoken: Vec::new(),
            next_partial_at: PARTIAL_EVERY_SAMPLES,
            pause_job_for: None,
            hypotheses: Vec::new(),
            settled: None,
        }
    }

    /// An answer to `question`, under the server's answer-length and warning settings.
    pub fn for_question(question: &Question, asked_at_ms: u64, limits: &Limits) -> Self {
        let mut answer = Self::new(
            question.index,
            asked_at_ms,
            question.time_limit_ms,
            limits.max_answer_ms,
            limits.time_warning_ms,
        );
        let soft_max_stretch_ms = limits.stretch_soft_max_ms.min(SegmenterConfig::default().max_stretch_ms);
        answer.segmenter = Segmenter::new(SegmenterConfig { soft_max_stretch_ms, ..SegmenterConfig::default() });
        answer
    }

    /// Rebuilds an answer after a dropped stream from what the store holds, and returns the
    /// stretches that still need transcribing. The voice detector is deterministic, so replaying
    /// the stored audio rebuilds the same stretches; those that ended by the last stored segment
    /// were handled before the drop and are not transcribed again.
    pub fn resume(&mut self, stored_audio: &[i16], stored_segments: Vec<Segment>) -> Vec<LiveEvent> {
        self.done_until_sample = stored_segments.last().map(|s| ms_to_samples(s.end_ms)).unwrap_or(0);
        self.segments = stored_segments;
        self.stored_samples = stored_audio.len() as u64;
        self.warned = self.warn_at_samples <= self.stored_samples;
        let replayed = self.push(&to_f32(stored_audio));
        replayed.into_iter().filter(|e| matches!(e, LiveEvent::Transcribe(_) | LiveEvent::LimitReached)).collect()
    }

    /// Answer audio received so far, in ms.
    pub fn audio_ms(&self) -> u64 {
        samples_to_ms(self.audio.len() as u64)
    }

    pub fn limit_reached(&self) -> bool {
        self.limit_reached
    }

    /// Takes 16 kHz samples of the answer; audio past the time limit is dropped.
    pub fn push(&mut self, samples: &[f32]) -> Vec<LiveEvent> {
        let mut events = Vec::new();
        if self.limit_reached {
            return events;
        }
        let len = self.audio.len() as u64;
        let room = self.limit_samples.saturating_sub(len) as usize;
        let accepted = &samples[..samples.len().min(room)];
        // Split at the warning point so the warning is sent exactly there, whatever the chunking.
        let split = if !self.warned && self.warn_at_samples > len {
            ((self.warn_at_samples - len) as usize).min(accepted.len())
        } else {
            0
        };
        let (before, after) = accepted.split_at(split);
        self.take(before, &mut events);
        self.take(after, &mut events);
        events
    }

    fn take(&mut self, samples: &[f32], events: &mut Vec<LiveEvent>) {
        self.audio.extend_from_slice(samples);
        for stretch in self.segmenter.push(samples) {
            self.on_closed(stretch, events);
        }
        let len = self.audio.len() as u64;
        if !self.warned && len >= self.warn_at_samples {
            self.warned = true;
            events.push(LiveEvent::TimeWarning { remaining_ms: samples_to_ms(self.limit_samples - len) });
        }
        if !self.limit_reached && len >= self.limit_samples {
            self.limit_reached = true;
            events.push(LiveEvent::LimitReached);
        }
    }

    /// The candidate has finished: closes the stretch still open.
    pub fn finish(&mut self) -> Vec<LiveEvent> {
        let mut events = Vec::new();
        if let Some(stretch) = self.segmenter.finish() {
            self.on_closed(stretch, &mut events);
        }
        events
    }

    fn on_closed(&mut self, stretch: Stretch, events: &mut Vec<LiveEvent>) {
        let previous_end = std::mem::replace(&mut self.previous_stretch_end, stretch.end_sample);
        if stretch.end_sample <= self.done_until_sample {
            // Handled before a reconnect; it counts for timing if it produced a stored segment.
            let spoken = SpokenStretch::from(stretch);
            if self.segments.iter().any(|s| s.start_ms >= spoken.start_ms && s.start_ms <= spoken.end_ms) {
                self.spoken.push(spoken);
            }
            return;
        }
        events.push(LiveEvent::Transcribe(self.job_for(stretch, previous_end)));
    }

    /// The stretch's audio with some context, never reaching into a neighbouring stretch's
    /// audio (which would transcribe the same words twice).
    fn job_for(&self, stretch: Stretch, previous_end: u64) -> StretchJob {
        let len = self.audio.len() as u64;
        let clip_start = stretch.start_sample.saturating_sub(PAD_BEFORE_SAMPLES).max(previous_end);
        let clip_end = (stretch.end_sample + PAD_AFTER_SAMPLES.min(stretch.silence_after_samples)).min(len);
        StretchJob {
            stretch,
            clip_start_sample: clip_start,
            clip_samples: clip_end.saturating_sub(clip_start),
            audio: self.audio[clip_start as usize..clip_end as usize].to_vec(),
        }
    }

    /// Whether a partial is due: a stretch is open and a second of audio has passed since the last.
    pub fn partial_due(&self) -> bool {
        self.segmenter.open_stretch().is_some() && self.audio.len() as u64 >= self.next_partial_at
    }

    /// A partial job for the open stretch, about once a second of audio.
    pub fn partial_job(&mut self) -> Option<StretchJob> {
        let open = self.segmenter.open_stretch()?;
        let len = self.audio.len() as u64;
        if len < self.next_partial_at {
            return None;
        }
        self.next_partial_at = len + PARTIAL_EVERY_SAMPLES;
        Some(self.job_for(open, self.previous_stretch_end))
    }

    /// The open stretch's job once the candidate has paused for `PAD_AFTER_SAMPLES`: from then
    /// on its clip is exactly the one the stretch gets when it closes (same start, same end, same
    /// padding), unless the candidate speaks again. Transcribing it during the pause means the
    /// final text is ready, or nearly, when the pause closes the stretch or the candidate ends
    /// the answer. Once per pause.
    pub fn pause_job(&mut self) -> Option<StretchJob> {
        let mut open = self.segmenter.open_stretch()?;
        let silence = self.segmenter.position().saturating_sub(open.end_sample);
        if silence < PAD_AFTER_SAMPLES || self.pause_job_for == Some(open.end_sample) {
            return None;
        }
        self.pause_job_for = Some(open.end_sample);
        open.silence_after_samples = silence;
        Some(self.job_for(open, self.previous_stretch_end))
    }

    /// Whether a pause job still stands for the open stretch: no voice since it was made.
    pub fn pause_job_current(&self, job_end_sample: u64) -> bool {
        self.segmenter.open_stretch().is_some_and(|s| s.end_sample == job_end_sample)
    }

    /// Whether a partial job's text is still news: its stretch is open, or closed but not yet
    /// sent as segments (under load the final can lag; once it is out, the partial is stale).
    pub fn partial_is_current(&self, job: &StretchJob) -> bool {
        let still_open = self.segmenter.open_stretch().is_some_and(|s| s.start_sample == job.stretch.start_sample);
        let final_not_sent = self.segments.last().is_none_or(|s| ms_to_samples(s.end_ms) <= job.stretch.start_sample);
        still_open || final_not_sent
    }

    /// Keeps a partial transcription of the open stretch for [`Self::agreed_prefix`].
    pub fn note_partial(&mut self, job: &StretchJob, pieces: &[TextPiece]) {
        // Once settled, a prefix stays settled (as in whisper_streaming): tiny models waver on
        // words they got right before ("post-mortem", then "most bottom"). So later partials are
        // compared on their words after it only, and what two of them agree on there grows it.
        let (from_ms, pieces) = match &self.settled {
            Some((start, prefix)) if *start == job.clip_start_sample => {
                (prefix.cut_ms, agreement::words_after(pieces, prefix, AFTER_CUT_MS))
            }
            _ => (0, pieces.to_vec()),
        };
        let hypothesis = Hypothesis {
            clip_start_sample: job.clip_start_sample,
            clip_ms: samples_to_ms(job.clip_samples),
            from_ms,
            pieces,
        };
        match self.hypotheses.last() {
            Some(last) if last.clip_start_sample != hypothesis.clip_start_sample || last.from_ms != from_ms => {
                self.hypotheses.clear()
            }
            Some(last) if last.clip_ms >= hypothesis.clip_ms => return, // not news
            _ => {}
        }
        self.hypotheses.push(hypothesis);
        if self.hypotheses.len() > 2 {
            self.hypotheses.remove(0);
        }
        if let [earlier, later] = &self.hypotheses[..] {
            let start = (later.clip_start_sample as usize).min(self.audio.len());
            let end = (start + ms_to_samples(later.clip_ms) as usize).min(self.audio.len());
            let clip = &self.audio[start..end];
            let level = rms(clip);
            if let Some(more) = agreement::agreed_prefix(earlier, later, |cut_ms| is_quiet(clip, level, cut_ms)) {
                let start = later.clip_start_sample;
                let grown = match self.settled.take() {
                    Some((s, settled)) if s == start && from_ms > 0 => agreement::extend(settled, more),
                    _ => more,
                };
                tracing::debug!(clip_start_ms = samples_to_ms(start), cut_ms = grown.cut_ms, "prefix settled");
                self.settled = Some((start, grown));
                self.hypotheses.clear();
            }
        }
    }

    /// What the last two partials of this job's stretch agree on: the final need only transcribe
    /// the clip from `cut_ms` on.
    pub fn agreed_prefix(&self, job: &StretchJob) -> Option<AgreedPrefix> {
        let (start, prefix) = self.settled.as_ref()?;
        (*start == job.clip_start_sample && prefix.cut_ms < samples_to_ms(job.clip_samples)).then(|| prefix.clone())
    }

    /// Turns whisper's pieces for a closed stretch into final segments, in order, never
    /// overlapping what came before. Returns the new segments (with their sequence numbers).
    pub fn add_transcription(&mut self, job: &StretchJob, pieces: Vec<TextPiece>) -> Vec<(usize, Segment)> {
        let segments = self.place_pieces(job, pieces);
        if !segments.is_empty() {
            self.spoken.push(SpokenStretch::from(job.stretch));
        }
        segments
            .into_iter()
            .map(|segment| {
                self.segments.push(segment.clone());
                (self.segments.len() - 1, segment)
            })
            .collect()
    }

    /// Maps piece times (relative to the clip) onto the answer's clock, inside the stretch.
    fn place_pieces(&self, job: &StretchJob, pieces: Vec<TextPiece>) -> Vec<Segment> {
        let stretch_start = samples_to_ms(job.stretch.start_sample);
        let stretch_end = samples_to_ms(job.stretch.end_sample);
        let clip_start = samples_to_ms(job.clip_start_sample);
        let mut floor = self.segments.last().map(|s| s.end_ms).unwrap_or(0).max(stretch_start);
        let count = pieces.len();
        let mut out = Vec::with_capacity(count);
        for (i, piece) in pieces.into_iter().enumerate() {
            let start = if i == 0 { stretch_start } else { clip_start + piece.start_ms };
            let end = if i + 1 == count { stretch_end } else { clip_start + piece.end_ms };
            let start = start.clamp(floor, stretch_end);
            let end = end.clamp(start, stretch_end);
            floor = end;
            out.push(Segment { text: piece.text, start_ms: start, end_ms: end });
        }
        out
    }

    /// Audio not yet committed, with the sample it starts at.
    pub fn unstored(&self) -> (u64, &[f32]) {
        (self.stored_samples, &self.audio[self.stored_samples as usize..])
    }

    pub fn mark_stored(&mut self, up_to_sample: u64) {
        self.stored_samples = up_to_sample.min(self.audio.len() as u64);
    }

    pub fn stored_ms(&self) -> u64 {
        samples_to_ms(self.stored_samples)
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The finished answer (the checklist is filled in by the scorer).
    pub fn build_answer(&self, interrupted: bool) -> Answer {
        let transcript = self.segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ");
        let timing = compute_timing(&self.spoken, self.audio_ms(), self.question_limit_ms, self.limit_reached);
        let speech = speech_figures(&transcript, timing.answer_ms);
        Answer {
            index: self.index,
            transcript,
            segments: self.segments.clone(),
            timing,
            speech,
            checklist: Vec::new(),
            interrupted,
            audio_ms: self.audio_ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(start_ms: u64, end_ms: u64, clip_start_ms: u64) -> StretchJob {
        StretchJob {
            stretch: Stretch {
                start_sample: start_ms * 16,
                end_sample: end_ms * 16,
                voiced_samples: (end_ms - start_ms) * 16,
                longest_gap_samples: 0,
                silence_after_samples: 0,
            },
            clip_start_sample: clip_start_ms * 16,
            clip_samples: (end_ms - clip_start_ms) * 16,
            audio: Vec::new(),
        }
    }

    fn piece(text: &str, start_ms: u64, end_ms: u64) -> TextPiece {
        TextPiece { text: text.into(), start_ms, end_ms }
    }

    #[test]
    fn pieces_are_placed_inside_the_stretch_in_order() {
        let mut live = LiveAnswer::new(0, 0, Some(60_000), 600_000, 15_000);
        let j = job(2000, 6000, 1800);
        let added = live.add_transcription(&j, vec![piece("one", 0, 2000), piece("two", 1500, 4400)]);
        assert_eq!(added.len(), 2);
        assert_eq!(added[0].1, Segment { text: "one".into(), start_ms: 2000, end_ms: 3800 });
        assert_eq!(added[1].1, Segment { text: "two".into(), start_ms: 3800, end_ms: 6000 });
        // A later stretch never starts before the end of the previous segment.
        let added = live.add_transcription(&job(5900, 7000, 5700), vec![piece("three", 0, 900)]);
        assert_eq!(added[0], (2, Segment { text: "three".into(), start_ms: 6000, end_ms: 7000 }));
        let answer = live.build_answer(false);
        assert_eq!(answer.transcript, "one two three");
        assert_eq!(answer.timing.think_ms, 2000);
    }

    #[test]
    fn partials_of_the_open_stretch_settle_its_beginning() {
        let mut live = LiveAnswer::new(0, 0, None, 600_000, 15_000);
        // A tone with pauses at 14.8 s and 18.8 s: 3 s and 7 s into the clips below, which start
        // at 11.8 s.
        let audio: Vec<f32> = (0..16 * 25_000)
            .map(|i| {
                let pause = (16 * 14_700..16 * 14_900).contains(&i) || (16 * 18_700..16 * 18_900).contains(&i);
                if pause {
                    0.0
                } else {
                    0.3 * (i as f32 * 0.17).sin()
                }
            })
            .collect();
        live.push(&audio);
        let first = [piece("We paged the on-call.", 0, 3_000), piece("Then we", 3_000, 9_000)];
        let second = [piece("We paged the on-call.", 0, 3_000), piece("Then we rolled back.", 3_000, 10_000)];
        // A partial of an earlier stretch does not count.
        live.note_partial(&job(500, 9_500, 0), &first);
        live.note_partial(&job(12_000, 21_000, 11_800), &first);
        let closing = job(12_000, 24_000, 11_800);
        assert_eq!(live.agreed_prefix(&closing), None, "one partial of this stretch");
        live.note_partial(&job(12_000, 22_000, 11_800), &second);
        let prefix = live.agreed_prefix(&closing).expect("two partials agree");
        assert_eq!(prefix.cut_ms, 3_000);
        assert_eq!(prefix.pieces, vec![piece("We paged the on-call.", 0, 3_000)]);
        // One partial since the cut settles nothing more; another clip start is not this stretch.
        live.note_partial(&job(12_000, 20_000, 11_800), &first);
        assert_eq!(live.agreed_prefix(&closing).map(|p| p.cut_ms), Some(3_000));
        assert_eq!(live.agreed_prefix(&job(12_000, 24_000, 11_000)), None);
        // What was settled stays settled when later partials waver on its words: they are
        // compared on what follows the cut, and their agreement there grows the prefix up to the
        // next pause, 7 s into the clip.
        let wavering = |last: &str, clip_end: u64| {
            vec![
                piece("We patched the uncle.", 0, 3_050),
                piece("Then we rolled back.", 3_100, 7_000),
                piece(last, 7_200, clip_end),
            ]
        };
        live.note_partial(&job(12_000, 23_000, 11_800), &wavering("And", 11_000));
        assert_eq!(live.agreed_prefix(&closing).map(|p| p.cut_ms), Some(3_000), "it and the one before disagree");
        live.note_partial(&job(12_000, 24_000, 11_800), &wavering("And it held", 12_000));
        let prefix = live.agreed_prefix(&closing).expect("grown");
        assert_eq!(prefix.cut_ms, 7_000);
        assert_eq!(
            prefix.pieces,
            vec![piece("We paged the on-call.", 0, 3_000), piece("Then we rolled back.", 3_100, 7_000)]
        );
    }

    #[test]
    fn time_limit_warns_then_stops_taking_audio() {
        let mut live = LiveAnswer::new(0, 0, Some(4_000), 600_000, 1_000);
        let events = live.push(&vec![0.0; 16 * 3_500]);
        assert!(matches!(events.as_slice(), [LiveEvent::TimeWarning { remaining_ms: 1_000 }]));
        let events = live.push(&vec![0.0; 16 * 1_000]);
        assert!(matches!(events.as_slice(), [LiveEvent::LimitReached]));
        assert_eq!(live.audio_ms(), 4_000);
        assert!(live.push(&[0.0; 160]).is_empty());
        let answer = live.build_answer(false);
        assert!(answer.timing.over_limit);
        assert_eq!(answer.timing.think_ms, 4_000);
    }

    #[test]
    fn stored_position_tracks_commits() {
        let mut live = LiveAnswer::new(0, 0, None, 600_000, 15_000);
        live.push(&vec![0.0; 3200]);
        assert_eq!(live.unstored().0, 0);
        assert_eq!(live.unstored().1.len(), 3200);
        live.mark_stored(3200);
        assert_eq!(live.stored_ms(), 200);
        assert!(live.unstored().1.is_empty());
    }
}
