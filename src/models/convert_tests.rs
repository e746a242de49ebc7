//! Tests for the converter on a synthetic 1-layer CTranslate2 model.

use super::*;
use crate::models::ct2::{encode, f16_bytes, Ct2Dtype};
use crate::models::validate::validate_reader;
use std::collections::HashMap;
use std::io::Cursor;

const S: usize = 8; // state
const V: usize = 5; // vocab

/// Every float var holds its flat index (exact in f16 for these sizes), so
/// the tests can tell which rows ended up where.
pub(crate) fn synthetic_ct2() -> Vec<u8> {
    let mut vars: Vec<(String, Vec<usize>)> = vec![
        ("decoder/embeddings/weight".into(), vec![V, S]),
        ("encoder/position_encodings/encodings".into(), vec![6, S]),
        ("decoder/position_encodings/encodings".into(), vec![4, S]),
        ("encoder/conv1/weight".into(), vec![S, 3, 3]),
        ("encoder/conv1/bias".into(), vec![S]),
        ("encoder/conv2/weight".into(), vec![S, S, 3]),
        ("encoder/conv2/bias".into(), vec![S]),
    ];
    for side in ["encoder", "decoder"] {
        let mut blocks = vec![("self_attention", 3)];
        if side == "decoder" {
            vars.push(("decoder/layer_0/attention/linear_0/weight".into(), vec![S, S]));
            vars.push(("decoder/layer_0/attention/linear_0/bias".into(), vec![S]));
            blocks.push(("attention", 2));
        }
        for (block, fused) in blocks {
            let p = format!("{side}/layer_0/{block}");
            let (fused_name, out_name) =
                if block == "attention" { ("linear_1", "linear_2") } else { ("linear_0", "linear_1") };
            vars.push((format!("{p}/{fused_name}/weight"), vec![fused * S, S]));
            vars.push((format!("{p}/{fused_name}/bias"), vec![fused * S]));
            vars.push((format!("{p}/{out_name}/weight"), vec![S, S]));
            vars.push((format!("{p}/{out_name}/bias"), vec![S]));
        }
        for ln in ["self_attention", "attention", "ffn"] {
            if ln == "attention" && side == "encoder" {
                continue;
            }
            vars.push((format!("{side}/layer_0/{ln}/layer_norm/gamma"), vec![S]));
            vars.push((format!("{side}/layer_0/{ln}/layer_norm/beta"), vec![S]));
        }
        vars.push((format!("{side}/layer_0/ffn/linear_0/weight"), vec![4 * S, S]));
        vars.push((format!("{side}/layer_0/ffn/linear_0/bias"), vec![4 * S]));
        vars.push((format!("{side}/layer_0/ffn/linear_1/weight"), vec![S, 4 * S]));
        vars.push((format!("{side}/layer_0/ffn/linear_1/bias"), vec![S]));
        vars.push((format!("{side}/layer_norm/gamma"), vec![S]));
        vars.push((format!("{side}/layer_norm/beta"), vec![S]));
    }
    let mut encoded: Vec<(&str, &[usize], Ct2Dtype, Vec<u8>)> = vars
        .iter()
        .map(|(n, d)| {
            let vals: Vec<f32> = (0..d.iter().product::<usize>()).map(|i| i as f32).collect();
            (n.as_str(), d.as_slice(), Ct2Dtype::F16, f16_bytes(&vals))
        })
        .collect();
    encoded.push(("encoder/num_heads", &[], Ct2Dtype::I16, 2i16.to_le_bytes().to_vec()));
    encoded.push(("decoder/num_heads", &[], Ct2Dtype::I16, 2i16.to_le_bytes().to_vec()));
    encode(&encoded, &[("decoder/projection/weight", "decoder/embeddings/weight")])
}

pub(crate) const VOCAB: &str = "a\nĠb\nĊ\nd\ne\n";

/// Minimal ggml walker for tests: name -> (dims, type code, data).
fn tensors(file: &[u8]) -> HashMap<String, (Vec<i32>, i32, Vec<u8>)> {
    let rd = |p: &mut usize| {
        *p += 4;
        i32::from_le_bytes(file[*p - 4..*p].try_into().unwrap())
    };
    let mut p = 48;
    let (n_mel, n_fft) = (rd(&mut p), rd(&mut p));
    p += (n_mel * n_fft * 4) as usize;
    for _ in 0..rd(&mut p) {
        p += rd(&mut p) as usize;
    }
    let mut out = HashMap::new();
    while p < file.len() {
        let (nd, nl, ty) = (rd(&mut p), rd(&mut p), rd(&mut p));
        let dims: Vec<i32> = (0..nd).map(|_| rd(&mut p)).collect();
        let name = String::from_utf8(file[p..p + nl as usize].to_vec()).unwrap();
        p += nl as usize;
        let n = dims.iter().product::<i32>() as usize * if ty == 0 { 4 } else { 2 };
        out.insert(name, (dims, ty, file[p..p + n].to_vec()));
        p += n;
    }
    out
}

