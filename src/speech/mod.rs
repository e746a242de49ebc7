//! Voice activity detection and the segmenter that cuts an answer's audio into stretches of
//! speech. Each closed stretch is transcribed on its own while the candidate goes on talking, so
//! little is left to do when the answer ends, and whisper never sees pure silence (where it
//! invents words). Pure: samples in, stretches out, positions in 16 kHz samples of the answer.

mod modulation;
mod segmenter;

pub use modulation::level_spread_db;
pub use segmenter::{Segmenter, SegmenterConfig, Stretch};
