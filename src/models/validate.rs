//! Structural validation of a ggml Whisper file without loading whisper.cpp,
//! so the server can refuse a broken file before whisper.cpp (which trusts
//! it) touches it. Every length is checked against the bytes remaining
//! before anything is allocated or skipped.

use super::error::{ModelError, ParseError};
use super::ggml::{GgmlType, Hparams, GGML_MAGIC};
use super::layout::whisper_tensors;
use super::GgmlInfo;
use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Longest token whisper.cpp vocabularies contain is well under this.
const MAX_TOKEN_BYTES: u32 = 1 << 10;

struct Bounded<R> {
    r: R,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Bounded<R> {
    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.pos, msg)
    }
    fn ensure(&self, n: u64, what: &str) -> Result<(), ParseError> {
        let left = self.len - self.pos;
        if n > left {
            return Err(self.err(format!("file truncated: {what} needs {n} bytes, only {left} left")));
        }
        Ok(())
    }
    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, ParseError> {
        self.ensure(n, what)?;
        let mut buf = vec![0; n as usize];
        self.r.read_exact(&mut buf).map_err(|e| self.err(format!("reading {what}: {e}")))?;
        self.pos += n;
        Ok(buf)
    }
    fn skip(&mut self, n: u64, what: &str) -> Result<(), ParseError> {
        self.ensure(n, what)?;
        self.r.seek(SeekFrom::Current(n as i64)).map_err(|e| self.err(format!("seeking past {what}: {e}")))?;
        self.pos += n;
        Ok(())
    }
    fn i32(&mut self, what: &str) -> Result<i32, ParseError> {
        let b = self.bytes(4, what)?;
        Ok(i32::from_le_bytes(b.try_into().unwrap()))
    }
    /// An `i32` that must lie in `lo..=hi`.
    fn count(&mut self, what: &str, lo: i32, hi: i32) -> Result<u32, ParseError> {
        let v = self.i32(what)?;
        if !(lo..=hi).contains(&v) {
            self.pos -= 4;
            return Err(self.err(format!("{what} = {v} is out of range {lo}..={hi}")));
        }
        Ok(v as u32)
    }
}

/// Validates a ggml file on disk.
pub fn validate_ggml(path: &Path) -> Result<GgmlInfo, ModelError> {
    let f = std::fs::File::open(path).map_err(ModelError::io(path))?;
    let len = f.metadata().map_err(ModelError::io(path))?.len();
    validate_reader(BufReader::new(f), len).map_err(|source| ModelError::BadGgml { path: path.into(), source })
}

/// Validates `len` bytes of ggml data from `r` (positioned at the start).
pub fn validate_reader<R: Read + Seek>(r: R, len: u64) -> Result<GgmlInfo, ParseError> {
    let mut b = Bounded { r, pos: 0, len };
    let magic = b.bytes(4, "magic")?;
    if u32::from_le_bytes(magic.try_into().unwrap()) != GGML_MAGIC {
        return Err(ParseError::new(0, "bad magic: this is not a ggml file"));
    }
    let mut a = [0u32; 11];
    for v in a.iter_mut() {
        *v = b.count("hyper-parameter", 0, i32::MAX)?;
    }
    let h = Hparams::from_array(a);
    h.check().map_err(|m| ParseError::new(4, format!("bad hyper-parameters: {m}")))?;

    let n_mel = b.count("mel filter count", 1, 512)?;
    let n_fft = b.count("mel filter width", 1, 1 << 14)?;
    if n_mel != h.n_mels {
        return Err(b.err(format!("mel filter bank has {n_mel} rows but n_mels is {}", h.n_mels)));
    }
    b.skip(n_mel as u64 * n_fft as u64 * 4, "mel filter bank")?;

    let n_tokens = b.count("vocabulary size", 0, h.n_vocab as i32)?;
    for _ in 0..n_tokens {
        let n = b.count("token length", 0, MAX_TOKEN_BYTES as i32)?;
        b.skip(n as u64, "token")?;
    }

    let wtype = h.weight_type().map_err(|m| ParseError::new(4, m))?;
    let mut expected: HashMap<String, (Vec<u64>, GgmlType)> = whisper_tensors(&h)
        .into_iter()
        .map(|t| {
            let dims = t.shape.iter().rev().map(|&d| d as u64).collect();
            (t.name, (dims, t.kind.ggml_type(wtype)))
        })
        .collect();
    let n_tensors = expected.len();
    while b.pos < b.len {
        read_tensor(&mut b, &mut expected)?;
    }
    if let Some(missing) = expected.keys().min() {
        return Err(b.err(format!("{} tensors missing, e.g. {missing}", expected.len())));
    }
    Ok(GgmlInfo { hparams: h, n_tensors, file_bytes: len })
}

