//! `trainer nulls` end to end on a tiny synthetic MNIST: the samples it writes are
//! the training generator's own (keyed like the model seed-NN/<types>), and a pool
//! mixed nulls cannot use is a clean error, not a hang or a panic.

use std::path::Path;
use std::process::{Command, Output};

use nullclass::dataset::Mnist;
use nullclass::npy;
use nullclass::nulls::{NullConfig, Variant};
use nullclass::stacked::batches::StackBatches;
use tch::{Device, Kind, Tensor};

/// A prepared MNIST of 64 random images whose labels cycle through `classes`.
fn mnist(root: &Path, classes: i64) {
    tch::manual_seed(4);
    let images =
        (Tensor::rand([64, 28, 28], (Kind::Float, Device::Cpu)) * 255.0).to_kind(Kind::Uint8);
    let labels = Tensor::arange(64, (Kind::Int64, Device::Cpu))
        .remainder(classes)
        .to_kind(Kind::Uint8);
    Mnist {
        train_images: images.shallow_clone(),
        train_labels: labels.shallow_clone(),
        test_images: images.narrow(0, 0, 8),
        test_labels: labels.narrow(0, 0, 8),
    }
    .save(&root.join("data/mnist.safetensors"))
    .unwrap();
}

fn nulls(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["nulls", "--artifacts", root.to_str().unwrap(), "--out"])
        .arg(root.join("nulls"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_dump_is_what_the_training_generator_draws() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    mnist(root, 10);
    let out = nulls(
        root,
        &[
            "--types", "usm", "--seed", "3", "--count", "40", "--batch", "16",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = root.join("nulls");
    let images = npy::read(&dir.join("nulls_images.npy")).unwrap();
    let types = npy::read(&dir.join("nulls_types.npy")).unwrap();
    let tiles = npy::read(&dir.join("nulls_tiles.npy")).unwrap();
    assert_eq!(images.size(), [40, 28, 28]);
    assert_eq!(types.size(), [40]);
    assert!(dir.join("nulls_meta.json").is_file());

    // The model seed-03/usm: torch seed 3 * 100 + its index among the variants.
    let usm: Variant = "usm".parse().unwrap();
    let train = Mnist::load(&root.join("data/mnist.safetensors"))
        .unwrap()
        .train(Device::Cpu);
    let config = NullConfig {
        null_prob: 1.0,
        ..Default::default()
    };
    let seed = 300 + usm.index() as i64;
    let b = StackBatches::new(&train, &[usm], &[seed], &config, 16).unwrap();
    for step in 0..3i64 {
        let keys = b.step_keys(step as u64);
        let batch = b.train_batch(&keys);
        let take = 16.min(40 - 16 * step);
        let want = batch.images.get(0).narrow(0, 0, take).view([take, 28, 28]);
        assert!(
            images.narrow(0, 16 * step, take).equal(&want),
            "step {step}: the dump differs from the training generator"
        );
        let codes = batch.null_types.get(0).narrow(0, 0, take);
        assert!(types.narrow(0, 16 * step, take).equal(&codes));
        let tile = b.tile_sizes(&keys).int64_value(&[0]);
        let want_tiles = codes.eq(1).to_kind(Kind::Int64) * tile;
        assert!(tiles.narrow(0, 16 * step, take).equal(&want_tiles));
    }
}

#[test]
fn mixed_nulls_from_one_label_fail_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    mnist(root, 1);
    let out = nulls(root, &["--types", "m"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("mixed nulls need images of at least two labels"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!root.join("nulls/nulls_meta.json").exists());
    // Uniform and shuffled nulls need no second label.
    let out = nulls(root, &["--types", "us", "--count", "8"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
