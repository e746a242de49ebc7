//! viva lets whisper.cpp's AMX kernels take Whisper's q8_0 weights
//! (`scripts/whisper-patches/amx-q8_0.cmake`, wired in `.cargo/config.toml`), which upstream's
//! guard kept for rows a multiple of 2048 long.
//! These tests hold the patch to what it claims, through ggml's own API: at Whisper's shapes the
//! AMX kernels give what ggml's plain CPU kernels give, and the guard still refuses the rows
//! (32 long) on which the AMX kernel is wrong.
//!
//! They need a CPU with AMX (Intel Xeon 4th gen and later) and a whisper.cpp built for it (the
//! default native build). Elsewhere ggml has no AMX buffer and there is nothing to compare: the
//! tests say so and pass.

use std::ffi::CStr;
use std::ptr;

use whisper_rs::whisper_rs_sys as sys;

/// ggml's AMX buffer type, if this build and this CPU have one.
fn amx_buffer_type() -> Option<sys::ggml_backend_buffer_type_t> {
    unsafe {
        let dev = sys::ggml_backend_dev_by_type(sys::ggml_backend_dev_type_GGML_BACKEND_DEVICE_TYPE_CPU);
        assert!(!dev.is_null(), "ggml has no CPU device");
        let reg = sys::ggml_backend_dev_backend_reg(dev);
        let get = sys::ggml_backend_reg_get_proc_address(reg, c"ggml_backend_dev_get_extra_bufts".as_ptr());
        if get.is_null() {
            return None;
        }
        let get: unsafe extern "C" fn(sys::ggml_backend_dev_t) -> *mut sys::ggml_backend_buffer_type_t =
            std::mem::transmute(get);
        let mut at = get(dev);
        while !at.is_null() && !(*at).is_null() {
            if CStr::from_ptr(sys::ggml_backend_buft_name(*at)).to_bytes() == b"AMX" {
                return Some(*at);
            }
            at = at.add(1);
        }
        None
    }
}

fn amx_or_skip() -> Option<sys::ggml_backend_buffer_type_t> {
    let amx = amx_buffer_type();
    if amx.is_none() {
        eprintln!("no AMX on this machine (or whisper.cpp built without it): nothing to compare");
    }
    amx
}

/// Deterministic values in [-1, 1) (xorshift), so a failure can be reproduced.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

/// A q8_0 weight of `n` rows of `k`, as whisper.cpp stores it.
fn q8_0_weight(k: usize, n: usize, seed: u64) -> Vec<u8> {
    let w: Vec<f32> = values(k * n, seed).iter().map(|v| v * 0.1).collect();
    unsafe {
        let mut q = vec![0u8; sys::ggml_row_size(sys::ggml_type_GGML_TYPE_Q8_0, k as i64) * n];
        sys::ggml_quantize_chunk(
            sys::ggml_type_GGML_TYPE_Q8_0,
            w.as_ptr(),
            q.as_mut_ptr().cast(),
            0,
            n as i64,
            k as i64,
            ptr::null(),
        );
        q
    }
}

/// A weight tensor of `k` × `n` q8_0 in a buffer of type `buft`, with its context and buffer.
struct Weight {
    ctx: *mut sys::ggml_context,
    buffer: sys::ggml_backend_buffer_t,
    tensor: *mut sys::ggml_tensor,
}

impl Weight {
    fn new(buft: sys::ggml_backend_buffer_type_t, k: usize, n: usize, data: &[u8]) -> Weight {
        unsafe {
            let ctx = sys::ggml_init(sys::ggml_init_params {
                mem_size: 4 * sys::ggml_tensor_overhead(),
                mem_buffer: ptr::null_mut(),
                no_alloc: true,
            });
            let tensor = sys::ggml_new_tensor_2d(ctx, sys::ggml_type_GGML_TYPE_Q8_0, k as i64, n as i64);
            let buffer = sys::ggml_backend_alloc_ctx_tensors_from_buft(ctx, buft);
            assert!(!buffer.is_null(), "weight buffer");
            sys::ggml_backend_tensor_set(tensor, data.as_ptr().cast(), 0, data.len());
            Weight { ctx, buffer, tensor }
        }
    }
}

impl Drop for Weight {
    fn drop(&mut self) {
        unsafe {
            sys::ggml_backend_buffer_free(self.buffer);
            sys::ggml_free(self.ctx);
        }
    }
}

