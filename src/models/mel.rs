//! Mel filter bank, computed exactly like `librosa.filters.mel(sr=16000,
//! n_fft=400, n_mels=N)` with the defaults Whisper used (Slaney mel scale,
//! `norm="slaney"`). whisper.cpp reads the bank from the model file, so we
//! compute it here instead of shipping a data file.

pub const SAMPLE_RATE: f64 = 16000.0;
pub const N_FFT: usize = 400;
/// Number of FFT bins (columns of the bank).
pub const N_BINS: usize = N_FFT / 2 + 1;

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(f: f64) -> f64 {
    if f >= MIN_LOG_HZ {
        MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / log_step()
    } else {
        f / F_SP
    }
}

fn mel_to_hz(m: f64) -> f64 {
    if m >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (m - MIN_LOG_MEL)).exp()
    } else {
        F_SP * m
    }
}

/// Row-major `[n_mels][N_BINS]` filter bank, f32 like librosa's output.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    // Computed as numpy's `rfftfreq` does, so rounding (and thus which
    // weights are exactly zero) matches librosa bit for bit.
    let bin_hz = 1.0 / (N_FFT as f64 * (1.0 / SAMPLE_RATE));
    let fft_freqs: Vec<f64> = (0..N_BINS).map(|k| k as f64 * bin_hz).collect();
    // n_mels + 2 band edges evenly spaced on the mel scale from 0 Hz to Nyquist.
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2.0));
    let n_edges = n_mels + 2;
    let step = (hi - lo) / (n_edges - 1) as f64;
    // Like `np.linspace`, the last point is exactly `hi`.
    let mel = |i: usize| if i == n_edges - 1 { hi } else { lo + step * i as f64 };
    let edges: Vec<f64> = (0..n_edges).map(|i| mel_to_hz(mel(i))).collect();

    let mut out = Vec::with_capacity(n_mels * N_BINS);
    for i in 0..n_mels {
        let (left, centre, right) = (edges[i], edges[i + 1], edges[i + 2]);
        // Slaney normalisation: each triangle has unit area in Hz.
        let enorm = 2.0 / (right - left);
        for &f in &fft_freqs {
            let lower = (f - left) / (centre - left);
            let upper = (right - f) / (right - centre);
            // librosa stores the triangle in f32 first, then scales it.
            let w = lower.min(upper).max(0.0) as f32;
            out.push((w as f64 * enorm) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from `librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)`
    /// (librosa 0.11).
    #[test]
    fn matches_librosa() {
        let m = mel_filters(80);
        assert_eq!(m.len(), 80 * 201);
        let at = |r: usize, c: usize| m[r * N_BINS + c] as f64;
        let refs = [
            (0, 1, 0.02486259490251541),
            (1, 1, 0.001990821911022067),
            (1, 2, 0.022871771827340126),
            (10, 10, 0.01990821771323681),
            (10, 11, 0.004954374860972166),
            (40, 43, 0.014735566452145576),
            (40, 44, 0.006518189795315266),
            (79, 186, 0.000366741674952209),
            (79, 190, 0.0022320549469441175),
        ];
        for (r, c, want) in refs {
            assert!((at(r, c) - want).abs() < 1e-8, "[{r}][{c}] = {} want {want}", at(r, c));
        }
        assert_eq!(at(0, 2), 0.0);
        assert_eq!(at(79, 200), 0.0);
        let row = |r: usize| m[r * N_BINS..(r + 1) * N_BINS].iter().map(|&v| v as f64).sum::<f64>();
        for (r, want) in [(0, 0.02486259490251541), (40, 0.026664861012250185), (79, 0.024925339792389423)] {
            assert!((row(r) - want).abs() < 1e-7, "row {r} sum {} want {want}", row(r));
        }
        assert_eq!(m.iter().filter(|&&v| v > 0.0).count(), 391);
        let total: f64 = m.iter().map(|&v| v as f64).sum();
        assert!((total - 1.999024092387117).abs() < 1e-6);
    }

    #[test]
    fn large_v3_bank_matches_librosa_total() {
        let total: f64 = mel_filters(128).iter().map(|&v| v as f64).sum();
        assert!((total - 3.1909855409403463).abs() < 1e-6, "{total}");
    }
}
