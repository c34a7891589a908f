//! `trainer train`: one model of one set, at the paper's settings by default
//! (method-notes.md, "Training regime"), and the training loop it shares with
//! `trainer train-set` (K models in lockstep, [`crate::train_set`]).
//!
//! Randomness: a model's weights come from torch's generator seeded with its torch
//! seed; everything drawn during training (batches, nulls, dropout masks) and the
//! validation set come from counter-based streams keyed by that seed and the step
//! ([`nullclass::streams`]). A model therefore sees the same numbers
//! whether it is trained alone or beside others, on any device.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use nullclass::artifacts::{self, SetDir};
use nullclass::dataset::{DataSet, Prepared, Split};
use nullclass::device::{device_name, DeviceChoice, Tf32};
use nullclass::model::{LoadedModel, MnistCnn, NULL_CLASS, NUM_CLASSES};
use nullclass::nulls::{NullConfig, Variant, TILES_CODE, TILES_TEXT};
use nullclass::stacked::adam::{Adam, AdamConfig};
use nullclass::stacked::batches::{FreshWalk, StackBatches};
use nullclass::stacked::net::{save_model, Dropout};
use serde::Serialize;
use tch::nn;
use tch::{Device, Kind, Reduction, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Validation {
    /// The test set through the null generator, as the published code did (this
    /// leaks test data into checkpoint selection).
    Test,
    /// The last `--holdout` training images, which are then never trained on.
    Holdout,
}

/// How each epoch's validation pass draws its nulls and digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValidationNulls {
    /// As the published code's long-lived test generator: every epoch's pass draws
    /// new nulls, and its digits continue, in order, where the previous pass's
    /// stopped (seeded by the model and the epoch).
    Fresh,
    /// The same validation set every epoch: the pool in order, nulls in place of
    /// some digits.
    Fixed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32, as the published models.
    F32,
    /// float64 parameters and activations: for the tests that compare the stacked
    /// and single paths to rounding (checkpoints are then float64).
    F64,
    /// bfloat16 activations and forward weights, float32 master weights, gradients
    /// and Adam state (train-set only; for GPUs).
    Bf16,
}

impl Precision {
    /// Kind of the parameters, the optimiser state and the checkpoints.
    fn kind(self) -> Kind {
        match self {
            Self::F32 | Self::Bf16 => Kind::Float,
            Self::F64 => Kind::Double,
        }
    }

    /// Kind of the forward pass.
    fn compute_kind(self) -> Kind {
        match self {
            Self::Bf16 => Kind::BFloat16,
            other => other.kind(),
        }
    }
}

