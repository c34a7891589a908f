//! Where every artifact lives, and how it is written: always to a temporary file in
//! the destination folder, renamed into place once complete, so that a killed or
//! failed run never leaves a half-written artifact that `make` would take as done.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::nulls::Variant;

/// The folder of one set of 8 models and everything derived from them.
#[derive(Clone, Debug)]
pub struct SetDir {
    pub dir: PathBuf,
    pub seed: u64,
}

impl SetDir {
    pub fn new(root: &Path, seed: u64) -> Self {
        Self {
            dir: root.join(format!("seed-{seed:02}")),
            seed,
        }
    }

    pub fn models_dir(&self) -> PathBuf {
        self.dir.join("models")
    }

    /// The checkpoint with the lowest validation loss.
    pub fn model(&self, variant: &Variant) -> PathBuf {
        self.models_dir()
            .join(format!("{}.safetensors", variant.name()))
    }

    /// The checkpoint after the last epoch.
    pub fn model_last(&self, variant: &Variant) -> PathBuf {
        self.models_dir()
            .join(format!("{}.last.safetensors", variant.name()))
    }

    pub fn model_json(&self, variant: &Variant) -> PathBuf {
        self.models_dir().join(format!("{}.json", variant.name()))
    }

    pub fn model_history(&self, variant: &Variant) -> PathBuf {
        self.models_dir()
            .join(format!("{}.history.csv", variant.name()))
    }

    pub fn fgsm_dir(&self) -> PathBuf {
        self.dir.join("adversarial").join("fgsm")
    }

    /// The white-box attack suite beyond the report (PGD, adaptive attacks).
    pub fn robust_dir(&self) -> PathBuf {
        self.dir.join("adversarial").join("robust")
    }

    pub fn eval_dir(&self) -> PathBuf {
        self.dir.join("eval")
    }
}

/// Writes `path` through `write`, which receives a temporary path in the same folder
/// (with the same extension, since some writers pick the format from it). The file
/// appears at `path` only if `write` succeeds.
pub fn write_atomic<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    let suffix = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let prefix = tmp_prefix(path)?;
    remove_stale_tmp(dir, &prefix, &suffix)?;
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .rand_bytes(TMP_RAND_CHARS)
        .suffix(&suffix)
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?
        .into_temp_path();
    write(&tmp)?;
    // Temporary files are created private (0600); artifacts are for everyone to read.
    set_readable(&tmp)?;
    tmp.persist(path)
        .with_context(|| format!("cannot move the finished file to {}", path.display()))?;
    Ok(())
}

/// Random characters in a temporary file's name: `.tmp-<file name>.<6 chars><.ext>`,
/// so that a leftover of a killed run can be told apart and removed by the next write.
const TMP_RAND_CHARS: usize = 6;

fn tmp_prefix(path: &Path) -> Result<String> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    Ok(format!(".tmp-{}.", name.to_string_lossy()))
}

/// Removes the temporary files of `path` that a killed run left in `dir`. Writers of
/// other files are not touched: their temporary names have another prefix.
fn remove_stale_tmp(dir: &Path, prefix: &str, suffix: &str) -> Result<()> {
    let entries =
        fs::read_dir(dir).with_context(|| format!("cannot list folder {}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(n) = name.to_str() else { continue };
        if n.len() == prefix.len() + TMP_RAND_CHARS + suffix.len()
            && n.starts_with(prefix)
            && n.ends_with(suffix)
        {
            fs::remove_file(entry.path()).with_context(|| {
                format!(
                    "cannot remove {}, left by a killed run",
                    entry.path().display()
                )
            })?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_readable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot set permissions of {}", path.display()))
}

#[cfg(not(unix))]
fn set_readable(_path: &Path) -> Result<()> {
    Ok(())
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, |tmp| {
        let text = serde_json::to_string_pretty(value)?;
        fs::write(tmp, text + "\n").with_context(|| format!("cannot write {}", tmp.display()))
    })
}

/// Serialises a value through its `Display` (devices, variants) in the JSON that
/// records a tool's settings; for `#[serde(serialize_with = ...)]`.
pub fn serialize_display<T: std::fmt::Display, S: serde::Serializer>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// SHA-256 of a file's bytes, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(sha256_hex(&bytes))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.json");
        let err = write_atomic(&target, |tmp| {
            fs::write(tmp, "partial")?;
            anyhow::bail!("writer failed")
        });
        assert!(err.is_err());
        assert!(!target.exists());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temp file left behind"
        );
    }

    #[test]
    fn a_killed_writes_leftover_goes_with_the_next_write_of_that_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.json");
        // What a run killed inside `write` leaves: a named temporary file, never persisted.
        let mut kept = None;
        let _ = write_atomic(&target, |tmp| {
            fs::write(tmp, "partial")?;
            kept = Some(tmp.to_path_buf());
            fs::hard_link(tmp, dir.path().join("copy"))?;
            anyhow::bail!("killed")
        });
        let leftover = kept.unwrap();
        fs::rename(dir.path().join("copy"), &leftover).unwrap();
        let other = dir.path().join(".tmp-out.json.x.abcdef.json");
        fs::write(&other, "another file's").unwrap();
        write_json(&target, &serde_json::json!({"a": 1})).unwrap();
        assert!(!leftover.exists(), "{} stays", leftover.display());
        assert!(other.exists(), "another file's temporary was removed");
        assert!(target.exists());
    }

    #[test]
    fn successful_write_lands() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub").join("out.json");
        write_json(&target, &serde_json::json!({"a": 1})).unwrap();
        let back: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&target).unwrap()).unwrap();
        assert_eq!(back["a"], 1);
    }
}
