//! dataset-prep: checks the four IDX files of MNIST or Fashion-MNIST and writes them
//! as the one safetensors file every other tool reads, plus a manifest of where it
//! came from.
//!
//! A library as well as a binary so that tests can run [`prepare`] on tiny files.

pub mod idx;
pub mod manifest;
pub mod prepare;
pub mod source;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use nullclass::dataset::DataSet;

pub use prepare::{prepare, SplitSizes};

#[derive(Parser, Debug, Clone)]
#[command(name = "dataset-prep", version, about)]
/// Checks the IDX files of MNIST or Fashion-MNIST and writes
/// OUT/data/DATASET.safetensors (uint8 images [N,28,28] and labels [N], train and
/// test) and OUT/data/DATASET.json.
pub struct Config {
    /// mnist or fashion-mnist (the same format; one artifacts root holds one).
    #[arg(long, default_value = "mnist")]
    pub dataset: DataSet,
    /// Folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
    /// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or with .gz
    /// (the raw file is used when both exist). Default: data/DATASET.
    #[arg(long, visible_alias = "mnist-dir")]
    pub source_dir: Option<PathBuf>,
    /// Root of the artifacts tree (`--artifacts`, as the other tools call it).
    #[arg(long, visible_alias = "artifacts", default_value = "artifacts")]
    pub out: PathBuf,
}

impl Config {
    pub fn source_dir(&self) -> PathBuf {
        self.source_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data").join(self.dataset.name()))
    }
}

pub fn run(config: &Config) -> Result<()> {
    let manifest = prepare(
        config.dataset,
        &config.source_dir(),
        &config.out,
        SplitSizes::MNIST,
    )?;
    eprintln!(
        "dataset-prep: wrote {} ({} train, {} test images)",
        manifest.output, manifest.train_count, manifest.test_count
    );
    if manifest.sources.iter().any(|s| !s.is_original) {
        eprintln!(
            "dataset-prep: note: some source files are not the original {} files (see the manifest)",
            config.dataset.title()
        );
    }
    Ok(())
}
