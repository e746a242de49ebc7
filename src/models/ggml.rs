//! whisper.cpp's legacy ggml model format (as written by its
//! `convert-pt-to-ggml.py`): magic, 11 `i32` hparams, mel filter bank,
//! vocabulary, then tensors `i32 n_dims, i32 name_len, i32 type,
//! i32 dims[n_dims] (innermost first), name, data`, no padding.

use std::io::{self, Write};

/// "ggml" as a little-endian u32.
pub const GGML_MAGIC: u32 = 0x6767_6d6c;

/// Model hyper-parameters in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: u32,
    pub n_audio_ctx: u32,
    pub n_audio_state: u32,
    pub n_audio_head: u32,
    pub n_audio_layer: u32,
    pub n_text_ctx: u32,
    pub n_text_state: u32,
    pub n_text_head: u32,
    pub n_text_layer: u32,
    pub n_mels: u32,
    /// ggml file type; values >= 1000 carry a quantization version.
    pub ftype: u32,
}

impl Hparams {
    pub fn to_array(&self) -> [u32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    pub fn from_array(a: [u32; 11]) -> Self {
        Hparams {
            n_vocab: a[0],
            n_audio_ctx: a[1],
            n_audio_state: a[2],
            n_audio_head: a[3],
            n_audio_layer: a[4],
            n_text_ctx: a[5],
            n_text_state: a[6],
            n_text_head: a[7],
            n_text_layer: a[8],
            n_mels: a[9],
            ftype: a[10],
        }
    }

    /// Checks the values are plausible before anything is sized from them.
    /// The bounds are far above any released Whisper (large: 1280 state,
    /// 32 layers) but small enough that tensor sizes cannot overflow.
    pub fn check(&self) -> Result<(), String> {
        let in_range = |name: &str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} = {v} is out of range {lo}..={hi}"))
            }
        };
        in_range("n_vocab", self.n_vocab, 1, 1 << 20)?;
        in_range("n_audio_ctx", self.n_audio_ctx, 1, 1 << 16)?;
        in_range("n_audio_state", self.n_audio_state, 1, 1 << 14)?;
        in_range("n_audio_head", self.n_audio_head, 1, 1 << 10)?;
        in_range("n_audio_layer", self.n_audio_layer, 1, 256)?;
        in_range("n_text_ctx", self.n_text_ctx, 1, 1 << 16)?;
        in_range("n_text_state", self.n_text_state, 1, 1 << 14)?;
        in_range("n_text_head", self.n_text_head, 1, 1 << 10)?;
        in_range("n_text_layer", self.n_text_layer, 1, 256)?;
        in_range("n_mels", self.n_mels, 1, 512)?;
        if !self.n_audio_state.is_multiple_of(self.n_audio_head) || !self.n_text_state.is_multiple_of(self.n_text_head)
        {
            return Err("state size is not divisible by the head count".into());
        }
        // Cross-attention projects audio features with text-sized weights.
        if self.n_audio_state != self.n_text_state {
            return Err("audio and text state sizes differ".into());
        }
        self.weight_type()?;
        Ok(())
    }

    /// The tensor type of the big matrices implied by `ftype`
    /// (ggml's `ggml_ftype_to_ggml_type`).
    pub fn weight_type(&self) -> Result<GgmlType, String> {
        Ok(match self.ftype % 1000 {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            7 => GgmlType::Q8_0,
            8 => GgmlType::Q5_0,
            9 => GgmlType::Q5_1,
            other => return Err(format!("unsupported ftype {other}")),
        })
    }
}

/// Tensor element types (ggml's `ggml_type` codes) that whisper.cpp models use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
}

impl GgmlType {
    pub fn from_code(c: u32) -> Option<Self> {
        Some(match c {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            _ => return None,
        })
    }

