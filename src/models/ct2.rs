//! Reader for CTranslate2 `model.bin`, binary format version 6:
//! `u32 version, str spec, u32 revision, u32 n_vars, vars.., u32 n_aliases,
//! (str alias, str target)..` where `str` is `u16 len` + bytes incl. a NUL
//! and a var is `str name, u8 rank, u32 dims[rank], u8 dtype, u32 n_bytes,
//! data`. All integers little-endian.
//!
//! The whole file is kept in one buffer and variables refer to byte ranges,
//! so a 150 MB model is not copied a second time. Every length read from the
//! file is checked against the bytes that remain before it is used.

use super::error::ParseError;
use std::ops::Range;

/// CTranslate2's `DataType` enum codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct2Dtype {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Ct2Dtype {
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => Ct2Dtype::F32,
            1 => Ct2Dtype::I8,
            2 => Ct2Dtype::I16,
            3 => Ct2Dtype::I32,
            4 => Ct2Dtype::F16,
            5 => Ct2Dtype::Bf16,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn size(self) -> usize {
        match self {
            Ct2Dtype::I8 => 1,
            Ct2Dtype::I16 | Ct2Dtype::F16 | Ct2Dtype::Bf16 => 2,
            Ct2Dtype::F32 | Ct2Dtype::I32 => 4,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ct2Var {
    pub name: String,
    pub dims: Vec<usize>,
    pub dtype: Ct2Dtype,
    data: Range<usize>,
}

impl Ct2Var {
    pub fn n_elements(&self) -> usize {
        self.dims.iter().product()
    }
}

#[derive(Debug)]
pub struct Ct2Model {
    pub spec: String,
    pub revision: u32,
    vars: Vec<Ct2Var>,
    aliases: Vec<(String, String)>,
    buf: Vec<u8>,
}

/// Bounds-checked little-endian cursor.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.pos as u64, msg)
    }
    fn take(&mut self, n: usize, what: &str) -> Result<Range<usize>, ParseError> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(self.err(format!("file truncated: {what} needs {n} bytes, {left} left")));
        }
        self.pos += n;
        Ok(self.pos - n..self.pos)
    }
    fn u8(&mut self, what: &str) -> Result<u8, ParseError> {
        let r = self.take(1, what)?;
        Ok(self.buf[r.start])
    }
    fn u16(&mut self, what: &str) -> Result<u16, ParseError> {
        let r = self.take(2, what)?;
        Ok(u16::from_le_bytes(self.buf[r].try_into().unwrap()))
    }
    fn u32(&mut self, what: &str) -> Result<u32, ParseError> {
        let r = self.take(4, what)?;
        Ok(u32::from_le_bytes(self.buf[r].try_into().unwrap()))
    }
    fn string(&mut self, what: &str) -> Result<String, ParseError> {
        let n = self.u16(what)? as usize;
        let r = self.take(n, what)?;
        let bytes = &self.buf[r];
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        String::from_utf8(bytes.to_vec()).map_err(|_| self.err(format!("{what} is not UTF-8")))
    }
}

impl Ct2Model {
    /// Parses a complete `model.bin` image.
    pub fn parse(buf: Vec<u8>) -> Result<Self, ParseError> {
        let mut c = Cursor { buf: &buf, pos: 0 };
        let version = c.u32("format version")?;
        if version != 6 {
            return Err(ParseError::new(
                0,
                format!("unsupported CTranslate2 binary version {version} (only version 6 is supported)"),
            ));
        }
        let spec = c.string("spec name")?;
        let revision = c.u32("spec revision")?;
        let n_vars = c.u32("variable count")?;
        // No preallocation from the untrusted count: we push as we parse.
        let mut vars = Vec::new();
        for _ in 0..n_vars {
            vars.push(read_var(&mut c)?);
        }
        let n_aliases = c.u32("alias count")?;
        let mut aliases = Vec::new();
        for _ in 0..n_aliases {
            let alias = c.string("alias name")?;
            let target = c.string("alias target")?;
            aliases.push((alias, target));
        }
        if c.pos != buf.len() {
            return Err(c.err(format!("{} unexpected bytes after the aliases", buf.len() - c.pos)));
        }
        Ok(Ct2Model { spec, revision, vars, aliases, buf })
    }

    pub fn vars(&self) -> &[Ct2Var] {
        &self.vars
    }

    /// Looks a variable up by name, following aliases (one level, as written
    /// by CTranslate2, e.g. the output projection aliasing the embeddings).
    pub fn get(&self, name: &str) -> Option<&Ct2Var> {
        let target = self.aliases.iter().find(|(a, _)| a == name).map_or(name, |(_, t)| t);
        self.vars.iter().find(|v| v.name == target)
    }

    pub fn data(&self, var: &Ct2Var) -> &[u8] {
        &self.buf[var.data.clone()]
    }

    /// Reads an integer scalar such as `encoder/num_heads`.
    pub fn scalar_int(&self, name: &str) -> Option<i64> {
        let v = self.get(name)?;
        if !v.dims.is_empty() {
            return None;
        }
        let d = self.data(v);
        Some(match v.dtype {
            Ct2Dtype::I8 => d[0] as i8 as i64,
            Ct2Dtype::I16 => i16::from_le_bytes(d.try_into().ok()?) as i64,
            Ct2Dtype::I32 => i32::from_le_bytes(d.try_into().ok()?) as i64,
            _ => return None,
        })
    }
}

