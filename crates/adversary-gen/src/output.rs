//! An `adversarial/<attack>/` folder: every file is written into a staging folder beside
//! it, which replaces the old folder only once complete ([`nullclass::staged_dir`]), so a
//! failed or killed run leaves the previous complete set or the new one, never a mix.

use std::path::Path;

use anyhow::Result;
use nullclass::npy;
use nullclass::staged_dir::StagedDir;
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
    dir: StagedDir,
    pub files: Vec<FileEntry>,
}

impl Staged {
    /// Also recovers from, and cleans up after, a run killed while writing `target`.
    pub fn new(target: &Path) -> Result<Self> {
        Ok(Self {
            dir: StagedDir::new(target)?,
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
        self.dir.commit()
    }
}
