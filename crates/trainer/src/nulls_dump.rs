//! `trainer nulls`: the null samples a model is trained with, as `.npy`, for the
//! report's Figure 5 and for inspection.
//!
//! They come from the training generator itself ([`StackBatches`]) with every slot
//! made a null, keyed like the model `seed-NN/<types>`: where that model's batch at
//! step t held a null in slot i, it was sample `t * batch + i` of this dump.

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use clap::Args;
use nullclass::artifacts;
use nullclass::dataset::{DataSet, Prepared};
use nullclass::npy;
use nullclass::nulls::{NullConfig, NullType, Variant, TILES_CODE, TILES_TEXT};
use nullclass::stacked::batches::StackBatches;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::train::variant_seed;

/// Written last: the sign that the folder is complete.
pub const META_FILE: &str = "nulls_meta.json";

#[derive(Args, Debug, Serialize)]
pub struct Config {
    /// Artifacts root holding data/<dataset>.safetensors.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Null types to draw from: u, s, m, us, um, sm or usm (the variant whose
    /// training nulls these are).
    #[arg(long, default_value = "usm")]
    #[serde(serialize_with = "nullclass::artifacts::serialize_display")]
    pub types: Variant,
    /// How many samples (all of them nulls).
    #[arg(long, default_value_t = 64, value_parser = nullclass::flag_ranges::int::<i64>(1..=nullclass::flag_ranges::MAX_SAMPLES))]
    pub count: i64,
    /// Set seed: the samples are those of model seed-NN/<types> (its torch seed is
    /// seed * 100 + the variant's index, as in training).
    #[arg(long, default_value_t = 0, value_parser = nullclass::flag_ranges::int::<u64>(0..=nullclass::flag_ranges::MAX_SEED))]
    pub seed: u64,
    /// Training batch size (shuffled nulls share one tile size per batch).
    #[arg(long, default_value_t = 32, value_parser = nullclass::flag_ranges::int::<i64>(1..=nullclass::flag_ranges::MAX_SAMPLES))]
    pub batch: i64,
    /// Shuffled nulls use only this tile size (else one drawn per batch, as in
    /// training; the samples then differ from the model's).
    #[arg(long)]
    pub tile: Option<i64>,
    /// Draw tile sizes from the report text's {1,2,4,7,14} instead of the code's {2,4,7,14}.
    #[arg(long)]
    pub text_tiles: bool,
    /// Output folder: nulls_images.npy (float32 [N,28,28]), nulls_types.npy
    /// (int64 [N]: 0 uniform, 1 shuffled, 2 mixed), nulls_tiles.npy (int64 [N]: the
    /// tile size of a shuffled null, 0 for the others) and, last, nulls_meta.json.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Serialize)]
struct Meta<'a> {
    dataset: DataSet,
    config: &'a Config,
    torch_seed: i64,
    tile_sizes: &'a [i64],
    generator: &'static str,
}

pub fn run(config: &Config) -> Result<()> {
    ensure!(
        !config.types.is_baseline(),
        "--types must name at least one null type"
    );
    ensure!(config.count >= 1, "--count must be at least 1");
    ensure!(config.batch >= 1, "--batch must be at least 1");
    if let Some(t) = config.tile {
        ensure!(
            TILES_TEXT.contains(&t),
            "--tile must be one of 1, 2, 4, 7, 14"
        );
    }
    let prepared = Prepared::open(&config.artifacts)?;
    let mnist_file = &prepared.file;
    let train = prepared.data.train(Device::Cpu);
    let tile_sizes = match (config.tile, config.text_tiles) {
        (Some(t), _) => vec![t],
        (None, true) => TILES_TEXT.to_vec(),
        (None, false) => TILES_CODE.to_vec(),
    };
    let torch_seed = variant_seed(config.seed, &config.types);
    let null_config = NullConfig {
        null_prob: 1.0,
        tile_sizes: tile_sizes.clone(),
    };
    let batches = StackBatches::new(
        &train,
        std::slice::from_ref(&config.types),
        &[torch_seed],
        &null_config,
        config.batch,
    )
    .with_context(|| format!("cannot draw nulls from {}", mnist_file.display()))?;

    let (mut images, mut types, mut tiles) = (Vec::new(), Vec::new(), Vec::new());
    let mut drawn = 0;
    let mut step = 0u64;
    while drawn < config.count {
        let keys = batches.step_keys(step);
        let b = batches.train_batch(&keys);
        let take = config.batch.min(config.count - drawn);
        let codes = b.null_types.get(0).narrow(0, 0, take);
        let tile = batches.tile_sizes(&keys).get(0);
        let shuffled = codes.eq(NullType::Shuffled.code()).to_kind(Kind::Int64);
        images.push(b.images.get(0).narrow(0, 0, take).view([take, 28, 28]));
        tiles.push(shuffled * tile);
        types.push(codes);
        drawn += take;
        step += 1;
    }
    let out = &config.out;
    let meta_path = out.join(META_FILE);
    // Gone before the arrays change, so a failed run never leaves an old meta.json
    // vouching for new arrays.
    if meta_path.exists() {
        std::fs::remove_file(&meta_path)
            .with_context(|| format!("cannot remove the old {}", meta_path.display()))?;
    }
    npy::write(&out.join("nulls_images.npy"), &Tensor::cat(&images, 0))
        .context("writing null images")?;
    npy::write(&out.join("nulls_types.npy"), &Tensor::cat(&types, 0))
        .context("writing null types")?;
    npy::write(&out.join("nulls_tiles.npy"), &Tensor::cat(&tiles, 0))
        .context("writing null tile sizes")?;
    let meta = Meta {
        dataset: prepared.dataset,
        config,
        torch_seed,
        tile_sizes: &tile_sizes,
        generator: "nullclass::stacked::batches::StackBatches, null probability 1",
    };
    artifacts::write_json(&meta_path, &meta)?;
    eprintln!("wrote {} nulls to {}", config.count, out.display());
    Ok(())
}