/// Settings shared by `train` and `train-set`: all but which models.
#[derive(Args, Debug, Clone, Serialize)]
pub struct Settings {
    /// Artifacts root: reads data/<dataset>.safetensors (MNIST or Fashion-MNIST), writes seed-NN/models/.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    #[arg(long, default_value_t = 20, value_parser = nullclass::flag_ranges::int::<usize>(1..=100_000))]
    pub epochs: usize,
    /// Steps per epoch (1875 = 60,000 samples at batch 32).
    #[arg(long, default_value_t = 1875, value_parser = nullclass::flag_ranges::int::<usize>(1..=100_000_000))]
    pub steps: usize,
    #[arg(long, default_value_t = 32, value_parser = nullclass::flag_ranges::int::<i64>(1..=nullclass::dataset::TRAIN_COUNT))]
    pub batch: i64,
    /// Adam learning rate (betas 0.9/0.999, eps 1e-8).
    #[arg(long, default_value_t = 1e-3, value_parser = nullclass::flag_ranges::positive)]
    pub lr: f64,
    /// Probability that a batch slot is a null (null variants only).
    #[arg(long, default_value_t = 0.5, value_parser = nullclass::flag_ranges::share)]
    pub null_prob: f64,
    /// Shuffled-null tile sizes from the report's text {1,2,4,7,14} instead of the
    /// published code's {2,4,7,14} (the default).
    #[arg(long)]
    pub text_tiles: bool,
    /// Which data picks the kept checkpoint (lowest validation loss).
    #[arg(long, value_enum, default_value_t = Validation::Test)]
    pub validation: Validation,
    /// Training images held out for `--validation holdout`.
    #[arg(long, default_value_t = 10_000, value_parser = nullclass::flag_ranges::int::<i64>(1..nullclass::dataset::TRAIN_COUNT))]
    pub holdout: i64,
    /// Validate on at most this many items (all by default); for quick runs.
    #[arg(long, value_parser = nullclass::flag_ranges::int::<i64>(1..))]
    pub val_limit: Option<i64>,
    /// auto, cpu, cuda or cuda:N (auto takes a GPU when one is usable).
    #[arg(long, default_value = "auto")]
    #[serde(serialize_with = "nullclass::artifacts::serialize_display")]
    pub device: DeviceChoice,
    /// TF32 in cuBLAS and cuDNN on a GPU: on or off. On by default: training is
    /// the bulk of the study's arithmetic, and TF32 rounding sits far below SGD's noise.
    #[arg(long, default_value = "on")]
    pub tf32: Tf32,
    /// Torch intra-op threads (torch's default when absent).
    #[arg(long, value_parser = nullclass::flag_ranges::int::<i32>(1..=nullclass::flag_ranges::MAX_THREADS))]
    pub threads: Option<i32>,
    /// Arithmetic of training (f64 is for tests; bf16 needs train-set).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Validation nulls: fresh each epoch as the published code, or one fixed set.
    #[arg(long, value_enum, default_value_t = ValidationNulls::Fresh)]
    pub validation_nulls: ValidationNulls,
    /// Read the training loss and accuracy back from the device every this many
    /// steps (and at each epoch's end) for the progress line and the divergence
    /// check; the steps in between never wait on the host.
    #[arg(long, default_value_t = 500, value_parser = nullclass::flag_ranges::int::<usize>(1..=1_000_000))]
    pub sync_every: usize,
}

#[derive(Args, Debug, Clone, Serialize)]
pub struct Config {
    /// Set seed; each variant's random streams derive from (seed, variant).
    #[arg(long, value_parser = nullclass::flag_ranges::int::<u64>(0..=nullclass::flag_ranges::MAX_SEED))]
    pub seed: u64,
    /// Which model of the set: base, u, s, m, us, um, sm or usm.
    #[arg(long)]
    #[serde(serialize_with = "nullclass::artifacts::serialize_display")]
    pub variant: Variant,
    #[command(flatten)]
    #[serde(flatten)]
    pub settings: Settings,
}

/// Derives a variant's torch seed from the set seed, so any one model can be
/// retrained alone and match.
pub fn variant_seed(set_seed: u64, variant: &Variant) -> i64 {
    (set_seed * 100 + variant.index()) as i64
}

#[derive(Debug, Serialize, Clone)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// Wall time of the epoch, validation included (of all lockstep models together).
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
struct ModelReport<'a> {
    variant: String,
    /// The data set it was trained on; every later stage checks it.
    dataset: DataSet,
    seed: u64,
    torch_seed: i64,
    config: &'a Config,
    null_types: Vec<String>,
    tile_sizes: Vec<i64>,
    device: String,
    threads: i32,
    versions: Versions,
    /// `single` (trainer train) or `stacked-<conv1>` (trainer train-set).
    training_path: &'a str,
    /// Models trained in lockstep with this one, itself included (1 when single).
    lockstep_models: usize,
    history: &'a [EpochRecord],
    best_epoch: usize,
    best_val_loss: f64,
    clean_test_accuracy: f64,
    clean_null_rate: f64,
    /// Wall time of the whole run (all lockstep models together).
    wall_seconds: f64,
    /// Training time (validation excluded) per step, divided by the lockstep models:
    /// this model's share.
    ms_per_step: f64,
    checkpoint_sha256: String,
}

#[derive(Debug, Serialize)]
struct Versions {
    nullclass: &'static str,
    tch: &'static str,
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

/// One model of a run: which set, which variant.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    pub seed: u64,
    pub variant: Variant,
}

