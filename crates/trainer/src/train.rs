//! `trainer train`: one model of one set, at the paper's settings by default
//! (method-notes.md, "Training regime").

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use nullclass::artifacts::{self, SetDir};
use nullclass::dataset::{Mnist, Split};
use nullclass::device::{device_name, DeviceChoice};
use nullclass::model::{LoadedModel, NULL_CLASS};
use nullclass::nulls::{Batch, BatchMaker, NullConfig, Variant, TILES_CODE, TILES_TEXT};
use serde::Serialize;
use tch::nn::{ModuleT, OptimizerConfig};
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Validation {
    /// The test set through the null generator, as the published code did (this
    /// leaks test data into checkpoint selection).
    Test,
    /// The last `--holdout` training images, which are then never trained on.
    Holdout,
}

#[derive(Args, Debug, Clone, Serialize)]
pub struct Config {
    /// Artifacts root: reads data/mnist.safetensors, writes seed-NN/models/.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Set seed; each variant's random streams derive from (seed, variant).
    #[arg(long)]
    pub seed: u64,
    /// Which model of the set: base, u, s, m, us, um, sm or usm.
    #[arg(long)]
    #[serde(serialize_with = "serialize_display")]
    pub variant: Variant,
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Steps per epoch (1875 = 60,000 samples at batch 32).
    #[arg(long, default_value_t = 1875)]
    pub steps: usize,
    #[arg(long, default_value_t = 32)]
    pub batch: i64,
    /// Adam learning rate (betas 0.9/0.999, eps 1e-8).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Probability that a batch slot is a null (null variants only).
    #[arg(long, default_value_t = 0.5)]
    pub null_prob: f64,
    /// Shuffled-null tile sizes from the report's text {1,2,4,7,14} instead of the
    /// published code's {2,4,7,14} (the default).
    #[arg(long)]
    pub text_tiles: bool,
    /// Which data picks the kept checkpoint (lowest validation loss).
    #[arg(long, value_enum, default_value_t = Validation::Test)]
    pub validation: Validation,
    /// Training images held out for `--validation holdout`.
    #[arg(long, default_value_t = 10_000)]
    pub holdout: i64,
    /// Validate on at most this many items (all by default); for quick runs.
    #[arg(long)]
    pub val_limit: Option<i64>,
    /// auto, cpu, cuda or cuda:N (auto takes a GPU when one is usable).
    #[arg(long, default_value = "auto")]
    #[serde(serialize_with = "serialize_display")]
    pub device: DeviceChoice,
    /// Torch intra-op threads (torch's default when absent).
    #[arg(long)]
    pub threads: Option<i32>,
}

fn serialize_display<T: std::fmt::Display, S: serde::Serializer>(
    v: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Derives a variant's torch seed from the set seed, so any one model can be
/// retrained alone and match.
pub fn variant_seed(set_seed: u64, variant: &Variant) -> i64 {
    (set_seed * 100 + variant.index()) as i64
}

/// Salt for the validation set's stream, so it does not shift the training stream.
const VALIDATION_SALT: i64 = 7_777_777;

#[derive(Debug, Serialize, Clone)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
struct ModelReport<'a> {
    variant: String,
    seed: u64,
    torch_seed: i64,
    config: &'a Config,
    null_types: Vec<String>,
    tile_sizes: Vec<i64>,
    device: String,
    threads: i32,
    versions: Versions,
    history: &'a [EpochRecord],
    best_epoch: usize,
    best_val_loss: f64,
    clean_test_accuracy: f64,
    clean_null_rate: f64,
    wall_seconds: f64,
    ms_per_step: f64,
    checkpoint_sha256: String,
}

#[derive(Debug, Serialize)]
struct Versions {
    nullclass: &'static str,
    tch: &'static str,
}

/// Mean loss and accuracy of `model` over a fixed set, without dropout.
fn evaluate(model: &LoadedModel, set: &Batch, chunk: i64) -> (f64, f64) {
    let n = set.labels.size()[0];
    let mut loss_sum = 0.0;
    let mut correct = 0i64;
    for s in (0..n).step_by(chunk as usize) {
        let len = chunk.min(n - s);
        let logits = model.logits(&set.images.narrow(0, s, len));
        let labels = set.labels.narrow(0, s, len);
        loss_sum += f64::try_from(logits.cross_entropy_for_logits(&labels)).unwrap_or(f64::NAN)
            * len as f64;
        correct += logits
            .argmax(1, false)
            .eq_tensor(&labels)
            .sum(Kind::Int64)
            .int64_value(&[]);
    }
    (loss_sum / n as f64, correct as f64 / n as f64)
}

