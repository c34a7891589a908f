//! `trainer ramp`: the toy ramp model of the report's section 2, trained without
//! (base) or with (null) uniform-noise nulls, then probed over a grid of the input
//! cube. Writes `ramp/<variant>.safetensors` (the kept checkpoint),
//! `<variant>.state.safetensors` (the last epoch's weights with the optimiser's
//! state), `<variant>.grid.npy` and, last, `<variant>.json`; the base run also
//! writes what the report's Figures 1 and 2 show (`optimal.grid.npy`, and training
//! samples in its JSON), so that the report computes nothing.
//!
//! By default it follows the published code (`train_ramp_model.py`): the null
//! model continues the trained baseline (same weights and Adam state) for 30
//! epochs with uniform nulls, each model keeps the epoch of lowest training loss,
//! and the probe grid is `np.arange(0, 1, 1/48)`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use nullclass::artifacts;
use nullclass::device::{device_name, DeviceChoice, Tf32};
use nullclass::npy;
use nullclass::ramp::{self, Adam, RampModel, GRID};
use serde::Serialize;
use tch::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RampVariant {
    /// Ramps only: the conventional model of Figure 3.
    Base,
    /// Ramps with uniform-noise nulls: the model of Figure 4.
    Null,
}

impl RampVariant {
    pub fn name(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Null => "null",
        }
    }

    /// The report's epoch counts: 20 for the baseline, 30 for the null model.
    fn default_epochs(self) -> usize {
        match self {
            Self::Base => 20,
            Self::Null => 30,
        }
    }

    fn index(self) -> i64 {
        match self {
            Self::Base => 0,
            Self::Null => 1,
        }
    }
}

/// Where the null model's training starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    /// The baseline after its last epoch, weights and Adam state
    /// (ramp/base.state.safetensors): the published code.
    Base,
    /// Freshly initialised weights and a fresh optimiser.
    Fresh,
}

/// Which epoch's weights are kept (and probed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Keep {
    /// The epoch with the lowest training loss (Keras' ModelCheckpoint on `loss`,
    /// as published).
    TrainLoss,
    /// The last epoch.
    Last,
}

#[derive(Args, Debug, Clone, Serialize)]
pub struct Config {
    /// Artifacts root: writes ramp/<variant>.{safetensors,grid.npy,json}.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    #[arg(long, value_enum)]
    pub variant: RampVariant,
    /// Epochs (default: 20 for base, 30 for null, as in the report).
    #[arg(long, value_parser = nullclass::flag_ranges::int::<usize>(1..=100_000))]
    pub epochs: Option<usize>,
    #[arg(long, default_value_t = 1000, value_parser = nullclass::flag_ranges::int::<usize>(1..=100_000_000))]
    pub steps: usize,
    #[arg(long, default_value_t = 32, value_parser = nullclass::flag_ranges::int::<i64>(1..=nullclass::flag_ranges::MAX_SAMPLES))]
    pub batch: i64,
    /// Adam learning rate (betas 0.9/0.999, eps 1e-8).
    #[arg(long, default_value_t = 1e-3, value_parser = nullclass::flag_ranges::positive)]
    pub lr: f64,
    /// Probability that a batch slot is a uniform-noise null (null variant only).
    #[arg(long, default_value_t = 0.5, value_parser = nullclass::flag_ranges::share)]
    pub null_prob: f64,
    /// Null model only: continue the trained baseline (published) or start fresh.
    #[arg(long, value_enum, default_value_t = Start::Base)]
    pub start: Start,
    /// Which epoch to keep: lowest training loss (published) or the last.
    #[arg(long, value_enum, default_value_t = Keep::TrainLoss)]
    pub keep: Keep,
    /// Probe grid points per axis, at spacing 1/grid from 0 (published: 48).
    #[arg(long, default_value_t = GRID, value_parser = nullclass::flag_ranges::int::<i64>(1..=256))]
    pub grid: i64,
    /// Torch seed base; the variant's seed is seed * 100 + (0 base, 1 null).
    #[arg(long, default_value_t = 0, value_parser = nullclass::flag_ranges::int::<u64>(0..=nullclass::flag_ranges::MAX_SEED))]
    pub seed: u64,
    /// Fresh ramp samples scored after training.
    #[arg(long, default_value_t = 100_000, value_parser = nullclass::flag_ranges::int::<i64>(1..=nullclass::flag_ranges::MAX_SAMPLES))]
    pub eval_samples: i64,
    /// auto, cpu, cuda or cuda:N. The model is tiny: the CPU is usually as fast.
    #[arg(long, default_value = "auto")]
    #[serde(serialize_with = "nullclass::artifacts::serialize_display")]
    pub device: DeviceChoice,
    /// TF32 in cuBLAS and cuDNN on a GPU: on or off (on by default, as for training).
    #[arg(long, default_value = "on")]
    pub tf32: Tf32,
    /// Torch intra-op threads. One by default: the model is so small that more
    /// threads only add synchronisation (2 threads ran 25x slower on a busy 2-core
    /// machine).
    #[arg(long, default_value_t = 1, value_parser = nullclass::flag_ranges::int::<i32>(1..=nullclass::flag_ranges::MAX_THREADS))]
    pub threads: i32,
}

