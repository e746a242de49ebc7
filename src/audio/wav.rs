//! WAV files: encoding stored answers for playback and reading recordings for the CLI and bench.

use std::io::Cursor;
use std::path::Path;

use super::{StreamResampler, SAMPLE_RATE};

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot read WAV {path}: {source}")]
    Read { path: String, source: hound::Error },
    #[error("WAV {path} has {channels} channels; 1 or 2 are supported")]
    Channels { path: String, channels: u16 },
}

/// 16 kHz mono 16-bit WAV bytes.
pub fn encode_wav(samples: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    {
        let mut writer = hound::WavWriter::new(&mut bytes, spec).expect("writing to memory cannot fail");
        let mut i16_writer = writer.get_i16_writer(samples.len() as u32);
        for &s in samples {
            i16_writer.write_sample(s);
        }
        i16_writer.flush().expect("writing to memory cannot fail");
        writer.finalize().expect("writing to memory cannot fail");
    }
    bytes.into_inner()
}

/// Reads any PCM WAV and returns it as 16 kHz mono `f32`.
pub fn read_wav_mono_16k(path: &Path) -> Result<Vec<f32>, WavError> {
    let name = path.display().to_string();
    let mut reader = hound::WavReader::open(path).map_err(|source| WavError::Read { path: name.clone(), source })?;
    let spec = reader.spec();
    if !(1..=2).contains(&spec.channels) {
        return Err(WavError::Channels { path: name, channels: spec.channels });
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>(),
        hound::SampleFormat::Int => {
            let scale = (1i64 << (spec.bits_per_sample - 1)) as f32;
            reader.samples::<i32>().map(|s| s.map(|v| v as f32 / scale)).collect::<Result<_, _>>()
        }
    }
    .map_err(|source| WavError::Read { path: name, source })?;
    let mono: Vec<f32> = interleaved
        .chunks_exact(spec.channels as usize)
        .map(|f| f.iter().sum::<f32>() / spec.channels as f32)
        .collect();
    let mut resampler = StreamResampler::new(spec.sample_rate);
    let mut out = resampler.push(&mono);
    out.extend(resampler.flush());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_round_trip() {
        let samples: Vec<i16> = (0..1600).map(|i| (i * 7) as i16).collect();
        let bytes = encode_wav(&samples);
        assert_eq!(bytes.len(), 44 + 3200);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        std::fs::write(&path, &bytes).unwrap();
        let back = read_wav_mono_16k(&path).unwrap();
        assert_eq!(back.len(), 1600);
        assert!((back[100] - 700.0 / 32768.0).abs() < 1e-6);
    }
}
