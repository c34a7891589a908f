//! `trainer train-set` (K models in lockstep, one wide network) against `trainer
//! train` (one model at a time) on real MNIST: the same artifacts, the same
//! weights to rounding in float64, the same accuracy in float32.
//!
//! Needs the prepared MNIST (`make test` makes it), as tests/train.rs does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use nullclass::dataset::Mnist;
use tch::Tensor;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A temporary artifacts root holding the prepared MNIST with its first 2,000 test
/// images only: validation and the clean test score of every model dominate these
/// short runs otherwise.
fn artifacts_root() -> tempfile::TempDir {
    let mnist = std::env::var_os("NULLCLASS_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("artifacts/data/mnist.safetensors"));
    assert!(
        mnist.exists(),
        "prepared MNIST missing at {}: run `make test`",
        mnist.display()
    );
    let mut data = Mnist::load(&mnist).unwrap();
    data.test_images = data.test_images.narrow(0, 0, 2000);
    data.test_labels = data.test_labels.narrow(0, 0, 2000);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    data.save(&dir.path().join("data/mnist.safetensors"))
        .unwrap();
    dir
}

/// One thread each: the tests of this file run side by side, and oversubscribed
/// OpenMP threads spin-wait each other to a crawl.
fn trainer(root: &Path, command: &str, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args([
            command,
            "--artifacts",
            root.to_str().unwrap(),
            "--device",
            "cpu",
            "--threads",
            "1",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trainer {command} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tensors(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

/// Trains `variants` of set 4 both ways with `common` settings; returns the two roots.
fn both_paths(
    variants: &[&str],
    common: &[&str],
    set_flags: &[&str],
) -> (tempfile::TempDir, tempfile::TempDir) {
    let fast = artifacts_root();
    let slow = artifacts_root();
    let list = variants.join(",");
    let mut args = vec!["--seed", "4", "--variants", &list];
    args.extend_from_slice(common);
    args.extend_from_slice(set_flags);
    trainer(fast.path(), "train-set", &args);
    for v in variants {
        let mut args = vec!["--seed", "4", "--variant", v];
        args.extend_from_slice(common);
        trainer(slow.path(), "train", &args);
    }
    (fast, slow)
}

#[test]
fn stacked_training_matches_single_training_in_f64() {
    // Grouped convolutions: the GPU layout, whose sums run in another order than
    // the single model's, so only rounding may differ: about 1e-13 relative after
    // these 150 steps, against O(1e-3) for any slip in batches, masks or updates.
    // usm draws every null type. Batch 2 because float64 convolutions are slow on
    // CPUs (no oneDNN kernels).
    let variants = ["base", "usm"];
    let common = [
        "--epochs",
        "2",
        "--steps",
        "75",
        "--batch",
        "2",
        "--val-limit",
        "100",
        "--precision",
        "f64",
    ];
    let (fast, slow) = both_paths(&variants, &common, &["--convs", "grouped"]);
    for v in variants {
        let models = |root: &Path| root.join("seed-04/models");
        let (a, b) = (
            json(&models(fast.path()).join(format!("{v}.json"))),
            json(&models(slow.path()).join(format!("{v}.json"))),
        );
        let keys =
            |j: &serde_json::Value| j.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(&a),
            keys(&b),
            "{v}: the two paths write different JSON keys"
        );
        assert_eq!(keys(&a["config"]), keys(&b["config"]));
        assert_eq!(a["training_path"], "stacked-grouped");
        assert_eq!(b["training_path"], "single");
        // Validated on fresh nulls each epoch (the default): the same passes alone
        // and in the stack, as the val_loss comparison below shows.
        assert_eq!(a["config"]["validation_nulls"], "fresh");
        assert_eq!(b["config"]["validation_nulls"], "fresh");
        assert_eq!(
            (a["lockstep_models"].as_u64(), b["lockstep_models"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(a["best_epoch"], b["best_epoch"], "{v}");
        for (ha, hb) in a["history"]
            .as_array()
            .unwrap()
            .iter()
            .zip(b["history"].as_array().unwrap())
        {
            for key in ["train_loss", "val_loss"] {
                let (x, y) = (ha[key].as_f64().unwrap(), hb[key].as_f64().unwrap());
                assert!((x - y).abs() < 1e-9 * y.abs(), "{v}: {key} {x} vs {y}");
            }
            assert_eq!(ha["train_accuracy"], hb["train_accuracy"], "{v}");
            assert_eq!(ha["val_accuracy"], hb["val_accuracy"], "{v}");
        }
        for file in [format!("{v}.safetensors"), format!("{v}.last.safetensors")] {
            let (ta, tb) = (
                tensors(&models(fast.path()).join(&file)),
                tensors(&models(slow.path()).join(&file)),
            );
            assert_eq!(ta.len(), 8);
            for (name, x) in &ta {
                let y = &tb[name];
                assert_eq!(x.size(), y.size(), "{file} {name}");
                let scale = y.abs().max().double_value(&[]);
                let d = (x - y).abs().max().double_value(&[]) / scale;
                assert!(d < 1e-9, "{file} {name}: relative difference {d}");
            }
        }
    }
}

#[test]
fn stacked_training_reaches_the_same_accuracy_in_f32_and_bf16() {
    // float32 grouped convolutions round differently from the single model's, and
    // 200 steps of training amplify that into different weights: compare what the
    // study uses, clean accuracy, to within run-to-run noise. bf16 activations
    // (float32 master weights) must stay within the same noise of float32.
    let variants = ["base", "um"];
    let common = ["--epochs", "1", "--steps", "200", "--val-limit", "300"];
    let (fast, slow) = both_paths(&variants, &common, &["--convs", "grouped"]);
    let half = artifacts_root();
    let mut args = vec![
        "--seed",
        "4",
        "--variants",
        "base,um",
        "--precision",
        "bf16",
    ];
    args.extend_from_slice(&common);
    trainer(half.path(), "train-set", &args);
    for v in variants {
        let path = |root: &Path| root.join(format!("seed-04/models/{v}.json"));
        let (a, h) = (json(&path(fast.path())), json(&path(half.path())));
        assert_eq!(h["config"]["precision"], "bf16");
        let (x, y) = (
            a["clean_test_accuracy"].as_f64().unwrap(),
            h["clean_test_accuracy"].as_f64().unwrap(),
        );
        eprintln!("{v}: clean accuracy f32 {x:.4}, bf16 {y:.4}");
        assert!((x - y).abs() < 0.015, "{v}: bf16 {y} vs f32 {x}");
        // Master weights, and so checkpoints, stay float32.
        let t = tensors(&half.path().join(format!("seed-04/models/{v}.safetensors")));
        assert!(t.values().all(|t| t.kind() == tch::Kind::Float));
    }
    for v in variants {
        let path = |root: &Path| root.join(format!("seed-04/models/{v}.json"));
        let (a, b) = (json(&path(fast.path())), json(&path(slow.path())));
        let (x, y) = (
            a["clean_test_accuracy"].as_f64().unwrap(),
            b["clean_test_accuracy"].as_f64().unwrap(),
        );
        eprintln!("{v}: clean accuracy stacked {x:.4}, single {y:.4}");
        assert!(y > 0.85, "{v}: single-path accuracy {y} after 200 steps");
        assert!((x - y).abs() < 0.015, "{v}: stacked {x} vs single {y}");
        // The epoch's mean training loss is mostly made early, while the two runs
        // are still close (about 1e-4 apart); other batches alone would move it by
        // the sampling noise of 200 batch means, of the order of a few percent.
        let loss = |j: &serde_json::Value| j["history"][0]["train_loss"].as_f64().unwrap();
        let (lx, ly) = (loss(&a), loss(&b));
        assert!(
            (lx - ly).abs() < 0.01 * ly,
            "{v}: training loss {lx} vs {ly}"
        );
        let identical = std::fs::read(fast.path().join(format!("seed-04/models/{v}.safetensors")))
            .unwrap()
            == std::fs::read(slow.path().join(format!("seed-04/models/{v}.safetensors"))).unwrap();
        eprintln!("{v}: checkpoints byte-identical: {identical}");
    }
}

#[test]
fn train_set_refuses_bad_variant_lists() {
    let root = artifacts_root();
    for list in ["base,xyz", "u,u"] {
        let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
            .args([
                "train-set",
                "--artifacts",
                root.path().to_str().unwrap(),
                "--seed",
                "0",
                "--variants",
                list,
            ])
            .args(["--device", "cpu", "--steps", "1", "--epochs", "1"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{list} accepted");
    }
    assert!(!root.path().join("seed-00").exists());
}