impl ModelSpec {
    pub fn torch_seed(&self) -> i64 {
        variant_seed(self.seed, &self.variant)
    }

    fn label(&self) -> String {
        format!("seed-{:02}/{}", self.seed, self.variant)
    }
}

/// K models as the training loop sees them: one forward over `[K,B,1,28,28]`
/// inputs giving `[K,B,11]` logits, with per-model dropout masks.
pub trait Trainee {
    fn var_store(&self) -> &nn::VarStore;
    fn forward(&self, xs: &Tensor, dropout: Option<&Dropout>) -> Tensor;
    /// Model k's parameters under the checkpoint names, as detached copies.
    fn model_tensors(&self, k: i64) -> Vec<(String, Tensor)>;
}

/// The slow path: one MnistCnn, exactly as the evaluator and PyTorch run it.
pub struct Single(pub LoadedModel);

impl Trainee for Single {
    fn var_store(&self) -> &nn::VarStore {
        &self.0.vs
    }

    fn forward(&self, xs: &Tensor, dropout: Option<&Dropout>) -> Tensor {
        let x = xs.get(0);
        let keep = dropout.map(|d| d.multipliers(0, x.kind()));
        self.0
            .net
            .forward_masked(&x, keep.as_ref().map(|(a, b)| (a, b)))
            .unsqueeze(0)
    }

    fn model_tensors(&self, k: i64) -> Vec<(String, Tensor)> {
        assert_eq!(k, 0, "a single model is model 0");
        let vars = self.0.vs.variables();
        MnistCnn::parameter_shapes()
            .iter()
            .map(|(name, _)| (name.to_string(), vars[*name].detach().copy()))
            .collect()
    }
}

pub fn run(config: &Config) -> Result<()> {
    if config.settings.precision == Precision::Bf16 {
        bail!("--precision bf16 is for trainer train-set (the stacked network casts its weights per step); trainer train runs f32 or f64");
    }
    let spec = ModelSpec {
        seed: config.seed,
        variant: config.variant.clone(),
    };
    train_models(&config.settings, &[spec], "single", |mut models, _| {
        Ok(Box::new(Single(models.remove(0))))
    })
}

/// Data of a run, on the training device.
struct Data {
    dataset: DataSet,
    train: Split,
    val_pool: Split,
    test: Split,
}

fn load_data(settings: &Settings, device: Device) -> Result<Data> {
    let prepared = Prepared::open(&settings.artifacts)?;
    let mnist = &prepared.data;
    let train_all = mnist.train(device);
    let (train, val_pool) = match settings.validation {
        Validation::Test => (train_all.head(train_all.len()), mnist.test(device)),
        Validation::Holdout => {
            let keep = train_all.len() - settings.holdout;
            if settings.holdout <= 0 || keep <= settings.batch {
                bail!(
                    "--holdout {} leaves too few training images",
                    settings.holdout
                );
            }
            (
                train_all.head(keep),
                train_all.slice(keep, settings.holdout),
            )
        }
    };
    Ok(Data {
        dataset: prepared.dataset,
        train,
        val_pool: val_pool.head(settings.val_limit.unwrap_or(i64::MAX)),
        test: mnist.test(device),
    })
}

/// Per-item cross-entropy `[K,N]` of logits `[K,N,11]`.
fn item_losses(logits: &Tensor, labels: &Tensor) -> Tensor {
    let size = logits.size();
    logits
        .view([-1, NUM_CLASSES])
        .cross_entropy_loss::<Tensor>(&labels.reshape([-1]), None, Reduction::None, -100, 0.0)
        .view([size[0], size[1]])
}

