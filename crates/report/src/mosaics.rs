//! Figures made of images: the null samples (Figure 5) and the adversarial examples
//! with each model's prediction (Figures 7, 8 and 11-17).

use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};
use nullclass::model::NULL_CLASS;
use nullclass::nulls::NullType;
use plotters::prelude::*;

use crate::arrays::{self, ANY};

use crate::canvas::{
    centred, image, legend_row, Area, Swatch, FAMILY, GREY, LABEL, OUTCOME_COLOURS, SMALL, TITLE,
};
use crate::sets::Prediction;

pub const FIG5_SIZE: (u32, u32) = (1180, 450);
pub const GRID_SIZE: (u32, u32) = (1000, 1000);

const PER_ROW: usize = 10;
/// Written last by `trainer nulls`: without it the arrays may be unfinished.
const NULLS_META: &str = "nulls_meta.json";

/// Where Figure 5's samples come from: `trainer nulls --out <artifacts>/nulls`.
pub fn nulls_dir(root: &Path) -> PathBuf {
    root.join("nulls")
}

/// The null samples of Figure 5, as `trainer nulls` drew them from the training
/// generator: uniform, mixed, and shuffled (taken in turn from each tile size
/// drawn), each 28 x 28 row-major.
pub struct NullSamples {
    pub rows: [Vec<Vec<f32>>; 3],
    /// The tile size of each shuffled sample.
    pub tiles: Vec<i64>,
}

pub fn null_samples(dir: &Path) -> Result<NullSamples> {
    let meta = dir.join(NULLS_META);
    ensure!(
        meta.is_file(),
        "{} is missing: run `trainer nulls --out {}` (written last, so the folder may be unfinished)",
        meta.display(),
        dir.display()
    );
    let (shape, pixels) = arrays::f32s(&dir.join("nulls_images.npy"), &[ANY, 28, 28])?;
    let n = shape[0];
    let (_, types) = arrays::i64s(&dir.join("nulls_types.npy"), &[n])?;
    let (_, tiles) = arrays::i64s(&dir.join("nulls_tiles.npy"), &[n])?;
    let images = arrays::images(&pixels);
    let of =
        |t: NullType| -> Vec<usize> { (0..n as usize).filter(|&i| types[i] == t.code()).collect() };
    let need = |t: NullType, found: &[usize]| {
        ensure!(
            !found.is_empty(),
            "{}: no {t:?} null among the {n} samples (run `trainer nulls --types usm`)",
            dir.join("nulls_types.npy").display()
        );
        Ok(())
    };
    let (uniform, mixed, shuffled) = (
        of(NullType::Uniform),
        of(NullType::Mixed),
        of(NullType::Shuffled),
    );
    need(NullType::Uniform, &uniform)?;
    need(NullType::Mixed, &mixed)?;
    need(NullType::Shuffled, &shuffled)?;
    let shuffled = round_robin(&shuffled, &tiles);
    let pick = |idx: &[usize]| {
        idx.iter()
            .take(PER_ROW)
            .map(|&i| images[i].clone())
            .collect()
    };
    Ok(NullSamples {
        rows: [pick(&uniform), pick(&mixed), pick(&shuffled)],
        tiles: shuffled.iter().map(|&i| tiles[i]).collect(),
    })
}

/// Up to [`PER_ROW`] of the shuffled samples `idx`, taken in turn from each tile
/// size so that the row shows every size drawn, then ordered by tile size.
fn round_robin(idx: &[usize], tiles: &[i64]) -> Vec<usize> {
    let mut sizes: Vec<i64> = idx.iter().map(|&i| tiles[i]).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let groups: Vec<Vec<usize>> = sizes
        .iter()
        .map(|&t| idx.iter().copied().filter(|&i| tiles[i] == t).collect())
        .collect();
    let mut picked = Vec::new();
    for rank in 0..idx.len() {
        for g in &groups {
            if picked.len() < PER_ROW {
                picked.extend(g.get(rank));
            }
        }
    }
    picked.sort_by_key(|&i| (tiles[i], i));
    picked
}

