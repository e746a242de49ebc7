//! File helpers: atomic replacement and hashing. A model file is either
//! complete and validated or absent; a crash mid-write leaves only a hidden
//! temp file that is removed on the next failure path or ignored.

use super::error::ModelError;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A temp file next to `dest` that is renamed onto it by `commit`, and
/// deleted if dropped uncommitted.
pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl AtomicFile {
    pub fn new(dest: &Path) -> Result<(Self, File), ModelError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(ModelError::io(dir))?;
        let base = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // Same directory, so the final rename stays on one filesystem.
        let tmp = dir.join(format!(".{base}.{}-{n}.tmp", std::process::id()));
        let file = File::create(&tmp).map_err(ModelError::io(&tmp))?;
        Ok((AtomicFile { tmp, dest: dest.to_path_buf(), committed: false }, file))
    }

    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Renames the (already synced and closed) temp file onto the destination.
    pub fn commit(self) -> Result<PathBuf, ModelError> {
        let dest = self.dest.clone();
        self.commit_to(&dest)
    }

    /// Like `commit` but to another name in the same directory, for when
    /// the name depends on the content.
    pub fn commit_to(mut self, dest: &Path) -> Result<PathBuf, ModelError> {
        fs::rename(&self.tmp, dest).map_err(ModelError::io(dest))?;
        self.committed = true;
        // Persist the rename itself; best effort, not all platforms allow it.
        if let Some(dir) = dest.parent() {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(dest.to_path_buf())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A directory removed (recursively) when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(parent: &Path, label: &str) -> Result<Self, ModelError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = parent.join(format!(".{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).map_err(ModelError::io(&p))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Hex sha256 of a file's contents.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut f = File::open(path).map_err(ModelError::io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(ModelError::io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Copies `src` to a temp file beside `dest`, fsyncs it, and returns it
/// uncommitted so the caller can validate before `commit`.
pub fn copy_to_temp(src: &Path, dest: &Path) -> Result<AtomicFile, ModelError> {
    let (tmp, mut out) = AtomicFile::new(dest)?;
    let mut input = File::open(src).map_err(ModelError::io(src))?;
    io::copy(&mut input, &mut out).map_err(ModelError::io(tmp.path()))?;
    out.sync_all().map_err(ModelError::io(tmp.path()))?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_temp_is_removed_and_commit_renames() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("m.bin");
        let (t, _f) = AtomicFile::new(&dest).unwrap();
        let tmp = t.path().to_path_buf();
        assert!(tmp.exists());
        drop(t);
        assert!(!tmp.exists() && !dest.exists());

        fs::write(dir.path().join("src"), b"abc").unwrap();
        let t = copy_to_temp(&dir.path().join("src"), &dest).unwrap();
        assert_eq!(t.commit().unwrap(), dest);
        assert_eq!(fs::read(&dest).unwrap(), b"abc");
        assert_eq!(sha256_file(&dest).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2, "no temp files left");
    }
}