fn floats(ty: i32, data: &[u8]) -> Vec<f32> {
    if ty == 0 {
        data.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    } else {
        data.chunks(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
    }
}

fn convert_synthetic() -> Vec<u8> {
    let m = Ct2Model::parse(synthetic_ct2()).unwrap();
    let mut out = Vec::new();
    let h = convert_ct2_model(&m, VOCAB, &mut out, &|_, _| {}).unwrap();
    assert_eq!(h.to_array(), [5, 6, 8, 2, 1, 4, 8, 2, 1, 3, 1]);
    out
}

#[test]
fn output_validates() {
    let out = convert_synthetic();
    let info = validate_reader(Cursor::new(&out), out.len() as u64).unwrap();
    assert_eq!(info.n_tensors, 7 + 15 + 4 + 24);
}

#[test]
fn qkv_split_and_types() {
    let t = tensors(&convert_synthetic());
    let rows = |name: &str| {
        let (_, ty, d) = &t[name];
        floats(*ty, d)
    };
    let n = (S * S) as f32;
    assert_eq!(rows("encoder.blocks.0.attn.query.weight")[0], 0.0);
    assert_eq!(rows("encoder.blocks.0.attn.key.weight")[0], n);
    assert_eq!(rows("encoder.blocks.0.attn.value.weight")[0], 2.0 * n);
    assert_eq!(rows("decoder.blocks.0.cross_attn.value.weight")[0], n);
    // Biases: query gets elements 0..S, value 2S..3S; the key third is dropped.
    assert_eq!(rows("encoder.blocks.0.attn.query.bias"), (0..S).map(|i| i as f32).collect::<Vec<_>>());
    assert_eq!(rows("encoder.blocks.0.attn.value.bias")[0], 2.0 * S as f32);
    assert_eq!(rows("decoder.blocks.0.cross_attn.value.bias")[0], S as f32);
    assert!(!t.contains_key("encoder.blocks.0.attn.key.bias"));
    // Conv bias is [S, 1] -> dims (1, S), f32; conv weight reversed, f16.
    assert_eq!(t["encoder.conv1.bias"].0, vec![1, S as i32]);
    assert_eq!(t["encoder.conv1.bias"].1, 0);
    assert_eq!(t["encoder.conv1.weight"].0, vec![3, 3, S as i32]);
    assert_eq!(t["encoder.conv1.weight"].1, 1);
    assert_eq!(t["decoder.positional_embedding"].1, 0);
    assert_eq!(t["decoder.token_embedding.weight"].1, 1);
    assert_eq!(t["decoder.blocks.0.mlp_ln.weight"].1, 0);
}

#[test]
fn name_mapping() {
    let s = |n: &str| ct2_source(n).map(|s| (s.var, s.part, s.parts));
    assert_eq!(s("encoder.conv1.weight"), Some(("encoder/conv1/weight".into(), 0, 1)));
    assert_eq!(
        s("encoder.blocks.3.attn.key.weight"),
        Some(("encoder/layer_3/self_attention/linear_0/weight".into(), 1, 3))
    );
    assert_eq!(
        s("decoder.blocks.0.cross_attn.key.weight"),
        Some(("decoder/layer_0/attention/linear_1/weight".into(), 0, 2))
    );
    assert_eq!(
        s("decoder.blocks.0.cross_attn.out.bias"),
        Some(("decoder/layer_0/attention/linear_2/bias".into(), 0, 1))
    );
    assert_eq!(s("encoder.blocks.0.mlp.2.bias"), Some(("encoder/layer_0/ffn/linear_1/bias".into(), 0, 1)));
    assert_eq!(
        s("decoder.blocks.1.cross_attn_ln.weight"),
        Some(("decoder/layer_1/attention/layer_norm/gamma".into(), 0, 1))
    );
    assert_eq!(s("encoder.ln_post.bias"), Some(("encoder/layer_norm/beta".into(), 0, 1)));
    assert_eq!(s("decoder.positional_embedding"), Some(("decoder/position_encodings/encodings".into(), 0, 1)));
    assert_eq!(s("encoder.blocks.0.cross_attn.query.weight"), None);
    assert_eq!(s("encoder.blocks.x.attn.query.weight"), None);
    assert_eq!(s("nonsense"), None);
}

#[test]
fn missing_variable_is_a_clear_error() {
    let bytes = encode(&[("encoder/num_heads", &[], Ct2Dtype::I16, vec![2, 0])], &[]);
    let m = Ct2Model::parse(bytes).unwrap();
    let e = convert_ct2_model(&m, VOCAB, Vec::new(), &|_, _| {}).unwrap_err();
    assert!(e.to_string().contains("decoder/embeddings/weight"), "{e}");
}

#[test]
fn convert_dir_writes_atomically() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.bin"), synthetic_ct2()).unwrap();
    std::fs::write(dir.path().join("vocabulary.txt"), VOCAB).unwrap();
    let out = dir.path().join("out/ggml.bin");
    let last = std::cell::Cell::new((0, 1));
    let info = convert_ct2_dir(dir.path(), &out, &|d, t| last.set((d, t))).unwrap();
    assert_eq!(info.file_bytes, std::fs::metadata(&out).unwrap().len());
    assert_eq!(last.get().0, last.get().1, "progress reaches the total");
    assert_eq!(std::fs::read_dir(dir.path().join("out")).unwrap().count(), 1);
    std::fs::write(dir.path().join("model.bin"), b"junk").unwrap();
    assert!(matches!(convert_ct2_dir(dir.path(), &out, &|_, _| {}), Err(ModelError::BadCt2 { .. })));
}

#[test]
fn q8_0_blocks_round_trip_within_half_a_step() {
    let vals: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.37).sin() * 0.8).collect();
    let mut out = Vec::new();
    crate::models::ggml::encode_floats(GgmlType::Q8_0, &vals, &mut out);
    assert_eq!(out.len(), 2 * 34);
    for (b, block) in vals.chunks(32).enumerate() {
        let bytes = &out[b * 34..(b + 1) * 34];
        let d = half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f32();
        let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
        assert!((d - amax / 127.0).abs() < 1e-4);
        for (v, q) in block.iter().zip(&bytes[2..]) {
            assert!((v - (*q as i8) as f32 * d).abs() <= d * 0.5 + 1e-4, "{v} vs {}", *q as i8);
        }
    }
}
