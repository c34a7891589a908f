//! Null samples and the batches that mix them with digits (method-notes.md,
//! "Training regime" and "Null sample types").
//!
//! Everything here runs on the images' device with torch's global generator, so a
//! seeded run is reproducible and no batch is built on the host.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::dataset::Split;
use crate::model::NULL_CLASS;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NullType {
    Uniform,
    Shuffled,
    Mixed,
}

impl NullType {
    pub fn letter(self) -> char {
        match self {
            Self::Uniform => 'u',
            Self::Shuffled => 's',
            Self::Mixed => 'm',
        }
    }

    /// Index used in `.npy` dumps: 0 uniform, 1 shuffled, 2 mixed (-1 is a digit).
    pub fn code(self) -> i64 {
        match self {
            Self::Uniform => 0,
            Self::Shuffled => 1,
            Self::Mixed => 2,
        }
    }
}

/// One of the 8 models of a set: the baseline or a combination of null types.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    types: Vec<NullType>,
}

impl Variant {
    /// The 8 variants in the order a set trains them.
    pub const ALL: [&'static str; 8] = ["base", "u", "s", "m", "us", "um", "sm", "usm"];

    pub fn all() -> Vec<Variant> {
        Self::ALL
            .iter()
            .map(|s| s.parse().expect("built-in variant names parse"))
            .collect()
    }

    pub fn null_types(&self) -> &[NullType] {
        &self.types
    }

    pub fn is_baseline(&self) -> bool {
        self.types.is_empty()
    }

    pub fn name(&self) -> String {
        if self.types.is_empty() {
            "base".to_string()
        } else {
            self.types.iter().map(|t| t.letter()).collect()
        }
    }

    /// Position in [`Variant::ALL`]; used to derive the variant's random streams.
    pub fn index(&self) -> u64 {
        Self::ALL
            .iter()
            .position(|n| *n == self.name())
            .unwrap_or(0) as u64
    }
}

impl FromStr for Variant {
    type Err = String;

    /// `base`, or letters from `u`, `s`, `m` in that order (`usm`, `um`, ...).
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "base" {
            return Ok(Self { types: vec![] });
        }
        if !Self::ALL.contains(&s) {
            return Err(format!(
                "unknown variant {s:?}: use one of {}",
                Self::ALL.join(", ")
            ));
        }
        let types = s
            .chars()
            .map(|c| match c {
                'u' => NullType::Uniform,
                's' => NullType::Shuffled,
                _ => NullType::Mixed,
            })
            .collect();
        Ok(Self { types })
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Tile sizes of the published code (the default) and of the report's text.
pub const TILES_CODE: [i64; 4] = [2, 4, 7, 14];
pub const TILES_TEXT: [i64; 5] = [1, 2, 4, 7, 14];

/// How nulls enter batches.
#[derive(Clone, Debug, Serialize)]
pub struct NullConfig {
    /// Probability that a batch slot is a null (0.5 in the paper; 0 for the baseline).
    pub null_prob: f64,
    /// Tile sizes for shuffled nulls, one drawn per batch.
    pub tile_sizes: Vec<i64>,
}

impl Default for NullConfig {
    fn default() -> Self {
        Self {
            null_prob: 0.5,
            tile_sizes: TILES_CODE.to_vec(),
        }
    }
}

/// `n` images of i.i.d. U(0, 1) pixels, `[n,1,28,28]`.
pub fn uniform(n: i64, device: Device) -> Tensor {
    Tensor::rand([n, 1, 28, 28], (Kind::Float, device))
}

/// `n` means of two images with different labels; pairs are redrawn until they differ.
pub fn mixed(pool: &Split, n: i64) -> Tensor {
    let device = pool.images.device();
    let size = pool.len();
    let a = Tensor::randint(size, [n], (Kind::Int64, device));
    let mut b = Tensor::randint(size, [n], (Kind::Int64, device));
    loop {
        let same = pool
            .labels
            .index_select(0, &a)
            .eq_tensor(&pool.labels.index_select(0, &b));
        if same.any().int64_value(&[]) == 0 {
            break;
        }
        let redraw = Tensor::randint(size, [n], (Kind::Int64, device));
        b = redraw.where_self(&same, &b);
    }
    (pool.images.index_select(0, &a) + pool.images.index_select(0, &b)) * 0.5
}

/// `n` images cut into `tile`x`tile` squares, all permuted by the same permutation.
pub fn shuffled(pool: &Split, n: i64, tile: i64) -> Tensor {
    let device = pool.images.device();
    let src = pool
        .images
        .index_select(0, &Tensor::randint(pool.len(), [n], (Kind::Int64, device)));
    let per_side = 28 / tile;
    let perm = Tensor::randperm(per_side * per_side, (Kind::Int64, device));
    let tiles = src
        .view([n, per_side, tile, per_side, tile])
        .permute([0, 1, 3, 2, 4])
        .reshape([n, per_side * per_side, tile, tile]);
    tiles
        .index_select(1, &perm)
        .view([n, per_side, per_side, tile, tile])
        .permute([0, 1, 3, 2, 4])
        .reshape([n, 1, 28, 28])
}

/// A batch: images, labels (10 for nulls) and each slot's null type code (-1 = digit).
#[derive(Debug)]
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
    pub null_types: Tensor,
}

/// Builds batches for one variant from a pool of digit images.
pub struct BatchMaker<'a> {
    pool: &'a Split,
    types: Vec<NullType>,
    config: NullConfig,
}