/// `weight × x` on ggml's CPU backend, with `x` of `m` rows, and whether the device takes the
/// product as placed (the AMX buffer's guard).
fn mul_mat(weight: &Weight, x: &[f32], m: usize, threads: i32) -> (bool, Vec<f32>) {
    unsafe {
        let w = weight.tensor;
        let (k, n) = ((*w).ne[0] as usize, (*w).ne[1] as usize);
        let ctx = sys::ggml_init(sys::ggml_init_params {
            mem_size: 8 * sys::ggml_tensor_overhead() + sys::ggml_graph_overhead(),
            mem_buffer: ptr::null_mut(),
            no_alloc: true,
        });
        let xt = sys::ggml_new_tensor_2d(ctx, sys::ggml_type_GGML_TYPE_F32, k as i64, m as i64);
        let y = sys::ggml_mul_mat(ctx, w, xt);
        let graph = sys::ggml_new_graph(ctx);
        sys::ggml_build_forward_expand(graph, y);
        let backend = sys::ggml_backend_cpu_init();
        sys::ggml_backend_cpu_set_n_threads(backend, threads);
        let buffer = sys::ggml_backend_alloc_ctx_tensors(ctx, backend);
        sys::ggml_backend_tensor_set(xt, x.as_ptr().cast(), 0, std::mem::size_of_val(x));
        let supported = sys::ggml_backend_supports_op(backend, y);
        let mut out = vec![0f32; n * m];
        if supported {
            assert_eq!(sys::ggml_backend_graph_compute(backend, graph), sys::ggml_status_GGML_STATUS_SUCCESS);
            sys::ggml_backend_tensor_get(y, out.as_mut_ptr().cast(), 0, std::mem::size_of_val(out.as_slice()));
        }
        sys::ggml_backend_buffer_free(buffer);
        sys::ggml_backend_free(backend);
        sys::ggml_free(ctx);
        (supported, out)
    }
}

#[test]
fn amx_q8_0_matches_the_cpu_kernels_at_whispers_shapes() {
    let Some(amx) = amx_or_skip() else { return };
    let cpu = unsafe { sys::ggml_backend_cpu_buffer_type() };
    // The shortest rows the guard lets through, then rows (k) and outputs (n) of tiny to large's
    // projections. m covers the decoder's one token, a few tokens, a short stretch and a full
    // 30 s window (the encoder's 1500 frames).
    let mut seed = 1;
    for (k, n) in [(64, 256), (384, 384), (384, 1536), (1536, 384), (512, 2048), (1280, 5120), (5120, 1280)] {
        let q = q8_0_weight(k, n, seed);
        let (on_amx, on_cpu) = (Weight::new(amx, k, n, &q), Weight::new(cpu, k, n, &q));
        for m in [1, 3, 33, 1500] {
            for threads in [1, 2] {
                seed += 1;
                let x = values(k * m, seed);
                let (taken, a) = mul_mat(&on_amx, &x, m, threads);
                assert!(
                    taken,
                    "the AMX buffer refuses k={k} n={n}: is scripts/whisper-patches/amx-q8_0.cmake applied?"
                );
                let (_, c) = mul_mat(&on_cpu, &x, m, threads);
                let scale = c.iter().fold(0f32, |s, v| s.max(v.abs()));
                let worst = a.iter().zip(&c).fold(0f32, |s, (a, c)| s.max((a - c).abs()));
                // Same integer products, summed in another order: measured ≤ 3e-7 of the scale.
                assert!(
                    worst <= 1e-5 * scale,
                    "k={k} n={n} m={m} threads={threads}: AMX differs from the CPU kernels by {worst} (scale {scale})"
                );
            }
        }
    }
}

#[test]
fn the_amx_guard_still_refuses_rows_the_kernel_gets_wrong() {
    let Some(amx) = amx_or_skip() else { return };
    // 32-long rows (one q8_0 block): the AMX kernel returns garbage there, measured.
    let q = q8_0_weight(32, 64, 7);
    let (taken, _) = mul_mat(&Weight::new(amx, 32, 64, &q), &values(32 * 33, 8), 33, 2);
    assert!(!taken, "the AMX buffer takes 32-long q8_0 rows");
    // 64-long rows are the shortest it takes.
    let q = q8_0_weight(64, 64, 9);
    let (taken, _) = mul_mat(&Weight::new(amx, 64, 64, &q), &values(64 * 33, 10), 33, 2);
    assert!(taken, "the AMX buffer refuses 64-long q8_0 rows");
}
