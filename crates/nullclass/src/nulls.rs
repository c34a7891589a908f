//! What a null-class model is trained with: the null types, the variants (the 8
//! models of a set), how nulls enter batches (method-notes.md, "Training regime"
//! and "Null sample types"), and the batch type.
//!
//! The one generator of those batches is [`crate::stacked::batches`]: training,
//! `trainer nulls` and the report's Figure 5 all draw from it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::Tensor;

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

/// Batches: images, labels (10 for nulls) and each slot's null type code (-1 = digit).
#[derive(Debug)]
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
    pub null_types: Tensor,
}
