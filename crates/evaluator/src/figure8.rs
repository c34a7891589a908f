//! What the report's Figure 8 shows: the baseline's prediction of each FGSM image
//! pushed to 1.5 x its threshold (adversary-gen's `adv_images_x1.5.npy`), so that
//! the report draws it without running a model.

use std::path::Path;

use anyhow::{bail, Result};
use nullclass::model::SetModel;
use tch::{Device, Kind, Tensor};

use crate::inputs::read_checked;
use crate::scores::predict_with_prob;

/// The images, in the FGSM folder.
pub const IMAGES: &str = "adv_images_x1.5.npy";
/// float32 `[N,2]`: predicted class (10 = null) and its softmax probability, as in
/// `threshold_predictions.npy`; in the eval folder.
pub const FILE: &str = "base_x1.5_predictions.npy";

/// The baseline's predictions of the `n` images at 1.5 x the threshold.
pub fn base_predictions(
    fgsm_dir: &Path,
    n: i64,
    baseline: &SetModel,
    chunk: i64,
    device: Device,
) -> Result<Tensor> {
    let images = read_checked(fgsm_dir, IMAGES, Kind::Float, &[n, 28, 28])?;
    let in_range = images.ge(0.0).logical_and(&images.le(1.0)).all();
    if in_range.int64_value(&[]) == 0 {
        bail!("{}: pixels outside [0, 1]", fgsm_dir.join(IMAGES).display());
    }
    let (class, prob) = predict_with_prob(
        &baseline.model,
        &images.to_device(device),
        chunk,
        Kind::Float,
    );
    Ok(Tensor::stack(&[class.to_kind(Kind::Float), prob], 1))
}
