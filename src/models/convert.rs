//! CTranslate2 Whisper -> whisper.cpp ggml conversion. For every tensor
//! whisper.cpp expects (see `layout`) we find its CTranslate2 source,
//! slicing the fused q/k/v (self-attention) and k/v (cross-attention)
//! projections by rows, and re-encode it as f32 or f16.

use super::ct2::{decode_floats, Ct2Model};
use super::error::ModelError;
use super::fsutil::AtomicFile;
use super::ggml::{encode_floats, GgmlType, GgmlWriter, Hparams};
use super::layout::whisper_tensors;
use super::mel::{mel_filters, N_BINS};
use super::validate::validate_ggml;
use super::vocab::{ggml_token_count, parse_vocabulary};
use super::GgmlInfo;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Where a whisper.cpp tensor comes from: part `part` of `parts` equal row
/// blocks of CTranslate2 variable `var`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub var: String,
    pub part: usize,
    pub parts: usize,
}

/// Maps a whisper.cpp tensor name to its CTranslate2 source.
pub fn ct2_source(name: &str) -> Option<Source> {
    let src = |var: String, part, parts| Some(Source { var, part, parts });
    let (side, rest) = name.split_once('.')?;
    if side != "encoder" && side != "decoder" {
        return None;
    }
    let norm = |p: &str| if p == "weight" { "gamma" } else { "beta" };
    match (side, rest) {
        (_, "positional_embedding") => return src(format!("{side}/position_encodings/encodings"), 0, 1),
        ("decoder", "token_embedding.weight") => return src("decoder/embeddings/weight".into(), 0, 1),
        ("encoder", "conv1.weight" | "conv1.bias" | "conv2.weight" | "conv2.bias") => {
            return src(format!("encoder/{}", rest.replace('.', "/")), 0, 1)
        }
        ("encoder", "ln_post.weight" | "ln_post.bias") | ("decoder", "ln.weight" | "ln.bias") => {
            let p = rest.rsplit('.').next()?;
            return src(format!("{side}/layer_norm/{}", norm(p)), 0, 1);
        }
        _ => {}
    }
    let (layer, rest) = rest.strip_prefix("blocks.")?.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, param) = rest.rsplit_once('.')?;
    if param != "weight" && param != "bias" {
        return None;
    }
    let cross = module.starts_with("cross_attn");
    if cross && side != "decoder" {
        return None;
    }
    let (sub, part, parts) = match module {
        "attn.query" => ("self_attention/linear_0", 0, 3),
        "attn.key" => ("self_attention/linear_0", 1, 3),
        "attn.value" => ("self_attention/linear_0", 2, 3),
        "attn.out" => ("self_attention/linear_1", 0, 1),
        "cross_attn.query" => ("attention/linear_0", 0, 1),
        "cross_attn.key" => ("attention/linear_1", 0, 2),
        "cross_attn.value" => ("attention/linear_1", 1, 2),
        "cross_attn.out" => ("attention/linear_2", 0, 1),
        "mlp.0" => ("ffn/linear_0", 0, 1),
        "mlp.2" => ("ffn/linear_1", 0, 1),
        "attn_ln" | "cross_attn_ln" | "mlp_ln" => {
            let m = match module {
                "attn_ln" => "self_attention",
                "cross_attn_ln" => "attention",
                _ => "ffn",
            };
            return src(format!("{side}/layer_{layer}/{m}/layer_norm/{}", norm(param)), 0, 1);
        }
        _ => return None,
    };
    src(format!("{side}/layer_{layer}/{sub}/{param}"), part, parts)
}