/// Clean test accuracy and the share of clean test images put in the null class.
pub fn clean_scores(model: &LoadedModel, test: &Split) -> (f64, f64) {
    let pred = model.predict(&test.images, 1000);
    let n = test.len() as f64;
    let acc = pred
        .eq_tensor(&test.labels)
        .sum(Kind::Int64)
        .int64_value(&[]) as f64
        / n;
    let null = pred.eq(NULL_CLASS).sum(Kind::Int64).int64_value(&[]) as f64 / n;
    (acc, null)
}

fn snapshot(model: &LoadedModel) -> Vec<(String, Tensor)> {
    let mut vars: Vec<_> = model
        .vs
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.detach().copy()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

fn restore(model: &LoadedModel, snap: &[(String, Tensor)]) {
    let mut vars = model.vs.variables();
    tch::no_grad(|| {
        for (name, t) in snap {
            if let Some(v) = vars.get_mut(name) {
                v.copy_(t);
            }
        }
    });
}

pub fn run(config: &Config) -> Result<()> {
    let start = Instant::now();
    if let Some(t) = config.threads {
        tch::set_num_threads(t);
    }
    if config.epochs == 0 || config.steps == 0 || config.batch <= 0 {
        bail!("--epochs, --steps and --batch must be positive");
    }
    if !(0.0..=1.0).contains(&config.null_prob) {
        bail!("--null-prob must be within [0, 1]");
    }
    let device = config.device.resolve()?;
    let set = SetDir::new(&config.artifacts, config.seed);
    let variant = &config.variant;
    let mnist = Mnist::load(&artifacts::mnist_file(&config.artifacts))?;
    let train_all = mnist.train(device);
    let (train, val_pool) = match config.validation {
        Validation::Test => (train_all.head(train_all.len()), mnist.test(device)),
        Validation::Holdout => {
            let keep = train_all.len() - config.holdout;
            if config.holdout <= 0 || keep <= config.batch {
                bail!(
                    "--holdout {} leaves too few training images",
                    config.holdout
                );
            }
            (train_all.head(keep), train_all.slice(keep, config.holdout))
        }
    };
    let val_pool = val_pool.head(config.val_limit.unwrap_or(i64::MAX));
    let tile_sizes = if config.text_tiles {
        TILES_TEXT.to_vec()
    } else {
        TILES_CODE.to_vec()
    };
    let null_config = NullConfig {
        null_prob: config.null_prob,
        tile_sizes: tile_sizes.clone(),
    };

    let torch_seed = variant_seed(config.seed, variant);
    tch::manual_seed(torch_seed.wrapping_add(VALIDATION_SALT));
    let val_set =
        BatchMaker::new(&val_pool, variant, null_config.clone()).sequential_set(config.batch);

    tch::manual_seed(torch_seed);
    let model = LoadedModel::fresh(device);
    let mut opt = tch::nn::Adam {
        beta1: 0.9,
        beta2: 0.999,
        wd: 0.0,
        eps: 1e-8,
        amsgrad: false,
    }
    .build(&model.vs, config.lr)
    .context("cannot build the Adam optimiser")?;
    let maker = BatchMaker::new(&train, variant, null_config);

    let total = (config.epochs * config.steps) as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
            .context("progress bar template")?,
    );
    bar.set_prefix(format!("seed-{:02}/{}", config.seed, variant));

    let mut history = Vec::with_capacity(config.epochs);
    let mut best: Option<(usize, f64, Vec<(String, Tensor)>)> = None;
    // Time in training steps alone (validation excluded), for ms/step.
    let mut step_seconds = 0.0;
    for epoch in 1..=config.epochs {
        let epoch_start = Instant::now();
        // Summed on the device and read once per epoch (and for the progress bar),
        // so the step itself never waits on the host.
        let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
        let mut correct = Tensor::zeros([], (Kind::Int64, device));
        for step in 1..=config.steps {
            let batch = maker.random_batch(config.batch);
            let logits = model.net.forward_t(&batch.images, true);
            let loss = logits.cross_entropy_for_logits(&batch.labels);
            opt.backward_step(&loss);
            tch::no_grad(|| {
                loss_sum += loss.detach().to_kind(Kind::Double);
                correct += logits
                    .argmax(1, false)
                    .eq_tensor(&batch.labels)
                    .sum(Kind::Int64);
            });
            if step % 50 == 0 || step == config.steps {
                let mean = loss_sum.double_value(&[]) / step as f64;
                if !mean.is_finite() {
                    bail!("training loss became {mean} at epoch {epoch} step {step}; no checkpoint written");
                }
                let acc = correct.int64_value(&[]) as f64 / (step as i64 * config.batch) as f64;
                bar.set_message(format!(
                    "epoch {epoch} loss {mean:.4} acc {:.2}%",
                    100.0 * acc
                ));
                bar.inc(if step % 50 == 0 {
                    50
                } else {
                    (step % 50) as u64
                });
            }
        }
        step_seconds += epoch_start.elapsed().as_secs_f64();
        let steps_seen = (config.steps as i64 * config.batch) as f64;
        let (val_loss, val_accuracy) = evaluate(&model, &val_set, 1000);
        if !val_loss.is_finite() {
            bail!("validation loss became {val_loss} at epoch {epoch}; no checkpoint written");
        }
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum.double_value(&[]) / config.steps as f64,
            train_accuracy: correct.int64_value(&[]) as f64 / steps_seen,
            val_loss,
            val_accuracy,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        let line = format!(
            "seed-{:02}/{variant} epoch {epoch}: train loss {:.4} acc {:.2}%, val loss {:.4} acc {:.2}%",
            config.seed,
            record.train_loss,
            100.0 * record.train_accuracy,
            val_loss,
            100.0 * val_accuracy
        );
        // A hidden bar (output not a terminal, as under make -j or nohup) prints nothing.
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
        if best.as_ref().is_none_or(|b| val_loss < b.1) {
            best = Some((epoch, val_loss, snapshot(&model)));
        }
        history.push(record);
    }
    bar.finish_and_clear();
    let (best_epoch, best_val_loss, best_weights) = best.context("no epoch was trained")?;

    fs::create_dir_all(set.models_dir())
        .with_context(|| format!("cannot create {}", set.models_dir().display()))?;
    let save = |path: &std::path::Path| {
        artifacts::write_atomic(path, |tmp| {
            model
                .vs
                .save(tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))
        })
    };
    save(&set.model_last(variant))?;
    restore(&model, &best_weights);
    save(&set.model(variant))?;

    let test = mnist.test(device);
    let (clean_acc, clean_null) = clean_scores(&model, &test);
    write_history(&set.model_history(variant), &history)?;
    let report = ModelReport {
        variant: variant.name(),
        seed: config.seed,
        torch_seed,
        config,
        null_types: variant
            .null_types()
            .iter()
            .map(|t| format!("{t:?}").to_lowercase())
            .collect(),
        tile_sizes,
        device: device_name(device),
        threads: tch::get_num_threads(),
        versions: Versions {
            nullclass: env!("CARGO_PKG_VERSION"),
            tch: "0.24.0",
        },
        history: &history,
        best_epoch,
        best_val_loss,
        clean_test_accuracy: clean_acc,
        clean_null_rate: clean_null,
        wall_seconds: start.elapsed().as_secs_f64(),
        ms_per_step: 1000.0 * step_seconds / (config.epochs * config.steps) as f64,
        checkpoint_sha256: artifacts::sha256_file(&set.model(variant))?,
    };
    // Written last: make takes the JSON as the sign that the model is complete.
    artifacts::write_json(&set.model_json(variant), &report)?;
    eprintln!(
        "seed-{:02}/{variant}: clean accuracy {:.2}%, clean null rate {:.2}%, best epoch {best_epoch}, {:.0} s",
        config.seed,
        100.0 * clean_acc,
        100.0 * clean_null,
        report.wall_seconds
    );
    Ok(())
}

fn write_history(path: &std::path::Path, history: &[EpochRecord]) -> Result<()> {
    artifacts::write_atomic(path, |tmp| {
        let mut w = csv::Writer::from_path(tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        for r in history {
            w.serialize(r)?;
        }
        w.flush()?;
        Ok(())
    })
}
