//! How much a stretch of audio's level moves: speech rises and falls with its syllables and the
//! gaps between words, by 15 to 30 dB; steady noise (a fan, hiss, a hum) stays within a few dB.
//! Whisper cannot tell the two apart by its confidence in an unfamiliar voice (see
//! `transcribe::whisper::is_invented`); the audio can.

/// Frames of 20 ms at 16 kHz.
const FRAME: usize = 320;
/// Frames quieter than this (RMS, -80 dBFS) are digital silence, such as the padding viva adds
/// around a clip: not part of what was heard, and their level says nothing about it.
const SILENT_RMS: f32 = 1e-4;
/// At least this many sounding frames (200 ms) to judge by.
const MIN_FRAMES: usize = 10;

/// The spread of the level of the sounding 20 ms frames of 16 kHz `samples`, in dB: the 90th
/// percentile's level less the 20th's. `None` when fewer than 200 ms sound.
///
/// Measured on 3 s of sox noise: white 0.7 dB, pink 3.0, brown 3.5, a sine 0.1; on espeak
/// speech: 15.7 dB clean, 22 to 30 with light white noise under it.
pub fn level_spread_db(samples: &[f32]) -> Option<f32> {
    let mut levels: Vec<f32> = samples
        .chunks_exact(FRAME)
        .map(|frame| (frame.iter().map(|x| x * x).sum::<f32>() / FRAME as f32).sqrt())
        .filter(|rms| *rms >= SILENT_RMS)
        .map(|rms| 20.0 * rms.log10())
        .collect();
    if levels.len() < MIN_FRAMES {
        return None;
    }
    levels.sort_by(f32::total_cmp);
    let at = |p: usize| levels[(levels.len() - 1) * p / 100];
    Some(at(90) - at(20))
}

#[cfg(test)]
mod tests {
    use super::level_spread_db;

    fn noise(n: usize, amplitude: f32) -> Vec<f32> {
        let mut x: u32 = 0x1234_5678;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32 - 0.5) * 2.0 * amplitude
            })
            .collect()
    }

    #[test]
    fn steady_noise_barely_moves_and_its_loudness_does_not_matter() {
        for amplitude in [0.01, 0.05, 0.3] {
            let spread = level_spread_db(&noise(32_000, amplitude)).unwrap();
            assert!(spread < 2.0, "{amplitude}: {spread}");
        }
    }

    #[test]
    fn syllables_and_gaps_move_it_by_tens_of_db() {
        // 150 ms "syllables" at 0.3 with 100 ms gaps holding only faint noise.
        let loud = noise(16 * 150, 0.3);
        let faint = noise(16 * 100, 0.003);
        let audio: Vec<f32> = (0..8).flat_map(|_| loud.iter().chain(&faint).copied()).collect();
        let spread = level_spread_db(&audio).unwrap();
        assert!(spread > 35.0, "{spread}");
    }

    #[test]
    fn digital_silence_is_left_out_and_too_little_sound_gives_no_figure() {
        let mut padded = vec![0.0; 16_000];
        padded.extend(noise(16_000, 0.05));
        padded.extend(vec![0.0; 16_000]);
        assert!(level_spread_db(&padded).unwrap() < 2.0);
        assert_eq!(level_spread_db(&vec![0.0; 32_000]), None);
        assert_eq!(level_spread_db(&noise(16 * 150, 0.05)), None);
    }
}
