//! `trainer nulls`: null samples as `.npy`, for the report's Figure 5 and for checks.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use nullclass::artifacts;
use nullclass::dataset::Mnist;
use nullclass::npy;
use nullclass::nulls::{BatchMaker, NullConfig, Variant, TILES_CODE, TILES_TEXT};

#[derive(Args, Debug)]
pub struct Config {
    /// Artifacts root holding data/mnist.safetensors.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Null types to draw from: u, s, m, us, um, sm or usm.
    #[arg(long, default_value = "usm")]
    pub types: Variant,
    /// How many samples (all of them nulls).
    #[arg(long, default_value_t = 64, value_parser = nullclass::flag_ranges::int::<i64>(1..=nullclass::flag_ranges::MAX_SAMPLES))]
    pub count: i64,
    /// Torch seed.
    #[arg(long, default_value_t = 0, value_parser = nullclass::flag_ranges::int::<i64>(0..=nullclass::flag_ranges::MAX_SEED))]
    pub seed: i64,
    /// Shuffled nulls use only this tile size (else one drawn per batch of 32).
    #[arg(long)]
    pub tile: Option<i64>,
    /// Draw tile sizes from the report text's {1,2,4,7,14} instead of the code's {2,4,7,14}.
    #[arg(long)]
    pub text_tiles: bool,
    /// Output folder: nulls_images.npy (float32 [N,28,28]) and nulls_types.npy
    /// (int64 [N]: 0 uniform, 1 shuffled, 2 mixed).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(config: &Config) -> Result<()> {
    anyhow::ensure!(
        !config.types.is_baseline(),
        "--types must name at least one null type"
    );
    if let Some(t) = config.tile {
        anyhow::ensure!(
            [1, 2, 4, 7, 14].contains(&t),
            "--tile must be one of 1, 2, 4, 7, 14"
        );
    }
    let mnist = Mnist::load(&artifacts::mnist_file(&config.artifacts))?;
    let train = mnist.train(tch::Device::Cpu);
    let tile_sizes = match (config.tile, config.text_tiles) {
        (Some(t), _) => vec![t],
        (None, true) => TILES_TEXT.to_vec(),
        (None, false) => TILES_CODE.to_vec(),
    };
    tch::manual_seed(config.seed);
    let maker = BatchMaker::new(
        &train,
        &config.types,
        NullConfig {
            null_prob: 1.0,
            tile_sizes,
        },
    );
    let idx = tch::Tensor::zeros([config.count], (tch::Kind::Int64, tch::Device::Cpu));
    // Batches of 32 as in training, so shuffled nulls share a tile size per batch.
    let parts: Vec<_> = (0..config.count)
        .step_by(32)
        .map(|s| maker.batch_from(&idx.narrow(0, s, 32.min(config.count - s))))
        .collect();
    let images = tch::Tensor::cat(&parts.iter().map(|b| &b.images).collect::<Vec<_>>(), 0);
    let types = tch::Tensor::cat(&parts.iter().map(|b| &b.null_types).collect::<Vec<_>>(), 0);
    npy::write(
        &config.out.join("nulls_images.npy"),
        &images.view([-1, 28, 28]),
    )
    .context("writing null images")?;
    npy::write(&config.out.join("nulls_types.npy"), &types).context("writing null types")?;
    eprintln!("wrote {} nulls to {}", config.count, config.out.display());
    Ok(())
}