fn read_var(c: &mut Cursor) -> Result<Ct2Var, ParseError> {
    let name = c.string("variable name")?;
    let rank = c.u8("rank")? as usize;
    if rank > 8 {
        return Err(c.err(format!("variable {name}: implausible rank {rank}")));
    }
    let mut dims = Vec::with_capacity(rank);
    for _ in 0..rank {
        dims.push(c.u32("dimension")? as usize);
    }
    let code = c.u8("dtype")?;
    let dtype =
        Ct2Dtype::from_code(code).ok_or_else(|| c.err(format!("variable {name}: unknown dtype code {code}")))?;
    let n_bytes = c.u32("data size")? as usize;
    let expected = dims.iter().try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
    if expected != Some(n_bytes) {
        return Err(c.err(format!("variable {name}: {n_bytes} data bytes do not match shape {dims:?} of {dtype:?}")));
    }
    let data = c.take(n_bytes, "variable data")?;
    Ok(Ct2Var { name, dims, dtype, data })
}

/// Decodes float data (f32/f16/bf16) into `out`; integer data is refused
/// because it would need CTranslate2's quantization scales.
pub fn decode_floats(dtype: Ct2Dtype, bytes: &[u8], out: &mut Vec<f32>) -> Result<(), String> {
    out.clear();
    let it = bytes.chunks_exact(dtype.size());
    match dtype {
        Ct2Dtype::F32 => out.extend(it.map(|b| f32::from_le_bytes(b.try_into().unwrap()))),
        Ct2Dtype::F16 => out.extend(it.map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())),
        Ct2Dtype::Bf16 => out.extend(it.map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        other => {
            return Err(format!("weights stored as {other:?} (quantized); re-export the model with float16 or float32"))
        }
    }
    Ok(())
}

/// Builds a `model.bin` image; used by tests to make small synthetic models.
#[cfg(test)]
pub(crate) fn encode(vars: &[(&str, &[usize], Ct2Dtype, Vec<u8>)], aliases: &[(&str, &str)]) -> Vec<u8> {
    fn s(out: &mut Vec<u8>, v: &str) {
        out.extend(((v.len() + 1) as u16).to_le_bytes());
        out.extend(v.as_bytes());
        out.push(0);
    }
    let mut out = 6u32.to_le_bytes().to_vec();
    s(&mut out, "WhisperSpec");
    out.extend(3u32.to_le_bytes());
    out.extend((vars.len() as u32).to_le_bytes());
    for (name, dims, dtype, data) in vars {
        s(&mut out, name);
        out.push(dims.len() as u8);
        dims.iter().for_each(|d| out.extend((*d as u32).to_le_bytes()));
        out.push(dtype.code());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
    }
    out.extend((aliases.len() as u32).to_le_bytes());
    for (a, t) in aliases {
        s(&mut out, a);
        s(&mut out, t);
    }
    out
}

#[cfg(test)]
pub(crate) fn f16_bytes(vals: &[f32]) -> Vec<u8> {
    vals.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode(
            &[
                ("decoder/num_heads", &[], Ct2Dtype::I16, 6i16.to_le_bytes().to_vec()),
                ("decoder/embeddings/weight", &[2, 3], Ct2Dtype::F16, f16_bytes(&[1., 2., 3., 4., 5., 6.])),
                ("encoder/x", &[2], Ct2Dtype::F32, [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect()),
            ],
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        )
    }

    #[test]
    fn reads_generated_model() {
        let m = Ct2Model::parse(sample()).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.revision, 3);
        assert_eq!(m.vars().len(), 3);
        assert_eq!(m.scalar_int("decoder/num_heads"), Some(6));
        let e = m.get("decoder/projection/weight").unwrap();
        assert_eq!(e.name, "decoder/embeddings/weight");
        assert_eq!(e.dims, vec![2, 3]);
        let mut f = Vec::new();
        decode_floats(e.dtype, m.data(e), &mut f).unwrap();
        assert_eq!(f, vec![1., 2., 3., 4., 5., 6.]);
        let x = m.get("encoder/x").unwrap();
        decode_floats(x.dtype, m.data(x), &mut f).unwrap();
        assert_eq!(f, vec![1.5, -2.0]);
    }

    #[test]
    fn every_truncation_and_extension_is_an_error() {
        let full = sample();
        for n in 0..full.len() {
            assert!(Ct2Model::parse(full[..n].to_vec()).is_err(), "prefix of {n} bytes accepted");
        }
        let mut longer = full.clone();
        longer.push(0);
        assert!(Ct2Model::parse(longer).is_err());
    }

    #[test]
    fn huge_counts_do_not_allocate_or_panic() {
        let mut bad = sample();
        bad[22..26].copy_from_slice(&u32::MAX.to_le_bytes()); // n_vars
        assert!(Ct2Model::parse(bad).is_err());
        let mut bad = 6u32.to_le_bytes().to_vec();
        bad.extend(u16::MAX.to_le_bytes());
        assert!(Ct2Model::parse(bad).is_err());
    }

    #[test]
    fn quantized_weights_are_refused() {
        assert!(decode_floats(Ct2Dtype::I8, &[1, 2], &mut Vec::new()).is_err());
    }
}
