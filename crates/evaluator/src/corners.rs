//! How near the images lie to the corners of the pixel hypercube `[0,1]^784`: the
//! number behind the report's explanation of mixed nulls (section 6: MNIST images
//! are "nearly binary" and lie near corners, the signed gradient walks along faces,
//! mixed nulls lie on faces between corners). Written per data set, so that the
//! claim can be compared between MNIST and Fashion-MNIST.
//!
//! Per group of images: the share of pixels within [`NEAR`] of 0 or 1, and the
//! Euclidean (L2) distance of each image to its nearest corner, which rounds every
//! pixel to 0 or 1: `sqrt(sum_i min(x_i, 1 - x_i)^2)`. L2 rather than L-inf, because
//! one grey pixel puts any image at L-inf distance near 0.5 and the measure would
//! say nothing.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use nullclass::artifacts::{self, SetDir};
use nullclass::dataset::{recorded, DataSet, Prepared};
use nullclass::npy;
use nullclass::nulls::NullType;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

/// A pixel this close to 0 or to 1 counts as binary.
pub const NEAR: f64 = 0.1;

#[derive(Parser, Debug, Clone, Serialize)]
/// Measures how near the clean images, the mixed nulls and the FGSM threshold images
/// lie to the corners of the pixel hypercube, and writes ROOT/geometry/corners.csv
/// and corners.json (the data set, the inputs and their hashes).
pub struct Config {
    /// Artifacts root: reads data/, nulls/ (trainer nulls) and every
    /// seed-NN/adversarial/fgsm/ it holds.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
}

/// One group's measures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CornerStats {
    pub group: String,
    pub images: i64,
    /// Share of all pixels within [`NEAR`] of 0 or 1.
    pub near_binary_share: f64,
    /// Mean over images of the L2 distance to the nearest corner.
    pub mean_l2_to_corner: f64,
    /// Population standard deviation of that distance.
    pub std_l2_to_corner: f64,
}

impl CornerStats {
    /// Of `images` (float, any shape `[N, ...]`, values in [0, 1]).
    pub fn of(group: &str, images: &Tensor) -> Result<CornerStats> {
        let n = images.size().first().copied().unwrap_or(0);
        if n == 0 {
            bail!("{group}: no images to measure");
        }
        let x = images.to_kind(Kind::Double).view([n, -1]);
        let off = x.minimum(&(x.ones_like() - &x));
        let near = off.le(NEAR).to_kind(Kind::Double).mean(Kind::Double);
        let dist = off.square().sum_dim_intlist(1, false, Kind::Double).sqrt();
        let mean = dist.mean(Kind::Double);
        let population_std = (&dist - &mean).square().mean(Kind::Double).sqrt();
        Ok(CornerStats {
            group: group.to_string(),
            images: n,
            near_binary_share: near.double_value(&[]),
            mean_l2_to_corner: mean.double_value(&[]),
            std_l2_to_corner: population_std.double_value(&[]),
        })
    }
}

#[derive(Debug, Serialize)]
struct Meta {
    tool: &'static str,
    version: &'static str,
    dataset: DataSet,
    near: f64,
    distance: &'static str,
    data_file: String,
    nulls_file: String,
    threshold_sets: Vec<String>,
    groups: Vec<CornerStats>,
}

/// Where the measures go.
pub fn out_dir(root: &Path) -> PathBuf {
    root.join("geometry")
}

pub fn run(config: &Config) -> Result<Vec<CornerStats>> {
    let root = &config.artifacts;
    let prepared = Prepared::open(root)?;
    let data = &prepared.data;
    let mut groups = vec![
        CornerStats::of("clean train", &data.train(Device::Cpu).images)?,
        CornerStats::of("clean test", &data.test(Device::Cpu).images)?,
    ];

    // The mixed nulls are those of the training generator's dump (trainer nulls).
    let nulls_dir = root.join("nulls");
    let nulls_meta = nulls_dir.join("nulls_meta.json");
    check_meta_dataset(&nulls_meta, prepared.dataset, "trainer nulls")?;
    let nulls_file = nulls_dir.join("nulls_images.npy");
    let images = npy::read(&nulls_file)?;
    let types = npy::read(&nulls_dir.join("nulls_types.npy"))?;
    if images.dim() != 3 || types.size() != [images.size()[0]] {
        bail!(
            "{}: expected [N,28,28] images beside [N] types",
            nulls_file.display()
        );
    }
    let mixed = types.eq(NullType::Mixed.code());
    if mixed.sum(Kind::Int64).int64_value(&[]) == 0 {
        bail!(
            "{} holds no mixed nulls (dump them with trainer nulls --types including m)",
            nulls_file.display()
        );
    }
    let mixed_images = images.index_select(0, &mixed.nonzero().view([-1]));
    groups.push(CornerStats::of("mixed nulls", &mixed_images)?);

    // The FGSM threshold images of every set there is, pooled.
    let mut threshold = Vec::new();
    let mut threshold_sets = Vec::new();
    for seed in 0..=nullclass::flag_ranges::MAX_SEED as u64 {
        let set = SetDir::new(root, seed);
        if !set.dir.exists() {
            break;
        }
        let dir = set.fgsm_dir();
        let meta = dir.join("meta.json");
        if !meta.exists() {
            continue;
        }
        check_meta_dataset(&meta, prepared.dataset, "adversary-gen fgsm")?;
        threshold.push(npy::read(&dir.join("adv_images.npy"))?);
        threshold_sets.push(set.dir.display().to_string());
    }
    if threshold.is_empty() {
        bail!(
            "{} holds no FGSM threshold images (seed-NN/adversarial/fgsm/meta.json): run adversary-gen fgsm first",
            root.display()
        );
    }
    groups.push(CornerStats::of(
        "FGSM threshold images",
        &Tensor::cat(&threshold, 0),
    )?);

    let out = out_dir(root);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    artifacts::write_atomic(&out.join("corners.csv"), |tmp| {
        let mut w = csv::Writer::from_path(tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        for g in &groups {
            w.serialize(g)?;
        }
        w.flush()?;
        Ok(())
    })?;
    let meta = Meta {
        tool: "evaluator corners",
        version: env!("CARGO_PKG_VERSION"),
        dataset: prepared.dataset,
        near: NEAR,
        distance: "L2 to the nearest corner of [0,1]^784: sqrt(sum min(x, 1-x)^2)",
        data_file: prepared.file.display().to_string(),
        nulls_file: nulls_file.display().to_string(),
        threshold_sets,
        groups: groups.clone(),
    };
    artifacts::write_json(&out.join("corners.json"), &meta)?;
    Ok(groups)
}

fn check_meta_dataset(meta: &Path, dataset: DataSet, made_by: &str) -> Result<()> {
    let text = std::fs::read_to_string(meta)
        .with_context(|| format!("cannot read {} (run {made_by} first)", meta.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", meta.display()))?;
    dataset.check_same(recorded(&value, meta)?, meta)
}
