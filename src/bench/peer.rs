//! The side-by-side peer: an external command (faster-whisper on the same weights) run on the
//! same files in the same bench run, so the ratio compares like with like on this machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use serde_json::Value;

pub struct PeerFile {
    /// The file name, as the bench's rows name it.
    pub name: String,
    pub seconds: f64,
    pub text: String,
}

/// Runs `command MODEL FILE…` with `THREADS` and `COMPUTE` set, and reads its JSON lines.
pub fn run(
    command: &Path,
    model: &Path,
    files: &[PathBuf],
    threads: usize,
    compute: &str,
) -> anyhow::Result<Vec<PeerFile>> {
    let output = Command::new("bash")
        .arg(command)
        .arg(model)
        .args(files)
        .env("THREADS", threads.to_string())
        .env("COMPUTE", compute)
        .output()
        .with_context(|| format!("running {}", command.display()))?;
    if !output.status.success() {
        bail!("the peer failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// One `{file, seconds, text}` line per file; other lines (the total) are skipped.
fn parse(stdout: &str) -> anyhow::Result<Vec<PeerFile>> {
    let mut files = Vec::new();
    for line in stdout.lines().filter(|l| l.trim_start().starts_with('{')) {
        let value: Value = serde_json::from_str(line).with_context(|| format!("peer output: {line}"))?;
        let (Some(file), Some(seconds)) = (value["file"].as_str(), value["seconds"].as_f64()) else { continue };
        let name = Path::new(file).file_name().unwrap_or_default().to_string_lossy().into_owned();
        files.push(PeerFile { name, seconds, text: value["text"].as_str().unwrap_or_default().to_string() });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_one_line_per_file_and_skips_the_total() {
        let out = "{\"file\": \"target/w/answer-10s.wav\", \"seconds\": 0.938, \"text\": \"We had an outage.\"}\n\
                   {\"total_seconds\": 0.938, \"files\": 1}\n";
        let files = parse(out).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].name, "answer-10s.wav");
        assert_eq!(files[0].seconds, 0.938);
        assert_eq!(files[0].text, "We had an outage.");
    }
}