impl<'a> BatchMaker<'a> {
    pub fn new(pool: &'a Split, variant: &Variant, config: NullConfig) -> Self {
        let config = if variant.is_baseline() {
            NullConfig {
                null_prob: 0.0,
                ..config
            }
        } else {
            config
        };
        Self {
            pool,
            types: variant.null_types().to_vec(),
            config,
        }
    }

    /// A training batch: `size` digits drawn without replacement within the batch.
    pub fn random_batch(&self, size: i64) -> Batch {
        let device = self.pool.images.device();
        let idx = Tensor::randperm(self.pool.len(), (Kind::Int64, device)).narrow(0, 0, size);
        self.batch_from(&idx)
    }

    /// A batch whose digit slots hold the pool's items `idx` (in order); each slot is
    /// replaced by a null with probability `null_prob`, its type uniform among the
    /// variant's types.
    pub fn batch_from(&self, idx: &Tensor) -> Batch {
        let device = self.pool.images.device();
        let n = idx.size()[0];
        let mut images = self.pool.images.index_select(0, idx);
        let mut labels = self.pool.labels.index_select(0, idx);
        let mut codes = Tensor::full([n], -1, (Kind::Int64, device));
        if self.types.is_empty() || self.config.null_prob <= 0.0 {
            return Batch {
                images,
                labels,
                null_types: codes,
            };
        }
        let is_null = Tensor::rand([n], (Kind::Float, device)).lt(self.config.null_prob);
        let which = Tensor::randint(self.types.len() as i64, [n], (Kind::Int64, device));
        for (k, t) in self.types.iter().enumerate() {
            let candidates = match t {
                NullType::Uniform => uniform(n, device),
                NullType::Mixed => mixed(self.pool, n),
                NullType::Shuffled => {
                    let sizes = &self.config.tile_sizes;
                    let pick = Tensor::randint(sizes.len() as i64, [1], (Kind::Int64, Device::Cpu));
                    shuffled(self.pool, n, sizes[pick.int64_value(&[0]) as usize])
                }
            };
            let mask = is_null.logical_and(&which.eq(k as i64));
            images = candidates.where_self(&mask.view([n, 1, 1, 1]), &images);
            codes = codes.masked_fill(&mask, t.code());
        }
        labels = labels.masked_fill(&is_null, NULL_CLASS);
        Batch {
            images,
            labels,
            null_types: codes,
        }
    }

    /// The whole pool in order, in batches of `batch`, through the same generator:
    /// the fixed validation set of method-notes.md.
    pub fn sequential_set(&self, batch: i64) -> Batch {
        let device = self.pool.images.device();
        let n = self.pool.len();
        let parts: Vec<Batch> = (0..n)
            .step_by(batch as usize)
            .map(|s| {
                self.batch_from(&Tensor::arange_start(
                    s,
                    (s + batch).min(n),
                    (Kind::Int64, device),
                ))
            })
            .collect();
        Batch {
            images: Tensor::cat(&parts.iter().map(|b| &b.images).collect::<Vec<_>>(), 0),
            labels: Tensor::cat(&parts.iter().map(|b| &b.labels).collect::<Vec<_>>(), 0),
            null_types: Tensor::cat(&parts.iter().map(|b| &b.null_types).collect::<Vec<_>>(), 0),
        }
    }
}