/// Mean loss and accuracy of every model on its own validation set: the fixed one,
/// or the next pass of `walk` (fresh nulls, the digit window moved on).
fn validate(
    net: &dyn Trainee,
    val: &StackBatches,
    precision: Precision,
    batch: i64,
    mut walk: Option<&mut FreshWalk>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let k = val.models();
    let device = net.var_store().device();
    // About 1024 items per forward, whatever K: bounds the activations' memory.
    let per_chunk = (1024 / (k * batch)).max(1);
    let mut loss = Tensor::zeros([k], (Kind::Double, device));
    let mut correct = Tensor::zeros([k], (Kind::Int64, device));
    // Items of the pass: the pool, or (fresh) whole batches of it.
    let mut items = 0;
    if let Some(w) = walk.as_deref_mut() {
        w.next_pass();
    }
    tch::no_grad(|| {
        for first in (0..val.sequential_batches()).step_by(per_chunk as usize) {
            let b = match walk.as_deref_mut() {
                Some(w) => val.fresh_sequential(first, per_chunk, w),
                None => val.sequential(first, per_chunk),
            };
            let logits = net
                .forward(&b.images.to_kind(precision.compute_kind()), None)
                .to_kind(precision.kind());
            items += b.labels.size()[1];
            loss += item_losses(&logits, &b.labels).sum_dim_intlist(1, false, Kind::Double);
            correct += logits
                .argmax(2, false)
                .eq_tensor(&b.labels)
                .sum_dim_intlist(1, false, Kind::Int64);
        }
    });
    let n = items as f64;
    let loss = Vec::<f64>::try_from(loss / n).context("validation losses")?;
    let acc =
        Vec::<f64>::try_from(correct.to_kind(Kind::Double) / n).context("validation accuracies")?;
    Ok((loss, acc))
}

/// A model's epoch with the lowest validation loss so far, and its weights.
struct Best {
    epoch: usize,
    val_loss: f64,
    weights: Vec<(String, Tensor)>,
}

