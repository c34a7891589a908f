//! dataset-prep: checks the four MNIST IDX files and writes them as the one
//! safetensors file every other tool reads, plus a manifest of where it came from.
//!
//! A library as well as a binary so that tests can run [`prepare`] on tiny files.

pub mod idx;
pub mod manifest;
pub mod prepare;
pub mod source;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

pub use prepare::{prepare, SplitSizes};

#[derive(Parser, Debug, Clone)]
#[command(name = "dataset-prep", version, about)]
/// Checks the MNIST IDX files and writes OUT/data/mnist.safetensors (uint8 images
/// [N,28,28] and labels [N], train and test) and OUT/data/mnist.json.
pub struct Config {
    /// Folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
    /// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or with .gz
    /// (the raw file is used when both exist).
    #[arg(long, default_value = "data/mnist")]
    pub mnist_dir: PathBuf,
    /// Root of the artifacts tree (`--artifacts`, as the other tools call it).
    #[arg(long, visible_alias = "artifacts", default_value = "artifacts")]
    pub out: PathBuf,
}

pub fn run(config: &Config) -> Result<()> {
    let manifest = prepare(&config.mnist_dir, &config.out, SplitSizes::MNIST)?;
    eprintln!(
        "dataset-prep: wrote {} ({} train, {} test images)",
        manifest.output, manifest.train_count, manifest.test_count
    );
    if manifest.sources.iter().any(|s| !s.is_original_mnist) {
        eprintln!("dataset-prep: note: some source files are not the original MNIST files (see the manifest)");
    }
    Ok(())
}
