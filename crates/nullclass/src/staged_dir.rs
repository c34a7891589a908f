//! A folder of artifacts replaced as a whole: written into a staging folder beside
//! its target, then swapped in, so that a reader, or a run killed at any point, finds
//! the previous complete folder or the new one, never a mix.
//!
//! On Linux the swap is one `renameat2(RENAME_EXCHANGE)`: the target never goes
//! missing. Where that is not available (other systems, some file systems) the old
//! folder is first renamed to `.old-<name>` and the new one moved in; a kill between
//! the two renames leaves `.old-<name>` and no target, and the next run that stages
//! the same target puts the old folder back before anything else. Either way the next
//! run removes what a killed one left (`.staging-<name>.*`, `.old-<name>`).
//!
//! Two runs staging the same target at once are not supported: the second removes
//! the first's staging folder, and the first then fails to commit.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Random characters in a staging folder's name (tempfile's default, fixed here so
/// that a leftover can be told from a folder of another name).
const RAND_CHARS: usize = 6;

/// Files written into `path()` become `target` on [`StagedDir::commit`]; dropped
/// without a commit, the staging folder is removed.
#[derive(Debug)]
pub struct StagedDir {
    staging: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Recovers from a killed earlier run (see the module's text), then creates an
    /// empty staging folder beside `target`.
    pub fn new(target: &Path) -> Result<Self> {
        let (parent, name) = parent_and_name(target)?;
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
        recover(target)?;
        let staging = tempfile::Builder::new()
            .prefix(&staging_prefix(&name))
            .rand_bytes(RAND_CHARS)
            .tempdir_in(parent)
            .with_context(|| format!("cannot create a staging folder in {}", parent.display()))?
            .keep();
        Ok(Self {
            staging,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// The staging folder to write into.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Puts the staged folder in place of `target` (or at it, if there is none).
    pub fn commit(mut self) -> Result<()> {
        swap_in(&self.staging, &self.target, true)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// Replaces `target` by `staging`: by one exchange where the system has it (and
/// `exchange_first`), else old folder to `.old-<name>`, then the new one in.
fn swap_in(staging: &Path, target: &Path, exchange_first: bool) -> Result<()> {
    if fs::symlink_metadata(target).is_err() {
        return fs::rename(staging, target)
            .with_context(|| format!("cannot move the finished folder to {}", target.display()));
    }
    if exchange_first {
        match exchange(staging, target) {
            Ok(()) => {
                // The staging path now holds the previous folder; if removing it fails
                // the new result is in place all the same and the next run removes it.
                let _ = fs::remove_dir_all(staging);
                return Ok(());
            }
            Err(e) if exchange_unsupported(&e) => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot swap the finished folder in for {}",
                        target.display()
                    )
                })
            }
        }
    }
    let old = old_path(target)?;
    move_aside(target, &old)?;
    if let Err(e) = fs::rename(staging, target) {
        let _ = fs::rename(&old, target);
        return Err(e)
            .with_context(|| format!("cannot move the finished folder to {}", target.display()));
    }
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// The first of the two renames: the old folder out of the way.
fn move_aside(target: &Path, old: &Path) -> Result<()> {
    fs::rename(target, old)
        .with_context(|| format!("cannot move the old {} aside", target.display()))
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Errors that mean "this kernel or file system cannot exchange", not "this swap failed".
fn exchange_unsupported(e: &io::Error) -> bool {
    const EINVAL: i32 = 22;
    const ENOSYS: i32 = 38;
    const EOPNOTSUPP: i32 = 95;
    e.kind() == io::ErrorKind::Unsupported
        || matches!(e.raw_os_error(), Some(EINVAL | ENOSYS | EOPNOTSUPP))
}

/// Undoes what a killed run left beside `target`: an `.old-<name>` without a target
/// is the previous result, moved back; with a target it is stale, like every
/// `.staging-<name>.*`, and removed.
fn recover(target: &Path) -> Result<()> {
    let (parent, name) = parent_and_name(target)?;
    let old = old_path(target)?;
    if fs::symlink_metadata(&old).is_ok() {
        if fs::symlink_metadata(target).is_ok() {
            fs::remove_dir_all(&old)
                .with_context(|| format!("cannot remove the stale {}", old.display()))?;
        } else {
            fs::rename(&old, target).with_context(|| {
                format!(
                    "cannot restore {} from {} (left by a killed run)",
                    target.display(),
                    old.display()
                )
            })?;
        }
    }
    let prefix = staging_prefix(&name);
    let entries =
        fs::read_dir(parent).with_context(|| format!("cannot list folder {}", parent.display()))?;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str() else {
            continue;
        };
        if n.len() == prefix.len() + RAND_CHARS && n.starts_with(&prefix) {
            fs::remove_dir_all(entry.path()).with_context(|| {
                format!(
                    "cannot remove {}, left by a killed run",
                    entry.path().display()
                )
            })?;
        }
    }
    Ok(())
}

fn parent_and_name(target: &Path) -> Result<(&Path, String)> {
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = target
        .file_name()
        .with_context(|| format!("output folder {} has no name", target.display()))?
        .to_string_lossy()
        .into_owned();
    Ok((parent, name))
}

fn staging_prefix(name: &str) -> String {
    format!(".staging-{name}.")
}

fn old_path(target: &Path) -> Result<PathBuf> {
    let (parent, name) = parent_and_name(target)?;
    Ok(parent.join(format!(".old-{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target folder holding one file `which` with `text`.
    fn folder(path: &Path, text: &str) {
        fs::create_dir_all(path).unwrap();
        fs::write(path.join("which"), text).unwrap();
    }

    fn content(path: &Path) -> String {
        fs::read_to_string(path.join("which")).unwrap()
    }

    /// Names in `dir` other than the target's.
    fn others(dir: &Path, target: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != target)
            .collect();
        v.sort();
        v
    }

    /// A staged folder holding "new", not committed, and not removed on drop: what a
    /// run killed before or during its commit leaves.
    fn staged_new(target: &Path) -> PathBuf {
        let staged = StagedDir::new(target).unwrap();
        fs::write(staged.path().join("which"), "new").unwrap();
        let path = staged.path().to_path_buf();
        std::mem::forget(staged);
        path
    }

    #[test]
    fn commit_replaces_the_old_folder_both_ways() {
        for exchange_first in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("fgsm");
            folder(&target, "old");
            let staging = staged_new(&target);
            swap_in(&staging, &target, exchange_first).unwrap();
            assert_eq!(content(&target), "new", "exchange first: {exchange_first}");
            assert!(
                others(dir.path(), "fgsm").is_empty(),
                "exchange first: {exchange_first}"
            );
        }
    }

    #[test]
    fn kill_between_the_two_renames_restores_the_old_folder() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("fgsm");
        folder(&target, "old");
        let staging = staged_new(&target);
        move_aside(&target, &old_path(&target).unwrap()).unwrap();
        // Killed here: no target, the old result beside it.
        assert!(!target.exists());
        assert!(staging.exists());
        let next = StagedDir::new(&target).unwrap();
        assert_eq!(content(&target), "old");
        assert!(!staging.exists(), "the killed run's staging folder stays");
        drop(next);
        assert!(others(dir.path(), "fgsm").is_empty());
    }

    #[test]
    fn kill_after_the_second_rename_keeps_the_new_folder() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("fgsm");
        folder(&target, "old");
        let staging = staged_new(&target);
        move_aside(&target, &old_path(&target).unwrap()).unwrap();
        fs::rename(&staging, &target).unwrap();
        // Killed before the old folder was removed.
        drop(StagedDir::new(&target).unwrap());
        assert_eq!(content(&target), "new");
        assert!(others(dir.path(), "fgsm").is_empty());
    }

    #[test]
    fn kill_after_the_exchange_keeps_the_new_folder() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("fgsm");
        folder(&target, "old");
        let staging = staged_new(&target);
        match exchange(&staging, &target) {
            Ok(()) => {}
            Err(e) if exchange_unsupported(&e) => return,
            Err(e) => panic!("{e}"),
        }
        // Killed before the previous folder (now at the staging path) was removed.
        assert_eq!(content(&staging), "old");
        drop(StagedDir::new(&target).unwrap());
        assert_eq!(content(&target), "new");
        assert!(others(dir.path(), "fgsm").is_empty());
    }

    #[test]
    fn kill_before_the_commit_keeps_the_old_folder_and_cleans_only_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("fgsm");
        folder(&target, "old");
        staged_new(&target);
        // A sibling target's staging folder and a name that only looks alike stay.
        let sibling = staged_new(&dir.path().join("robust"));
        let lookalike = dir.path().join(".staging-fgsm.too-long-to-be-ours");
        fs::create_dir(&lookalike).unwrap();
        drop(StagedDir::new(&target).unwrap());
        assert_eq!(content(&target), "old");
        assert!(sibling.exists());
        assert!(lookalike.exists());
        assert_eq!(others(dir.path(), "fgsm").len(), 2);
    }

    #[test]
    fn a_dropped_stage_leaves_nothing_and_a_first_commit_creates_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("adversarial").join("robust");
        let staged = StagedDir::new(&target).unwrap();
        drop(staged);
        assert!(fs::read_dir(target.parent().unwrap())
            .unwrap()
            .next()
            .is_none());
        let staged = StagedDir::new(&target).unwrap();
        fs::write(staged.path().join("which"), "new").unwrap();
        staged.commit().unwrap();
        assert_eq!(content(&target), "new");
        assert!(others(target.parent().unwrap(), "robust").is_empty());
    }
}