/// Trains `specs` in lockstep through the network `build` makes from their freshly
/// initialised models, and writes every model's checkpoints, history and JSON.
/// Models whose loss stops being finite get no artifacts; the others are finished.
pub fn train_models<F>(
    settings: &Settings,
    specs: &[ModelSpec],
    path_name: &str,
    build: F,
) -> Result<()>
where
    F: FnOnce(Vec<LoadedModel>, Device) -> Result<Box<dyn Trainee>>,
{
    let start = Instant::now();
    if let Some(t) = settings.threads {
        tch::set_num_threads(t);
    }
    if settings.epochs == 0 || settings.steps == 0 || settings.batch <= 0 {
        bail!("--epochs, --steps and --batch must be positive");
    }
    if settings.sync_every == 0 {
        bail!("--sync-every must be at least 1");
    }
    if !(0.0..=1.0).contains(&settings.null_prob) {
        bail!("--null-prob must be within [0, 1]");
    }
    let device = settings.device.resolve(settings.tf32)?.device;
    let kind = settings.precision.kind();
    let data = load_data(settings, device)?;
    let tile_sizes = if settings.text_tiles {
        TILES_TEXT.to_vec()
    } else {
        TILES_CODE.to_vec()
    };
    let null_config = NullConfig {
        null_prob: settings.null_prob,
        tile_sizes: tile_sizes.clone(),
    };
    let k = specs.len();
    let variants: Vec<Variant> = specs.iter().map(|s| s.variant.clone()).collect();
    let seeds: Vec<i64> = specs.iter().map(ModelSpec::torch_seed).collect();
    let batches = StackBatches::new(&data.train, &variants, &seeds, &null_config, settings.batch)
        .context("training batches")?;
    // A pool smaller than a batch is one short batch; every slot has its own random
    // numbers, so the set is the same as with the full batch size.
    let val_batch = settings.batch.min(data.val_pool.len());
    let val = StackBatches::new(&data.val_pool, &variants, &seeds, &null_config, val_batch)
        .context("validation set")?;

    let models = specs
        .iter()
        .map(|s| {
            tch::manual_seed(s.torch_seed());
            let mut m = LoadedModel::fresh(device);
            if kind == Kind::Double {
                m.vs.double();
            }
            m
        })
        .collect();
    let net = build(models, device)?;
    let total_steps = settings.epochs * settings.steps;
    let mut opt = Adam::new(
        net.var_store().trainable_variables(),
        AdamConfig::paper(settings.lr),
        total_steps,
    )
    .context("cannot build the Adam optimiser")?;
    let mut walk = (settings.validation_nulls == ValidationNulls::Fresh).then(|| val.fresh_walk());

    let names = if k == 1 {
        specs[0].label()
    } else {
        format!("{} models of seed-{:02}..", k, specs[0].seed)
    };
    let bar = ProgressBar::new(total_steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
            .context("progress bar template")?,
    );
    bar.set_prefix(names);
    let say = |line: String| {
        // A hidden bar (output not a terminal, as under make -j or nohup) prints nothing.
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
    };

    let batch = settings.batch;
    let ki = k as i64;
    let mut history: Vec<Vec<EpochRecord>> = vec![Vec::with_capacity(settings.epochs); k];
    let mut best: Vec<Option<Best>> = (0..k).map(|_| None).collect();
    let mut diverged: Vec<Option<String>> = vec![None; k];
    // Time in training steps alone (validation excluded), for ms/step.
    let mut step_seconds = 0.0;
    for epoch in 1..=settings.epochs {
        let epoch_start = Instant::now();
        // Summed on the device and read every --sync-every steps, so the steps in
        // between never wait on the host.
        let mut loss_sum = Tensor::zeros([ki], (Kind::Double, device));
        let mut correct = Tensor::zeros([ki], (Kind::Int64, device));
        let mut shown = 0;
        for step in 1..=settings.steps {
            let global = ((epoch - 1) * settings.steps + step - 1) as u64;
            let keys = batches.step_keys(global);
            let b = batches.train_batch(&keys);
            let dropout = Dropout::draw(&keys, batch);
            let logits = net
                .forward(
                    &b.images.to_kind(settings.precision.compute_kind()),
                    Some(&dropout),
                )
                .to_kind(kind);
            // Each model's mean over its batch, summed over models: parameters are
            // disjoint, so each model gets the gradient of its own loss.
            let losses = item_losses(&logits, &b.labels).mean_dim(1, false, kind);
            opt.backward_step(&losses.sum(kind))?;
            tch::no_grad(|| {
                loss_sum += losses.detach().to_kind(Kind::Double);
                correct += logits
                    .argmax(2, false)
                    .eq_tensor(&b.labels)
                    .sum_dim_intlist(1, false, Kind::Int64);
            });
            if step % settings.sync_every == 0 || step == settings.steps {
                let means =
                    Vec::<f64>::try_from(&loss_sum / step as f64).context("training losses")?;
                for (i, mean) in means.iter().enumerate() {
                    if !mean.is_finite() && diverged[i].is_none() {
                        diverged[i] = Some(format!(
                            "{}: training loss became {mean} at epoch {epoch} step {step}; no checkpoint written",
                            specs[i].label()
                        ));
                    }
                }
                if diverged.iter().all(Option::is_some) {
                    bail!(
                        "{}",
                        diverged
                            .iter()
                            .flatten()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                }
                let acc = correct.sum(Kind::Int64).int64_value(&[]) as f64
                    / (step as i64 * batch * ki) as f64;
                let mean = means.iter().sum::<f64>() / k as f64;
                bar.set_message(format!(
                    "epoch {epoch} loss {mean:.4} acc {:.2}%",
                    100.0 * acc
                ));
                bar.inc((step - shown) as u64);
                shown = step;
            }
        }
        step_seconds += epoch_start.elapsed().as_secs_f64();
        let (val_loss, val_acc) = validate(
            net.as_ref(),
            &val,
            settings.precision,
            val_batch,
            walk.as_mut(),
        )?;
        let train_loss =
            Vec::<f64>::try_from(&loss_sum / settings.steps as f64).context("training losses")?;
        let train_correct = Vec::<i64>::try_from(&correct).context("training accuracies")?;
        let seen = (settings.steps as i64 * batch) as f64;
        let seconds = epoch_start.elapsed().as_secs_f64();
        for (i, spec) in specs.iter().enumerate() {
            if diverged[i].is_some() {
                continue;
            }
            if !val_loss[i].is_finite() {
                diverged[i] = Some(format!(
                    "{}: validation loss became {} at epoch {epoch}; no checkpoint written",
                    spec.label(),
                    val_loss[i]
                ));
                continue;
            }
            let record = EpochRecord {
                epoch,
                train_loss: train_loss[i],
                train_accuracy: train_correct[i] as f64 / seen,
                val_loss: val_loss[i],
                val_accuracy: val_acc[i],
                seconds,
            };
            say(format!(
                "{} epoch {epoch}: train loss {:.4} acc {:.2}%, val loss {:.4} acc {:.2}%",
                spec.label(),
                record.train_loss,
                100.0 * record.train_accuracy,
                record.val_loss,
                100.0 * record.val_accuracy
            ));
            if best[i].as_ref().is_none_or(|b| val_loss[i] < b.val_loss) {
                best[i] = Some(Best {
                    epoch,
                    val_loss: val_loss[i],
                    weights: net.model_tensors(i as i64),
                });
            }
            history[i].push(record);
        }
        if diverged.iter().all(Option::is_some) {
            bail!(
                "{}",
                diverged
                    .iter()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
    bar.finish_and_clear();

    let ms_per_step = 1000.0 * step_seconds / (settings.epochs * settings.steps * k) as f64;
    let mut written = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        if diverged[i].is_some() {
            continue;
        }
        let Best {
            epoch: best_epoch,
            val_loss: best_val_loss,
            weights: best_weights,
        } = best[i].take().context("no epoch was trained")?;
        let set = SetDir::new(&settings.artifacts, spec.seed);
        let variant = &spec.variant;
        fs::create_dir_all(set.models_dir())
            .with_context(|| format!("cannot create {}", set.models_dir().display()))?;
        let save = |path: &Path, tensors: &[(String, Tensor)]| {
            artifacts::write_atomic(path, |tmp| save_model(tensors, tmp))
        };
        save(&set.model_last(variant), &net.model_tensors(i as i64))?;
        save(&set.model(variant), &best_weights)?;
        // Scored as every later tool sees the model: loaded from its checkpoint.
        let kept = LoadedModel::load(&set.model(variant), device)?;
        let (clean_acc, clean_null) = clean_scores(&kept, &data.test);
        write_history(&set.model_history(variant), &history[i])?;
        written.push((i, set, best_epoch, best_val_loss, clean_acc, clean_null));
    }
    // JSONs last, after every checkpoint: make takes a JSON as the sign that its
    // model is complete.
    for (i, set, best_epoch, best_val_loss, clean_acc, clean_null) in written {
        let spec = &specs[i];
        let variant = &spec.variant;
        let config = Config {
            seed: spec.seed,
            variant: variant.clone(),
            settings: settings.clone(),
        };
        let report = ModelReport {
            variant: variant.name(),
            dataset: data.dataset,
            seed: spec.seed,
            torch_seed: spec.torch_seed(),
            config: &config,
            null_types: variant
                .null_types()
                .iter()
                .map(|t| format!("{t:?}").to_lowercase())
                .collect(),
            tile_sizes: tile_sizes.clone(),
            device: device_name(device),
            threads: tch::get_num_threads(),
            versions: Versions {
                nullclass: env!("CARGO_PKG_VERSION"),
                tch: "0.24.0",
            },
            training_path: path_name,
            lockstep_models: k,
            history: &history[i],
            best_epoch,
            best_val_loss,
            clean_test_accuracy: clean_acc,
            clean_null_rate: clean_null,
            wall_seconds: start.elapsed().as_secs_f64(),
            ms_per_step,
            checkpoint_sha256: artifacts::sha256_file(&set.model(variant))?,
        };
        artifacts::write_json(&set.model_json(variant), &report)?;
        eprintln!(
            "{}: clean accuracy {:.2}%, clean null rate {:.2}%, best epoch {best_epoch}, {:.0} s",
            spec.label(),
            100.0 * clean_acc,
            100.0 * clean_null,
            report.wall_seconds
        );
    }
    let failed: Vec<String> = diverged.into_iter().flatten().collect();
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    Ok(())
}

fn write_history(path: &Path, history: &[EpochRecord]) -> Result<()> {
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
