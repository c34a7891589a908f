//! Tiny synthetic artifact trees for tests: a small "MNIST" file and 8 untrained
//! models, built in a second, so the attack and the evaluator can be exercised end to
//! end on machines without the real data.

use std::path::Path;

use anyhow::Result;
use nullclass::artifacts::{mnist_file, SetDir};
use nullclass::dataset::Mnist;
use nullclass::model::{LoadedModel, NULL_CLASS};
use nullclass::nulls::Variant;
use tch::{Device, Kind, Tensor};

/// Smooth random uint8 images `[n,28,28]`, dark background, from torch's global
/// generator.
pub fn blob_images(n: i64) -> Tensor {
    let noise = Tensor::rand([n, 1, 36, 36], (Kind::Float, Device::Cpu));
    let blur = noise.avg_pool2d([9, 9], [1, 1], [0, 0], false, true, None::<i64>);
    let lo = blur.amin([2, 3], true);
    let hi = blur.amax([2, 3], true);
    let x = ((blur - &lo) / (hi - lo) * 2.0 - 0.8).clamp(0.0, 1.0);
    (x * 255.0).round().to_kind(Kind::Uint8).view([n, 28, 28])
}

/// Writes `root/data/mnist.safetensors` with `test` test images and 8 fresh models
/// of set `seed`. Test labels are the baseline's own predictions, so it is right on
/// them, except every `wrong_every`-th image (and any it calls null), which gets
/// another digit so that the attack has images to skip.
pub fn write_set(root: &Path, seed: u64, test: i64, wrong_every: i64) -> Result<()> {
    tch::manual_seed(seed as i64);
    let set = SetDir::new(root, seed);
    let models: Vec<(Variant, LoadedModel)> = Variant::all()
        .into_iter()
        .map(|v| (v, LoadedModel::fresh(Device::Cpu)))
        .collect();
    for (v, m) in &models {
        std::fs::create_dir_all(set.models_dir())?;
        m.vs.save(set.model(v))?;
    }
    let test_images = blob_images(test);
    let x = test_images.to_kind(Kind::Float) / 255.0;
    let pred = models[0].1.predict(&x, 256);
    let idx = Tensor::arange(test, (Kind::Int64, Device::Cpu));
    let make_wrong = idx
        .remainder(wrong_every.max(1))
        .eq(wrong_every.max(1) - 1)
        .logical_or(&pred.eq(NULL_CLASS));
    let shifted = (pred.clamp_max(9) + 1).remainder(10);
    let labels = shifted.where_self(&make_wrong, &pred).to_kind(Kind::Uint8);
    let train_images = blob_images(16);
    let train_labels = Tensor::arange(16, (Kind::Int64, Device::Cpu))
        .remainder(10)
        .to_kind(Kind::Uint8);
    let mnist = Mnist {
        train_images,
        train_labels,
        test_images,
        test_labels: labels,
    };
    mnist.save(&mnist_file(root))
}