/// Salts that give the evaluation sets their own streams, apart from training's.
const VALIDATION_SALT: i64 = 7_777_777;
const EVAL_SALT: i64 = 8_888_888;
/// Size of the fixed per-epoch check sets (ramps and uniform noise each).
const VALIDATION_SAMPLES: i64 = 2000;

pub fn ramp_dir(root: &Path) -> PathBuf {
    root.join("ramp")
}

#[derive(Debug, Serialize)]
struct EpochRecord {
    epoch: usize,
    train_loss: f64,
    train_accuracy: f64,
    /// On a fixed set of ramps.
    val_ramp_accuracy: f64,
    /// Share of a fixed set of uniform-noise images put in the null class.
    val_noise_null_rate: f64,
    /// Share of the probe grid given to the two ramp classes together.
    cube_ramp_share: f64,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct Shares {
    down: f64,
    up: f64,
    null: f64,
}

impl From<[f64; 3]> for Shares {
    fn from(s: [f64; 3]) -> Self {
        Self {
            down: s[0],
            up: s[1],
            null: s[2],
        }
    }
}

/// A training sample of Figure 1: three pixels and the label (0 down, 1 up).
#[derive(Debug, Serialize)]
struct Sample {
    pixels: [f32; 3],
    label: i64,
}

/// Where the null model started, when it continued the baseline.
#[derive(Debug, Serialize)]
struct StartState {
    file: String,
    sha256: String,
    /// Adam steps the baseline had taken.
    adam_steps: i64,
}

#[derive(Debug, Serialize)]
struct RampReport<'a> {
    variant: &'static str,
    seed: u64,
    torch_seed: i64,
    epochs: usize,
    null_prob: f64,
    /// `base` (published: the null model continues the baseline) or `fresh`.
    start: Start,
    start_state: Option<StartState>,
    /// `train-loss` (published) or `last`.
    keep: Keep,
    /// The kept epoch (1-based, of this run's epochs).
    kept_epoch: usize,
    /// Adam as Keras computes it (eps added to the uncorrected sqrt(v)).
    optimizer: &'static str,
    config: &'a Config,
    device: String,
    threads: i32,
    history: &'a [EpochRecord],
    /// Fresh ramp samples classified as their own class, by the kept model.
    ramp_accuracy: f64,
    eval_samples: i64,
    /// Fresh uniform-noise images put in the null class.
    noise_null_rate: f64,
    grid: i64,
    grid_file: String,
    /// Share of the probe grid given to each class.
    cube_shares: Shares,
    /// Share given to the two ramp classes together (the decision space's size).
    cube_ramp_share: f64,
    /// The same for the ideal model of the report's Figure 2.
    optimal_cube_shares: Shares,
    /// Base run only: the ideal model's grid (Figure 2) and training samples
    /// (Figure 1).
    optimal_grid_file: Option<String>,
    samples: Vec<Sample>,
    train_seconds: f64,
    ms_per_step: f64,
    wall_seconds: f64,
    checkpoint_sha256: String,
}

