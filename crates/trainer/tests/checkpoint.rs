//! The kept `<v>.safetensors` holds the best epoch's weights: its validation loss,
//! recomputed here from the checkpoint on a validation set rebuilt from the same
//! streams, is the history's minimum, and `<v>.last.safetensors` gives the last epoch's.
//!
//! The run uses `--validation-nulls fixed` (the same nulls every epoch), so that one
//! rebuilt set serves every epoch; the fresh passes are tested in tests/train_set.rs.
//! Needs the prepared MNIST, as tests/train.rs.

use std::path::{Path, PathBuf};
use std::process::Command;

use nullclass::artifacts::SetDir;
use nullclass::dataset::Mnist;
use nullclass::model::LoadedModel;
use nullclass::nulls::{NullConfig, Variant, TILES_CODE};
use nullclass::stacked::batches::StackBatches;
use tch::{Device, Kind, Tensor};

const SEED: u64 = 2;
const VAL_ITEMS: i64 = 300;
const BATCH: i64 = 32;

fn prepared_mnist() -> PathBuf {
    let mnist = std::env::var_os("NULLCLASS_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../artifacts/data/mnist.safetensors")
        });
    assert!(
        mnist.exists(),
        "prepared MNIST missing at {}: run `make test`, which prepares it",
        mnist.display()
    );
    std::fs::canonicalize(mnist).unwrap()
}

/// Mean cross-entropy of `model` over `images` `[N,1,28,28]` and `labels` `[N]`, as
/// log-softmax picked at the label, summed in float64.
fn mean_loss(model: &LoadedModel, images: &Tensor, labels: &Tensor) -> f64 {
    let logp = model
        .logits(images)
        .to_kind(Kind::Double)
        .log_softmax(1, Kind::Double);
    let picked = logp.gather(1, &labels.unsqueeze(1), false);
    -picked.sum(Kind::Double).double_value(&[]) / labels.size()[0] as f64
}

#[test]
fn the_kept_checkpoint_is_the_best_epoch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::os::unix::fs::symlink(prepared_mnist(), dir.path().join("data/mnist.safetensors"))
        .unwrap();
    let variant: Variant = "u".parse().unwrap();
    // Short epochs at a high learning rate, so that the validation loss need not fall
    // every epoch.
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["train", "--artifacts", dir.path().to_str().unwrap()])
        .args([
            "--seed",
            &SEED.to_string(),
            "--variant",
            "u",
            "--device",
            "cpu",
        ])
        .args([
            "--threads",
            "1",
            "--epochs",
            "6",
            "--steps",
            "4",
            "--lr",
            "0.03",
        ])
        .args([
            "--batch",
            &BATCH.to_string(),
            "--val-limit",
            &VAL_ITEMS.to_string(),
            "--validation-nulls",
            "fixed",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let set = SetDir::new(dir.path(), SEED);
    let history = std::fs::read_to_string(set.model_history(&variant)).unwrap();
    let mut lines = history.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "val_loss").unwrap();
    let val_loss: Vec<f64> = lines
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect();
    assert_eq!(val_loss.len(), 6);
    let last_epoch = val_loss.len() - 1;
    let best = val_loss
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;

    // The validation set as the trainer builds it: the test set's first items through
    // the variant's null generator, keyed by the variant's torch seed.
    let test = Mnist::load(&dir.path().join("data/mnist.safetensors"))
        .unwrap()
        .test(Device::Cpu)
        .head(VAL_ITEMS);
    let torch_seed = (SEED * 100 + variant.index()) as i64;
    let config = NullConfig {
        null_prob: 0.5,
        tile_sizes: TILES_CODE.to_vec(),
    };
    let val = StackBatches::new(
        &test,
        std::slice::from_ref(&variant),
        &[torch_seed],
        &config,
        BATCH,
    )
    .unwrap();
    let b = val.sequential(0, val.sequential_batches());
    let (images, labels) = (b.images.get(0), b.labels.get(0));
    assert_eq!(labels.size(), [VAL_ITEMS]);
    assert!(
        labels.eq(10).any().int64_value(&[]) != 0,
        "no nulls in the validation set"
    );

    let kept = LoadedModel::load(&set.model(&variant), Device::Cpu).unwrap();
    let last = LoadedModel::load(&set.model_last(&variant), Device::Cpu).unwrap();
    let (kept_loss, last_loss) = (
        mean_loss(&kept, &images, &labels),
        mean_loss(&last, &images, &labels),
    );
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * b.abs().max(1.0);
    assert!(
        close(kept_loss, val_loss[best]),
        "kept checkpoint's loss {kept_loss}, best epoch {} had {} (history {val_loss:?})",
        best + 1,
        val_loss[best]
    );
    assert!(
        close(last_loss, val_loss[last_epoch]),
        "last checkpoint's loss {last_loss}, last epoch had {}",
        val_loss[last_epoch]
    );
    // With these settings (seed 2, epochs 6 x 4 steps at lr 0.03) epoch 5 is the best:
    // the kept and the last checkpoint differ, and the check above tells them apart.
    if best != last_epoch {
        assert!(
            !close(kept_loss, last_loss),
            "kept and last checkpoints agree"
        );
    }
    eprintln!("best epoch {} of 6; history {val_loss:?}", best + 1);
}
