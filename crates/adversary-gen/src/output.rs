//! An `adversarial/<attack>/` folder: every file is written into a staging folder beside
//! it, which replaces the old folder only once complete, so a failed run leaves either
//! the previous complete set or nothing, never a mix.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nullclass::npy;
use serde::Serialize;
use tch::Tensor;

/// A `.npy` file's name, dtype and shape, for meta.json.
#[derive(Debug, Serialize)]
pub struct FileEntry {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<i64>,
}

/// Files being written into a staging folder that becomes `target` on [`Staged::commit`].
pub struct Staged {
    dir: tempfile::TempDir,
    target: PathBuf,
    pub files: Vec<FileEntry>,
}

impl Staged {
    pub fn new(target: &Path) -> Result<Self> {
        let parent = target.parent().context("the output folder has no parent")?;
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
        let dir = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(parent)
            .with_context(|| format!("cannot create a staging folder in {}", parent.display()))?;
        Ok(Self {
            dir,
            target: target.to_path_buf(),
            files: Vec::new(),
        })
    }

    pub fn npy(&mut self, name: &str, t: &Tensor) -> Result<()> {
        npy::write(&self.dir.path().join(name), t)?;
        let dtype = match t.kind() {
            tch::Kind::Float => "float32",
            tch::Kind::Int64 => "int64",
            _ => "other",
        };
        self.files.push(FileEntry {
            name: name.to_string(),
            dtype: dtype.to_string(),
            shape: t.size(),
        });
        Ok(())
    }

    pub fn json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        nullclass::artifacts::write_json(&self.dir.path().join(name), value)
    }

    /// Replaces `target` with the staged folder.
    pub fn commit(self) -> Result<()> {
        let Staged { dir, target, .. } = self;
        if target.exists() {
            let parent = target.parent().context("the output folder has no parent")?;
            let old = tempfile::Builder::new()
                .prefix(".old-")
                .tempdir_in(parent)
                .with_context(|| format!("cannot create a folder in {}", parent.display()))?;
            let aside = old.path().join("previous");
            fs::rename(&target, &aside)
                .with_context(|| format!("cannot move the old {} aside", target.display()))?;
            // `old` is removed with what it holds when it drops.
        }
        let staged = dir.keep();
        fs::rename(&staged, &target).with_context(|| {
            let _ = fs::remove_dir_all(&staged);
            format!("cannot move the finished folder to {}", target.display())
        })
    }
}