/// The base run's state file: the null model's default start.
pub fn state_file(root: &Path, variant: RampVariant) -> PathBuf {
    ramp_dir(root).join(format!("{}.state.safetensors", variant.name()))
}

pub const OPTIMAL_GRID_FILE: &str = "optimal.grid.npy";
/// Training samples shown in Figure 1.
const SAMPLES: i64 = 12;
const SAMPLES_SALT: i64 = 9_999_999;

/// Model weights by name, copied (a snapshot that later steps do not change).
fn snapshot(model: &RampModel) -> std::collections::HashMap<String, Tensor> {
    model
        .vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect()
}

pub fn run(config: &Config) -> Result<()> {
    let start = Instant::now();
    if config.threads <= 0 {
        bail!("--threads must be positive");
    }
    tch::set_num_threads(config.threads);
    let variant = config.variant;
    let epochs = config.epochs.unwrap_or(variant.default_epochs());
    if epochs == 0 || config.steps == 0 || config.batch <= 0 || config.eval_samples <= 0 {
        bail!("--epochs, --steps, --batch and --eval-samples must be positive");
    }
    if !(1..=256).contains(&config.grid) {
        bail!("--grid must be within 1 and 256");
    }
    if !(0.0..=1.0).contains(&config.null_prob) {
        bail!("--null-prob must be within [0, 1]");
    }
    let null_prob = if variant == RampVariant::Null {
        config.null_prob
    } else {
        0.0
    };
    // Only the null model can continue another: the baseline always starts fresh.
    let from_base = variant == RampVariant::Null && config.start == Start::Base;
    let device = config.device.resolve(config.tf32)?.device;
    let torch_seed = (config.seed * 100) as i64 + variant.index();

    tch::manual_seed(torch_seed.wrapping_add(VALIDATION_SALT));
    let val_ramps = ramp::ramps(VALIDATION_SAMPLES, device);
    let val_noise = Tensor::rand(
        [VALIDATION_SAMPLES, ramp::PIXELS],
        (tch::Kind::Float, device),
    );

    tch::manual_seed(torch_seed);
    let (model, mut opt, start_state) = if from_base {
        let file = state_file(&config.artifacts, RampVariant::Base);
        let (model, opt) = Adam::load_with_weights(&file, config.lr, device).context(
            "the null model continues the baseline (--start base): run `trainer ramp --variant base` first, or pass --start fresh",
        )?;
        let state = StartState {
            sha256: artifacts::sha256_file(&file)?,
            file: file.display().to_string(),
            adam_steps: opt.step,
        };
        (model, opt, Some(state))
    } else {
        let model = RampModel::fresh(device);
        let opt = Adam::new(&model, config.lr);
        (model, opt, None)
    };
    let mut history = Vec::with_capacity(epochs);
    let mut kept: Option<(usize, f64, std::collections::HashMap<String, Tensor>)> = None;
    let train_start = Instant::now();
    for epoch in 1..=epochs {
        let epoch_start = Instant::now();
        let stats = ramp::train_steps(&model, &mut opt, config.steps, config.batch, null_prob)
            .map_err(|e| e.context(format!("ramp/{}: epoch {epoch}", variant.name())))?;
        let better = match (&kept, config.keep) {
            (None, _) | (_, Keep::Last) => true,
            (Some((_, best, _)), Keep::TrainLoss) => stats.loss < *best,
        };
        if better {
            kept = Some((epoch, stats.loss, snapshot(&model)));
        }
        let rate = |pred: Tensor, want: &Tensor| {
            pred.eq_tensor(want).sum(tch::Kind::Int64).int64_value(&[]) as f64
                / VALIDATION_SAMPLES as f64
        };
        let val_ramp_accuracy = rate(model.predict(&val_ramps.images, 65_536), &val_ramps.labels);
        let null_label = Tensor::from(ramp::NULL).to_device(device);
        let val_noise_null_rate = rate(model.predict(&val_noise, 65_536), &null_label);
        let shares = ramp::class_shares(&model.probe_grid(config.grid));
        let record = EpochRecord {
            epoch,
            train_loss: stats.loss,
            train_accuracy: stats.accuracy,
            val_ramp_accuracy,
            val_noise_null_rate,
            cube_ramp_share: shares[0] + shares[1],
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        eprintln!(
            "ramp/{} epoch {epoch}: loss {:.4} acc {:.2}%, ramps {:.2}%, noise->null {:.2}%, cube to ramps {:.2}%",
            variant.name(),
            record.train_loss,
            100.0 * record.train_accuracy,
            100.0 * val_ramp_accuracy,
            100.0 * val_noise_null_rate,
            100.0 * record.cube_ramp_share
        );
        history.push(record);
    }
    let train_seconds = train_start.elapsed().as_secs_f64();

    let dir = ramp_dir(&config.artifacts);
    // The last epoch's weights and optimiser, what a continuing run starts from.
    opt.save_with_weights(&state_file(&config.artifacts, variant))?;
    let (kept_epoch, _, weights) = kept.context("no epoch was trained")?;
    model.set_parameters(&weights)?;
    let checkpoint = dir.join(format!("{}.safetensors", variant.name()));
    artifacts::write_atomic(&checkpoint, |tmp| {
        model
            .vs
            .save(tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))
    })?;
    let grid = model.probe_grid(config.grid);
    let grid_file = format!("{}.grid.npy", variant.name());
    npy::write(&dir.join(&grid_file), &grid)?;
    let shares = ramp::class_shares(&grid);
    let optimal = ramp::optimal_grid(config.grid);
    let mut samples = Vec::new();
    let optimal_grid_file = if variant == RampVariant::Base {
        npy::write(&dir.join(OPTIMAL_GRID_FILE), &optimal)?;
        tch::manual_seed(torch_seed.wrapping_add(SAMPLES_SALT));
        let b = ramp::ramps(SAMPLES, tch::Device::Cpu);
        let px = Vec::<f32>::try_from(b.images.flatten(0, -1)).context("sample pixels")?;
        let labels = Vec::<i64>::try_from(&b.labels).context("sample labels")?;
        samples = px
            .chunks(3)
            .zip(labels)
            .map(|(p, label)| Sample {
                pixels: [p[0], p[1], p[2]],
                label,
            })
            .collect();
        Some(OPTIMAL_GRID_FILE.to_string())
    } else {
        None
    };

    tch::manual_seed(torch_seed.wrapping_add(EVAL_SALT));
    let ramp_accuracy = model.ramp_accuracy(config.eval_samples);
    let noise_null_rate = model.null_rate(config.eval_samples);
    let report = RampReport {
        variant: variant.name(),
        seed: config.seed,
        torch_seed,
        epochs,
        null_prob,
        start: if from_base { Start::Base } else { Start::Fresh },
        start_state,
        keep: config.keep,
        kept_epoch,
        optimizer: "adam-keras",
        config,
        device: device_name(device),
        threads: tch::get_num_threads(),
        history: &history,
        ramp_accuracy,
        eval_samples: config.eval_samples,
        noise_null_rate,
        grid: config.grid,
        grid_file,
        cube_shares: shares.into(),
        cube_ramp_share: shares[0] + shares[1],
        optimal_cube_shares: ramp::class_shares(&optimal).into(),
        optimal_grid_file,
        samples,
        train_seconds,
        ms_per_step: 1000.0 * train_seconds / (epochs * config.steps) as f64,
        wall_seconds: start.elapsed().as_secs_f64(),
        checkpoint_sha256: artifacts::sha256_file(&checkpoint)?,
    };
    // Written last: make takes the JSON as the sign that the model is complete.
    artifacts::write_json(&dir.join(format!("{}.json", variant.name())), &report)?;
    eprintln!(
        "ramp/{}: kept epoch {kept_epoch}; fresh ramps {:.2}% correct; cube down {:.2}%, up {:.2}%, null {:.2}%; trained in {:.0} s",
        variant.name(),
        100.0 * ramp_accuracy,
        100.0 * shares[0],
        100.0 * shares[1],
        100.0 * shares[2],
        train_seconds
    );
    Ok(())
}