/// Derives whisper.cpp hparams from the tensor shapes (ftype 1 = f16).
pub fn hparams_from_ct2(m: &Ct2Model) -> Result<Hparams, String> {
    if m.spec != "WhisperSpec" {
        return Err(format!("model spec is {:?}, not WhisperSpec", m.spec));
    }
    let dims = |name: &str, rank: usize| -> Result<Vec<u32>, String> {
        let v = m.get(name).ok_or_else(|| format!("variable {name} is missing"))?;
        if v.dims.len() != rank || v.dims.iter().any(|&d| d == 0 || d > i32::MAX as usize) {
            return Err(format!("variable {name} has unexpected shape {:?}", v.dims));
        }
        Ok(v.dims.iter().map(|&d| d as u32).collect())
    };
    let heads = |name: &str| match m.scalar_int(name) {
        Some(h) if (1..=1024).contains(&h) => Ok(h as u32),
        _ => Err(format!("scalar {name} is missing or invalid")),
    };
    let layers = |side: &str| {
        (0..)
            .take_while(|i| {
                let p = format!("{side}/layer_{i}/");
                m.vars().iter().any(|v| v.name.starts_with(&p))
            })
            .count() as u32
    };
    let emb = dims("decoder/embeddings/weight", 2)?;
    let enc_pos = dims("encoder/position_encodings/encodings", 2)?;
    let dec_pos = dims("decoder/position_encodings/encodings", 2)?;
    let conv1 = dims("encoder/conv1/weight", 3)?;
    let h = Hparams {
        n_vocab: emb[0],
        n_audio_ctx: enc_pos[0],
        n_audio_state: enc_pos[1],
        n_audio_head: heads("encoder/num_heads")?,
        n_audio_layer: layers("encoder"),
        n_text_ctx: dec_pos[0],
        n_text_state: emb[1],
        n_text_head: heads("decoder/num_heads")?,
        n_text_layer: layers("decoder"),
        n_mels: conv1[1],
        ftype: 1,
    };
    h.check()?;
    Ok(h)
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{0}")]
    Model(String),
    #[error(transparent)]
    Write(#[from] std::io::Error),
}

/// Converts an in-memory CTranslate2 model plus `vocabulary.txt` text into
/// a ggml stream. `progress(done, total)` counts output tensor bytes.
pub fn convert_ct2_model<W: Write>(
    m: &Ct2Model,
    vocabulary: &str,
    out: W,
    progress: &dyn Fn(u64, u64),
) -> Result<Hparams, ConvertError> {
    convert_ct2_model_as(m, vocabulary, out, GgmlType::F16, progress)
}

/// Like [`convert_ct2_model`], with the weight matrices written as `weights` (F16 or Q8_0).
pub fn convert_ct2_model_as<W: Write>(
    m: &Ct2Model,
    vocabulary: &str,
    out: W,
    weights: GgmlType,
    progress: &dyn Fn(u64, u64),
) -> Result<Hparams, ConvertError> {
    let mut h = hparams_from_ct2(m).map_err(ConvertError::Model)?;
    // ggml's ftype codes; quantised types carry ggml's quantisation version (2) in thousands.
    h.ftype = match weights {
        GgmlType::F16 => 1,
        GgmlType::Q8_0 => 2_007,
        other => return Err(ConvertError::Model(format!("cannot write {other:?} weights"))),
    };
    let tokens = parse_vocabulary(vocabulary, ggml_token_count(h.n_vocab)).map_err(ConvertError::Model)?;
    let mut w = GgmlWriter::new(out, &h, &mel_filters(h.n_mels as usize), N_BINS, &tokens)?;
    let specs = whisper_tensors(&h);
    let out_type = |k: super::layout::Kind| k.ggml_type(weights);
    let bytes = |t: &super::layout::TensorSpec| {
        let n: u64 = t.shape.iter().map(|&d| d as u64).product();
        n * if out_type(t.kind) == GgmlType::F32 { 4 } else { 2 }
    };
    let total: u64 = specs.iter().map(bytes).sum();
    let (mut done, mut vals, mut enc) = (0u64, Vec::new(), Vec::new());
    progress(0, total);
    for t in &specs {
        let bad = |msg: String| ConvertError::Model(format!("{}: {msg}", t.name));
        let src = ct2_source(&t.name).ok_or_else(|| bad("no CTranslate2 equivalent".into()))?;
        let var = m.get(&src.var).ok_or_else(|| bad(format!("variable {} is missing", src.var)))?;
        let n: usize = t.shape.iter().product();
        let rows = var.dims.first().copied().unwrap_or(0);
        if rows != t.shape[0] * src.parts || var.n_elements() != n * src.parts {
            return Err(bad(format!("{} has shape {:?}, expected {:?} x{}", src.var, var.dims, t.shape, src.parts)));
        }
        let part_bytes = n * var.dtype.size();
        let data = &m.data(var)[src.part * part_bytes..(src.part + 1) * part_bytes];
        decode_floats(var.dtype, data, &mut vals).map_err(|e| bad(format!("{}: {e}", src.var)))?;
        encode_floats(out_type(t.kind), &vals, &mut enc);
        w.tensor(&t.name, &t.shape, out_type(t.kind), &enc)?;
        done += bytes(t);
        progress(done, total);
    }
    w.into_inner().flush()?;
    Ok(h)
}

/// Converts a CTranslate2 model folder (`model.bin` + `vocabulary.txt`) to
/// `out_file`, atomically: the file appears only once written, synced and
/// validated.
pub fn convert_ct2_dir(ct2_dir: &Path, out_file: &Path, progress: &dyn Fn(u64, u64)) -> Result<GgmlInfo, ModelError> {
    let (tmp, info) = convert_to_temp(ct2_dir, out_file, GgmlType::F16, progress)?;
    tmp.commit()?;
    Ok(info)
}

/// Converts into a synced, validated, not yet committed temp file beside
/// `out_file`.
pub(crate) fn convert_to_temp(
    ct2_dir: &Path,
    out_file: &Path,
    weights: GgmlType,
    progress: &dyn Fn(u64, u64),
) -> Result<(AtomicFile, GgmlInfo), ModelError> {
    let bin = ct2_dir.join("model.bin");
    let bad = |msg: String| ModelError::BadCt2 { path: ct2_dir.to_path_buf(), msg };
    let model = Ct2Model::parse(std::fs::read(&bin).map_err(ModelError::io(&bin))?)
        .map_err(|e| bad(format!("model.bin: {e}")))?;
    let vocab_path = ct2_dir.join("vocabulary.txt");
    let vocab = std::fs::read(&vocab_path).map_err(ModelError::io(&vocab_path))?;
    let vocab = String::from_utf8(vocab).map_err(|_| bad("vocabulary.txt is not UTF-8".into()))?;

    let (tmp, file) = AtomicFile::new(out_file)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    convert_ct2_model_as(&model, &vocab, &mut out, weights, progress).map_err(|e| match e {
        ConvertError::Model(msg) => bad(msg),
        ConvertError::Write(source) => ModelError::Io { path: tmp.path().into(), source },
    })?;
    let file = out.into_inner().map_err(|e| ModelError::Io { path: tmp.path().into(), source: e.into_error() })?;
    file.sync_all().map_err(ModelError::io(tmp.path()))?;
    drop(file);
    let info = validate_ggml(tmp.path())?;
    Ok((tmp, info))
}

#[cfg(test)]
#[path = "convert_tests.rs"]
pub(crate) mod tests;