    pub fn code(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
        }
    }

    /// (elements per block, bytes per block)
    fn block(self) -> (u64, u64) {
        match self {
            GgmlType::F32 => (1, 4),
            GgmlType::F16 => (1, 2),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q5_0 => (32, 22),
            GgmlType::Q5_1 => (32, 24),
            GgmlType::Q8_0 => (32, 34),
        }
    }

    /// Bytes of a tensor with these dims (innermost first); `None` if the
    /// innermost dim is not a whole number of blocks or the size overflows.
    pub fn n_bytes(self, dims: &[u64]) -> Option<u64> {
        let (blk, size) = self.block();
        let ne0 = *dims.first()?;
        if ne0 % blk != 0 {
            return None;
        }
        let n = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
        (n / blk).checked_mul(size)
    }
}

/// Streams a ggml file. Call `new` (writes everything up to the tensors),
/// then `tensor` once per tensor in any order.
pub struct GgmlWriter<W: Write> {
    out: W,
}

impl<W: Write> GgmlWriter<W> {
    /// `mel` is row-major `[n_mels][n_fft]`; `tokens` are raw token bytes.
    pub fn new(mut out: W, h: &Hparams, mel: &[f32], n_fft: usize, tokens: &[Vec<u8>]) -> io::Result<Self> {
        assert_eq!(mel.len(), h.n_mels as usize * n_fft, "mel filter bank shape");
        out.write_all(&GGML_MAGIC.to_le_bytes())?;
        for v in h.to_array() {
            out.write_all(&(v as i32).to_le_bytes())?;
        }
        out.write_all(&(h.n_mels as i32).to_le_bytes())?;
        out.write_all(&(n_fft as i32).to_le_bytes())?;
        for v in mel {
            out.write_all(&v.to_le_bytes())?;
        }
        out.write_all(&(tokens.len() as i32).to_le_bytes())?;
        for t in tokens {
            out.write_all(&(t.len() as i32).to_le_bytes())?;
            out.write_all(t)?;
        }
        Ok(GgmlWriter { out })
    }

    /// Writes one tensor; `shape` is in PyTorch order (outermost first) and
    /// `data` holds already-encoded elements of type `ty`.
    pub fn tensor(&mut self, name: &str, shape: &[usize], ty: GgmlType, data: &[u8]) -> io::Result<()> {
        let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        assert_eq!(ty.n_bytes(&dims), Some(data.len() as u64), "tensor {name}: data size");
        let o = &mut self.out;
        o.write_all(&(shape.len() as i32).to_le_bytes())?;
        o.write_all(&(name.len() as i32).to_le_bytes())?;
        o.write_all(&(ty.code() as i32).to_le_bytes())?;
        for d in &dims {
            o.write_all(&(*d as i32).to_le_bytes())?;
        }
        o.write_all(name.as_bytes())?;
        o.write_all(data)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Encodes f32 values as `ty`: F32, F16, or Q8_0 (ggml's reference quantiser: blocks of 32
/// values, each an f16 scale `max|x| / 127` and 32 rounded int8; `vals` must be whole blocks).
pub fn encode_floats(ty: GgmlType, vals: &[f32], out: &mut Vec<u8>) {
    out.clear();
    match ty {
        GgmlType::F32 => out.extend(vals.iter().flat_map(|v| v.to_le_bytes())),
        GgmlType::F16 => out.extend(vals.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes())),
        GgmlType::Q8_0 => {
            assert!(vals.len().is_multiple_of(32), "q8_0 needs whole blocks of 32 values");
            for block in vals.chunks(32) {
                let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend(half::f16::from_f32(d).to_le_bytes());
                out.extend(block.iter().map(|v| (v * id).round() as i8 as u8));
            }
        }
        other => unreachable!("we never write {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantized_sizes() {
        assert_eq!(GgmlType::F16.n_bytes(&[3, 2]), Some(12));
        assert_eq!(GgmlType::Q8_0.n_bytes(&[64, 2]), Some(4 * 34));
        assert_eq!(GgmlType::Q4_0.n_bytes(&[33]), None);
        assert_eq!(GgmlType::F32.n_bytes(&[u64::MAX, 3]), None);
    }

    #[test]
    fn hparams_checks() {
        let mut h = Hparams::from_array([51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1]);
        assert!(h.check().is_ok());
        assert_eq!(h.weight_type(), Ok(GgmlType::F16));
        h.n_audio_head = 5;
        assert!(h.check().is_err());
        h.n_audio_head = 0;
        assert!(h.check().is_err());
    }
}