/// Figure 5: one row per null type; `items` names the images ("digits").
pub fn fig5(root: &Area, samples: &NullSamples, items: &str) -> Result<()> {
    let root = root.titled(
        &format!("Null samples: uniform noise, mixed {items}, shuffled {items}"),
        (FAMILY, TITLE),
    )?;
    let scale = 3;
    let side = 28 * scale;
    let (left, step, top) = (150, 100, 20);
    let names = ["uniform", "mixed", "shuffled"];
    for (r, images) in samples.rows.iter().enumerate() {
        let y = top + r as i32 * (side + 50);
        root.draw(&Text::new(
            names[r],
            (20, y + side / 2 - 10),
            (FAMILY, LABEL + 2),
        ))?;
        for (c, px) in images.iter().enumerate() {
            let x = left + c as i32 * step;
            image(&root, (x, y), scale, px)?;
            root.draw(&Rectangle::new(
                [(x, y), (x + side, y + side)],
                GREY.stroke_width(1),
            ))?;
            if r == 2 {
                let text = format!("tile {}", samples.tiles.get(c).copied().unwrap_or(0));
                centred(&root, &text, (x + side / 2, y + side + 16), SMALL, &BLACK)?;
            }
        }
    }
    Ok(())
}

/// Outcome of one prediction: 0 correct, 1 misclassified, 2 null.
pub fn outcome(label: i64, predicted: i64) -> usize {
    if predicted == label {
        0
    } else if predicted == NULL_CLASS {
        2
    } else {
        1
    }
}

/// Label `c`'s name among `names` (the data set's), "null" for the null class.
fn class_name(c: i64, names: &[&str; 10]) -> String {
    if c == NULL_CLASS {
        "null".to_string()
    } else {
        usize::try_from(c)
            .ok()
            .and_then(|i| names.get(i))
            .map_or_else(|| c.to_string(), |n| n.to_string())
    }
}

/// Figures 7, 8 and 11-17: up to 30 images in 5 rows of 6, each titled "source label,
/// predicted label, probability" with the data set's class `names` and framed in its
/// outcome's colour. Names longer than a digit take two lines, label over prediction,
/// so that "Ankle boot, T-shirt/top" does not run into its neighbours.
pub fn examples(
    root: &Area,
    title: &str,
    images: &[Vec<f32>],
    labels: &[i64],
    predictions: &[Prediction],
    names: &[&str; 10],
) -> Result<()> {
    let short = names.iter().all(|n| n.chars().count() <= 2);
    let root = root.titled(title, (FAMILY, TITLE - 4))?;
    let scale = 4;
    let side = 28 * scale;
    let border = 5;
    let (cols, cell_w, cell_h) = (6, 160, 178);
    let left = (GRID_SIZE.0 as i32 - cols * cell_w) / 2;
    for (i, ((px, &label), &(predicted, p))) in
        images.iter().zip(labels).zip(predictions).enumerate()
    {
        let (r, c) = (i as i32 / cols, i as i32 % cols);
        let x = left + c * cell_w + (cell_w - side) / 2;
        let y = 14 + r * cell_h + 30;
        let colour = OUTCOME_COLOURS[outcome(label, predicted)];
        root.draw(&Rectangle::new(
            [
                (x - border, y - border),
                (x + side + border, y + side + border),
            ],
            colour.filled(),
        ))?;
        image(&root, (x, y), scale, px)?;
        let (label, predicted) = (class_name(label, names), class_name(predicted, names));
        if short {
            let text = format!("{label}, {predicted}, {p:.2}");
            centred(&root, &text, (x + side / 2, y - border - 14), LABEL, &BLACK)?;
        } else {
            centred(
                &root,
                &label,
                (x + side / 2, y - border - 31),
                SMALL,
                &BLACK,
            )?;
            let text = format!("→ {predicted}, {p:.2}");
            centred(&root, &text, (x + side / 2, y - border - 13), SMALL, &BLACK)?;
        }
    }
    let keys = ["correct", "misclassified", "unclassified (null)"];
    let legend: Vec<(String, Swatch)> = keys
        .iter()
        .zip(OUTCOME_COLOURS)
        .map(|(k, c)| (k.to_string(), Swatch::Box(c)))
        .collect();
    legend_row(
        &root,
        (GRID_SIZE.0 as i32 / 2, 14 + 5 * cell_h + 22),
        &legend,
    )?;
    Ok(())
}
