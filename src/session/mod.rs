//! One answer as it happens ([`LiveAnswer`]) and the figures computed from it ([`timing`],
//! [`speech_figures`]). Pure: the WebSocket loop feeds it samples and transcriptions and
//! carries out what it asks for.

pub mod agreement;
mod export;
mod live;
mod speech_figures;
mod timing;

pub use export::export_markdown;
pub use live::{LiveAnswer, LiveEvent, SpokenStretch, StretchJob};
pub use speech_figures::speech_figures;
pub use timing::compute_timing;
