//! Tiny synthetic artifact trees for tests: a small "MNIST" file and 8 untrained
//! models, built in a second, so the attack and the evaluator can be exercised end to
//! end on machines without the real data.
//!
//! Weights and images come from an integer hash rather than torch's generator, which
//! is global: tests running side by side in one process would draw from it in turn
//! and get different sets from run to run.

use std::path::Path;

use anyhow::Result;
use nullclass::artifacts::SetDir;
use nullclass::dataset::{DataSet, Mnist};
use nullclass::model::{LoadedModel, MnistCnn, NULL_CLASS};
use nullclass::nulls::Variant;
use tch::{Device, Kind, Tensor};

/// `n` values `(2u - 1) * bound`, u = ((i + salt + 1) * 2654435761 mod 2^32) / 2^32:
/// a multiplicative hash, spread evenly over [-bound, bound).
pub fn hashed(n: i64, salt: u64, bound: f64) -> Tensor {
    let values: Vec<f32> = (0..n as u64)
        .map(|i| {
            let u = ((i + salt + 1).wrapping_mul(2_654_435_761)) % (1u64 << 32);
            ((2.0 * u as f64 / 4_294_967_296.0 - 1.0) * bound) as f32
        })
        .collect();
    Tensor::from_slice(&values)
}

/// The MNIST CNN with hashed weights: parameter j (in [`MnistCnn::parameter_shapes`]
/// order) uses salt `7919 j + model_salt`, within the Glorot bound for weights and
/// 0.1 for biases. `model_salt = 0` gives the weights of
/// scripts/make_fgsm_fixture.py.
pub fn hashed_model(model_salt: u64) -> LoadedModel {
    let m = LoadedModel::fresh(Device::Cpu);
    let fans = [
        (9, 288),
        (0, 0),
        (288, 576),
        (0, 0),
        (9216, 128),
        (0, 0),
        (128, 11),
        (0, 0),
    ];
    let mut vars = m.vs.variables();
    tch::no_grad(|| {
        for (j, ((name, shape), (fan_in, fan_out))) in MnistCnn::parameter_shapes()
            .into_iter()
            .zip(fans)
            .enumerate()
        {
            let bound = if fan_in > 0 {
                (6.0 / (fan_in + fan_out) as f64).sqrt()
            } else {
                0.1
            };
            let n: i64 = shape.iter().product();
            let values = hashed(n, 7919 * j as u64 + model_salt, bound).view(shape.as_slice());
            if let Some(var) = vars.get_mut(name) {
                var.copy_(&values);
            }
        }
    });
    m
}

/// Smooth uint8 images `[n,28,28]` on a dark background: hashed noise, blurred and
/// stretched.
pub fn blob_images(n: i64, salt: u64) -> Tensor {
    let noise = (hashed(n * 36 * 36, salt, 0.5) + 0.5).view([n, 1, 36, 36]);
    let blur = noise.avg_pool2d([9, 9], [1, 1], [0, 0], false, true, None::<i64>);
    let lo = blur.amin([2, 3], true);
    let hi = blur.amax([2, 3], true);
    let x = ((blur - &lo) / (hi - lo) * 2.0 - 0.8).clamp(0.0, 1.0);
    (x * 255.0).round().to_kind(Kind::Uint8).view([n, 28, 28])
}

/// Writes `root/data/mnist.safetensors` with `test` test images and 8 untrained
/// models of set `seed`. The baseline never predicts null (as a trained one would
/// not), and the test labels are its own predictions, so it is right on them, except
/// every `wrong_every`-th image, which gets another digit so that the attack has
/// images to skip.
pub fn write_set(root: &Path, seed: u64, test: i64, wrong_every: i64) -> Result<()> {
    let base = write_models(root, seed)?;
    let test_images = blob_images(test, 77 * seed + 5);
    let pred = base.predict(&(test_images.to_kind(Kind::Float) / 255.0), 256);
    let every = wrong_every.max(1);
    let make_wrong = Tensor::arange(test, (Kind::Int64, Device::Cpu))
        .remainder(every)
        .eq(every - 1);
    let labels = (&pred + 1)
        .remainder(10)
        .where_self(&make_wrong, &pred)
        .to_kind(Kind::Uint8);
    let train_images = blob_images(16, 77 * seed + 6);
    let train_labels = Tensor::arange(16, (Kind::Int64, Device::Cpu))
        .remainder(10)
        .to_kind(Kind::Uint8);
    let mnist = Mnist {
        train_images,
        train_labels,
        test_images,
        test_labels: labels,
    };
    mnist.save(&DataSet::Mnist.file(root))
}

/// Writes only the 8 untrained models of set `seed` (a second set beside one that
/// [`write_set`] made, sharing its data); returns the baseline.
pub fn write_models(root: &Path, seed: u64) -> Result<LoadedModel> {
    let set = SetDir::new(root, seed);
    std::fs::create_dir_all(set.models_dir())?;
    let mut base = None;
    for v in Variant::all() {
        let m = hashed_model(1_000_003 * (seed * 8 + v.index() + 1));
        if v.is_baseline() {
            let mut vars = m.vs.variables();
            if let Some(bias) = vars.get_mut("fc2.bias") {
                let _ = tch::no_grad(|| bias.get(NULL_CLASS).fill_(-100.0));
            }
        }
        m.vs.save(set.model(&v))?;
        if v.is_baseline() {
            base = Some(m);
        }
    }
    base.ok_or_else(|| anyhow::anyhow!("Variant::all() lacks the baseline"))
}
