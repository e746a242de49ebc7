//! The exact set of tensors whisper.cpp loads for given hparams, in the order
//! of the PyTorch state dict. Shared by the converter (what to write) and the
//! validator (what must be present), so the two cannot drift apart.

use super::ggml::{GgmlType, Hparams};

/// How a tensor is stored, which decides its element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Biases, norms, conv biases and positional embeddings: always f32.
    F32,
    /// Conv kernels: f16 unless the whole model is f32 (whisper.cpp's `vtype`).
    Conv,
    /// Weight matrices and the token embedding: the model's weight type.
    Matrix,
}

impl Kind {
    pub fn ggml_type(self, weight_type: GgmlType) -> GgmlType {
        match (self, weight_type) {
            (Kind::F32, _) | (_, GgmlType::F32) => GgmlType::F32,
            (Kind::Conv, _) => GgmlType::F16,
            (Kind::Matrix, w) => w,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    /// PyTorch order, outermost first.
    pub shape: Vec<usize>,
    pub kind: Kind,
}

fn push(v: &mut Vec<TensorSpec>, name: String, shape: &[usize], kind: Kind) {
    v.push(TensorSpec { name, shape: shape.to_vec(), kind });
}

/// Attention block `p` (e.g. `encoder.blocks.0.attn`) plus its layer norm.
/// The key projection has no bias in Whisper.
fn attention(v: &mut Vec<TensorSpec>, p: &str, ln: &str, n: usize) {
    for proj in ["query", "key", "value", "out"] {
        push(v, format!("{p}.{proj}.weight"), &[n, n], Kind::Matrix);
        if proj != "key" {
            push(v, format!("{p}.{proj}.bias"), &[n], Kind::F32);
        }
    }
    push(v, format!("{ln}.weight"), &[n], Kind::F32);
    push(v, format!("{ln}.bias"), &[n], Kind::F32);
}

fn mlp(v: &mut Vec<TensorSpec>, b: &str, n: usize) {
    push(v, format!("{b}.mlp.0.weight"), &[4 * n, n], Kind::Matrix);
    push(v, format!("{b}.mlp.0.bias"), &[4 * n], Kind::F32);
    push(v, format!("{b}.mlp.2.weight"), &[n, 4 * n], Kind::Matrix);
    push(v, format!("{b}.mlp.2.bias"), &[n], Kind::F32);
    push(v, format!("{b}.mlp_ln.weight"), &[n], Kind::F32);
    push(v, format!("{b}.mlp_ln.bias"), &[n], Kind::F32);
}

/// All tensors of a Whisper model. Assumes `h.check()` passed.
pub fn whisper_tensors(h: &Hparams) -> Vec<TensorSpec> {
    let (s, t) = (h.n_audio_state as usize, h.n_text_state as usize);
    let mut v = Vec::new();
    push(&mut v, "encoder.positional_embedding".into(), &[h.n_audio_ctx as usize, s], Kind::F32);
    push(&mut v, "encoder.conv1.weight".into(), &[s, h.n_mels as usize, 3], Kind::Conv);
    push(&mut v, "encoder.conv1.bias".into(), &[s, 1], Kind::F32);
    push(&mut v, "encoder.conv2.weight".into(), &[s, s, 3], Kind::Conv);
    push(&mut v, "encoder.conv2.bias".into(), &[s, 1], Kind::F32);
    for i in 0..h.n_audio_layer {
        let b = format!("encoder.blocks.{i}");
        attention(&mut v, &format!("{b}.attn"), &format!("{b}.attn_ln"), s);
        mlp(&mut v, &b, s);
    }
    push(&mut v, "encoder.ln_post.weight".into(), &[s], Kind::F32);
    push(&mut v, "encoder.ln_post.bias".into(), &[s], Kind::F32);

    push(&mut v, "decoder.positional_embedding".into(), &[h.n_text_ctx as usize, t], Kind::F32);
    push(&mut v, "decoder.token_embedding.weight".into(), &[h.n_vocab as usize, t], Kind::Matrix);
    for i in 0..h.n_text_layer {
        let b = format!("decoder.blocks.{i}");
        attention(&mut v, &format!("{b}.attn"), &format!("{b}.attn_ln"), t);
        attention(&mut v, &format!("{b}.cross_attn"), &format!("{b}.cross_attn_ln"), t);
        mlp(&mut v, &b, t);
    }
    push(&mut v, "decoder.ln.weight".into(), &[t], Kind::F32);
    push(&mut v, "decoder.ln.bias".into(), &[t], Kind::F32);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_en_has_167_tensors() {
        let h = Hparams::from_array([51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1]);
        let t = whisper_tensors(&h);
        assert_eq!(t.len(), 7 + 4 * 15 + 4 + 4 * 24);
        assert!(t.iter().any(|x| x.name == "decoder.blocks.3.cross_attn.key.weight"));
        assert!(!t.iter().any(|x| x.name.ends_with("key.bias")));
        let mut names: Vec<_> = t.iter().map(|x| &x.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), t.len(), "names are unique");
    }

    #[test]
    fn kinds_pick_whisper_cpp_types() {
        assert_eq!(Kind::Conv.ggml_type(GgmlType::Q5_0), GgmlType::F16);
        assert_eq!(Kind::Conv.ggml_type(GgmlType::F32), GgmlType::F32);
        assert_eq!(Kind::Matrix.ggml_type(GgmlType::Q5_0), GgmlType::Q5_0);
        assert_eq!(Kind::F32.ggml_type(GgmlType::F16), GgmlType::F32);
    }
}