fn read_tensor<R: Read + Seek>(
    b: &mut Bounded<R>,
    expected: &mut HashMap<String, (Vec<u64>, GgmlType)>,
) -> Result<(), ParseError> {
    let start = b.pos;
    let n_dims = b.count("tensor rank", 1, 4)?;
    let name_len = b.count("tensor name length", 1, 256)?;
    let code = b.count("tensor type", 0, i32::MAX)?;
    let ty = GgmlType::from_code(code).ok_or_else(|| b.err(format!("unknown tensor type {code}")))?;
    let mut dims = Vec::new();
    for _ in 0..n_dims {
        dims.push(b.count("tensor dimension", 1, i32::MAX)? as u64);
    }
    let name = String::from_utf8(b.bytes(name_len as u64, "tensor name")?)
        .map_err(|_| ParseError::new(start, "tensor name is not UTF-8"))?;
    let at = |m: String| ParseError::new(start, format!("tensor {name}: {m}"));
    let (want_dims, want_ty) =
        expected.remove(&name).ok_or_else(|| at("unexpected (unknown or duplicate) tensor".into()))?;
    if dims != want_dims {
        return Err(at(format!("dims {dims:?}, expected {want_dims:?}")));
    }
    if ty != want_ty {
        return Err(at(format!("type {ty:?}, expected {want_ty:?}")));
    }
    let n = ty.n_bytes(&dims).ok_or_else(|| at("size is not a whole number of blocks".into()))?;
    b.skip(n, "tensor data")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ggml::{encode_floats, GgmlWriter};
    use std::io::Cursor;

    /// A complete 1-layer model with state 8 and 2 heads.
    pub(crate) fn tiny_model() -> Vec<u8> {
        let h = Hparams::from_array([5, 6, 8, 2, 1, 4, 8, 2, 1, 3, 1]);
        let tokens: Vec<Vec<u8>> = vec![b"a".to_vec(), b" b".to_vec(), vec![0xff]];
        let mut w = GgmlWriter::new(Vec::new(), &h, &[0.5; 3 * 201], 201, &tokens).unwrap();
        let mut buf = Vec::new();
        for t in whisper_tensors(&h) {
            let ty = t.kind.ggml_type(GgmlType::F16);
            let n: usize = t.shape.iter().product();
            encode_floats(ty, &vec![0.25; n], &mut buf);
            w.tensor(&t.name, &t.shape, ty, &buf).unwrap();
        }
        w.into_inner()
    }

    fn check(bytes: &[u8]) -> Result<GgmlInfo, ParseError> {
        validate_reader(Cursor::new(bytes), bytes.len() as u64)
    }

    #[test]
    fn writer_output_validates() {
        let m = tiny_model();
        let info = check(&m).unwrap();
        assert_eq!(info.n_tensors, 7 + 15 + 4 + 24);
        assert_eq!(info.hparams.n_audio_state, 8);
        assert_eq!(info.file_bytes, m.len() as u64);
    }

    #[test]
    fn every_truncation_is_refused() {
        let m = tiny_model();
        for n in 0..m.len() {
            assert!(check(&m[..n]).is_err(), "prefix of {n} bytes accepted");
        }
    }

    #[test]
    fn corruption_is_refused() {
        let m = tiny_model();
        let mut bad = m.clone();
        bad[0] ^= 1;
        assert!(check(&bad).unwrap_err().msg.contains("magic"));
        let mut bad = m.clone();
        bad.push(0);
        assert!(check(&bad).is_err(), "trailing garbage");
        let mut bad = m.clone();
        bad[4..8].copy_from_slice(&i32::MAX.to_le_bytes()); // n_vocab
        assert!(check(&bad).is_err());
        // Flip every byte of the header area once: errors, never panics.
        for i in 0..200 {
            let mut bad = m.clone();
            bad[i] = bad[i].wrapping_add(0x41);
            let _ = check(&bad);
        }
    }
}
