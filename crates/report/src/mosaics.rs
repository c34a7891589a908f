//! Figures made of images: the null samples (Figure 5) and the adversarial examples
//! with each model's prediction (Figures 7, 8 and 11-17).

use std::path::Path;

use anyhow::{Context, Result};
use nullclass::dataset::Mnist;
use nullclass::model::NULL_CLASS;
use nullclass::nulls::{self, TILES_TEXT};
use plotters::prelude::*;
use tch::{Device, Kind, Tensor};

use crate::canvas::{
    centred, image, legend_row, Area, Swatch, FAMILY, GREY, LABEL, OUTCOME_COLOURS, SMALL, TITLE,
};
use crate::sets::Prediction;

pub const FIG5_SIZE: (u32, u32) = (1180, 450);
pub const GRID_SIZE: (u32, u32) = (1000, 1000);

/// Seed of the null samples shown in Figure 5, so reruns draw the same figure.
const FIG5_SEED: i64 = 5;
const PER_ROW: usize = 10;

/// The null samples of Figure 5: uniform, mixed, and shuffled at each text tile size
/// (two per size), each 28 x 28 row-major.
pub struct NullSamples {
    pub rows: [Vec<Vec<f32>>; 3],
    pub tiles: Vec<i64>,
}

pub fn null_samples(mnist_file: &Path) -> Result<NullSamples> {
    let mnist = Mnist::load(mnist_file)?;
    let train = mnist.train(Device::Cpu);
    tch::manual_seed(FIG5_SEED);
    let per_tile = (PER_ROW / TILES_TEXT.len()) as i64;
    let shuffled: Vec<Tensor> = TILES_TEXT
        .iter()
        .map(|&t| nulls::shuffled(&train, per_tile, t))
        .collect();
    let to_images = |t: &Tensor| -> Result<Vec<Vec<f32>>> {
        let v = Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1))
            .context("cannot read null samples")?;
        Ok(v.chunks(784).map(<[f32]>::to_vec).collect())
    };
    Ok(NullSamples {
        rows: [
            to_images(&nulls::uniform(PER_ROW as i64, Device::Cpu))?,
            to_images(&nulls::mixed(&train, PER_ROW as i64))?,
            to_images(&Tensor::cat(&shuffled, 0))?,
        ],
        tiles: TILES_TEXT
            .iter()
            .flat_map(|&t| std::iter::repeat_n(t, per_tile as usize))
            .collect(),
    })
}

/// Figure 5: one row per null type.
pub fn fig5(root: &Area, samples: &NullSamples) -> Result<()> {
    let root = root.titled(
        "Null samples: uniform noise, mixed digits, shuffled digits",
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

fn class_name(c: i64) -> String {
    if c == NULL_CLASS {
        "null".to_string()
    } else {
        c.to_string()
    }
}

/// Figures 7, 8 and 11-17: up to 30 images in 5 rows of 6, each titled "source label,
/// predicted label, probability" and framed in its outcome's colour.
pub fn examples(
    root: &Area,
    title: &str,
    images: &[Vec<f32>],
    labels: &[i64],
    predictions: &[Prediction],
) -> Result<()> {
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
        let text = format!("{}, {}, {p:.2}", label, class_name(predicted));
        centred(&root, &text, (x + side / 2, y - border - 14), LABEL, &BLACK)?;
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
