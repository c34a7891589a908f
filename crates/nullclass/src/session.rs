//! What the later stages (attacks and scoring) share across the sets of one
//! invocation: the threads, the resolved device and the test split, set up
//! once, so that `--sets 30` pays one start-up and one data load, not 30.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::dataset::{DataSet, Prepared, Split};
use crate::device::{DeviceChoice, ResolvedDevice, Tf32};

pub struct Session {
    pub device: ResolvedDevice,
    /// What the root holds; every model and source read is checked against it.
    pub dataset: DataSet,
    /// `ROOT/data/<dataset>.safetensors`, as recorded in the JSONs.
    pub data_file: PathBuf,
    /// The test split on `device`.
    pub test: Split,
}

impl Session {
    /// Sets torch's intra-op threads (`None`: torch's default), resolves the device
    /// (printing it) and loads the test split of `artifacts`.
    pub fn open(
        artifacts: &Path,
        device: DeviceChoice,
        tf32: Tf32,
        threads: Option<i32>,
    ) -> Result<Self> {
        if let Some(t) = threads {
            if t < 1 {
                bail!("--threads {t} is out of range: it must be at least 1");
            }
            tch::set_num_threads(t);
        }
        let device = device.resolve(tf32)?;
        let prepared = Prepared::open(artifacts)?;
        let test = prepared.data.test(device.device);
        Ok(Self {
            device,
            dataset: prepared.dataset,
            data_file: prepared.file,
            test,
        })
    }
}

/// The set seeds of `--seed first --sets sets`: first, first + 1, ..., first + sets - 1.
pub fn seeds(first: u64, sets: u64) -> Result<std::ops::Range<u64>> {
    if sets < 1 {
        bail!("--sets {sets} is out of range: it must be at least 1");
    }
    let largest = crate::flag_ranges::MAX_SEED as u64;
    match first.checked_add(sets) {
        Some(end) if end - 1 <= largest => Ok(first..end),
        _ => bail!("--seed {first} with --sets {sets} runs past the largest seed, {largest}"),
    }
}

/// Runs `set` for each set of `--seed first --sets sets` on one session, opened by
/// `open` once the seeds are known to be valid (so a bad `--sets` fails before any
/// device or data is touched). An error names the set it came from.
pub fn run_sets(
    first: u64,
    sets: u64,
    open: impl FnOnce() -> Result<Session>,
    mut set: impl FnMut(&Session, u64) -> Result<()>,
) -> Result<()> {
    let seeds = seeds(first, sets)?;
    let session = open()?;
    for seed in seeds {
        set(&session, seed).with_context(|| format!("set {seed}"))?;
    }
    Ok(())
}
