//! evaluator: scores a set's 8 models on the clean test set, on the FGSM images at
//! their epsilon thresholds, and on an epsilon sweep (the report's sections 5.1-5.3).
//!
//! `evaluator robust` ([`robust`]) scores the attacks beyond the report and a
//! confidence-rejection baseline.
//!
//! A library as well as a binary so that tests can call [`run`] on tiny sets.

pub mod corners;
pub mod figure8;
pub mod inputs;
pub mod robust;
pub mod scores;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use nullclass::artifacts::{self, SetDir};
use nullclass::device::{DeviceChoice, Tf32};
use nullclass::fgsm;
use nullclass::npy;
use nullclass::nulls::Variant;
use nullclass::session::{self, Session};
use serde::Serialize;
use tch::{Kind, Tensor};

use scores::{Outcomes, PendingOutcomes};

/// The file written last, after every other output: a make target for the folder.
pub const META_FILE: &str = "meta.json";

#[derive(Parser, Debug, Clone, Serialize)]
/// Scores the 8 models of a set (base, u, s, m, us, um, sm, usm) and writes
/// SET/eval/: clean.csv (accuracy and null rate on the 10,000 test images),
/// threshold.csv (correct / misclassified / unclassified on the FGSM threshold
/// images), sweep.csv (the same over an epsilon grid), threshold_predictions.npy
/// (float32 [8,N,2]: predicted class, 10 = null, and its probability),
/// base_x1.5_predictions.npy (the same [N,2] for the baseline on the images at 1.5 x
/// the threshold, the report's Figure 8), and meta.json last.
///
/// Sweep images are rebuilt as clip(source + eps * sign, 0, 1), the arithmetic
/// adversary-gen uses.
pub struct Config {
    /// Artifacts root: reads data/, seed-NN/models/ and seed-NN/adversarial/fgsm/.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Set seed (selects seed-NN).
    #[arg(long, value_parser = nullclass::flag_ranges::int::<u64>(0..=nullclass::flag_ranges::MAX_SEED))]
    pub seed: u64,
    /// auto, cpu, cuda or cuda:N (auto takes a GPU when one is usable).
    #[arg(long, default_value = "auto")]
    #[serde(serialize_with = "nullclass::artifacts::serialize_display")]
    pub device: DeviceChoice,
    /// TF32 in cuBLAS and cuDNN on a GPU: on or off. Off by default: the threshold
    /// images sit within 1e-3 of the baseline's decision boundary, closer than TF32's
    /// rounding moves the logits, so scoring them with TF32 lets some flip back.
    #[arg(long, default_value = "off")]
    pub tf32: Tf32,
    /// Images per forward pass (bounds memory only).
    #[arg(long, default_value_t = 1000, value_parser = nullclass::flag_ranges::int::<i64>(1..))]
    pub chunk: i64,
    /// Sweep epsilon step: the grid is 0, step, 2 step, ..., --eps-max.
    #[arg(long, default_value_t = 0.02, value_parser = nullclass::flag_ranges::pixel_eps)]
    pub eps_step: f64,
    /// Sweep's largest epsilon.
    #[arg(long, default_value_t = 1.0, value_parser = nullclass::flag_ranges::pixel_eps_or_zero)]
    pub eps_max: f64,
    /// Score the sweep images adversary-gen saved with --save-sweep (their own grid)
    /// instead of rebuilding them.
    #[arg(long)]
    pub use_saved_sweep: bool,
    /// Share of the threshold images the baseline may classify correctly before the
    /// run fails. By construction it gets none right (any is reported); one can flip
    /// back only through floating-point differences, e.g. when the attack and the
    /// scoring ran on different devices or GPU kernels (cuDNN convolutions default to
    /// TF32). More than this share means the adversarial set does not fit the model.
    #[arg(long, default_value_t = 0.01, value_parser = nullclass::flag_ranges::share)]
    pub baseline_tolerance: f64,
    /// Torch intra-op threads (torch's default when absent).
    #[arg(long, value_parser = nullclass::flag_ranges::int::<i32>(1..=nullclass::flag_ranges::MAX_THREADS))]
    pub threads: Option<i32>,
    /// Score only these models, comma-separated, base first (default: all 8). For a
    /// set not yet complete; the report skips a set whose scores lack a model.
    #[arg(long, value_delimiter = ',')]
    #[serde(serialize_with = "serialize_variants")]
    pub variants: Option<Vec<Variant>>,
}

fn serialize_variants<S: serde::Serializer>(
    v: &Option<Vec<Variant>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let names: Option<Vec<String>> = v.as_ref().map(|v| v.iter().map(Variant::name).collect());
    serde::Serialize::serialize(&names, s)
}

impl Config {
    /// The models to score: base first, each once.
    fn variants(&self) -> Result<Vec<Variant>> {
        let Some(asked) = &self.variants else {
            return Ok(Variant::all());
        };
        if asked.first().map(Variant::is_baseline) != Some(true) {
            bail!("--variants must start with base: the threshold images are the baseline's");
        }
        for (i, v) in asked.iter().enumerate() {
            if asked[..i].contains(v) {
                bail!("--variants names {v} twice");
            }
        }
        Ok(asked.clone())
    }
}

#[derive(Debug, Serialize)]
struct Meta<'a> {
    tool: &'static str,
    version: &'static str,
    dataset: nullclass::dataset::DataSet,
    set_seed: u64,
    config: &'a Config,
    device: String,
    models: Vec<inputs::ModelEntry>,
    fgsm_dir: String,
    fgsm_meta_sha256: String,
    n: i64,
    sweep_eps: &'a [f32],
    sweep_source: &'static str,
    baseline_threshold: Outcomes,
    clean_seconds: f64,
    threshold_seconds: f64,
    sweep_seconds: f64,
    wall_seconds: f64,
}

/// Everything a run computed, for the caller's log and for tests.
#[derive(Debug)]
pub struct Summary {
    pub out_dir: PathBuf,
    pub clean: Vec<(String, Outcomes)>,
    pub threshold: Vec<(String, Outcomes)>,
    pub wall_seconds: f64,
}

pub(crate) fn write_lines(path: &Path, header: &str, rows: &[String]) -> Result<()> {
    let mut text = String::from(header);
    text.push('\n');
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    artifacts::write_atomic(path, |tmp| {
        fs::write(tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))
    })
}

/// One set, in a process of its own.
pub fn run(config: &Config) -> Result<Summary> {
    run_in(&open(config)?, config)
}

/// Sets `config.seed` to `config.seed + sets - 1` in one process: the device and the
/// test set are set up once; each set's files are those its own [`run`] would write.
/// `done` hears of each set as it is written.
pub fn run_sets(config: &Config, sets: u64, mut done: impl FnMut(&Summary)) -> Result<()> {
    session::run_sets(
        config.seed,
        sets,
        || open(config),
        |session, seed| {
            let one = Config {
                seed,
                ..config.clone()
            };
            done(&run_in(session, &one)?);
            Ok(())
        },
    )
}

/// `evaluator robust` for sets `config.seed` to `config.seed + sets - 1` in one
/// process, as [`run_sets`] does for the FGSM scores.
pub fn robust_sets(config: &robust::Config, sets: u64, mut done: impl FnMut(&Path)) -> Result<()> {
    let open = || {
        Session::open(
            &config.artifacts,
            config.device,
            config.tf32,
            config.threads,
        )
    };
    session::run_sets(config.seed, sets, open, |session, seed| {
        let one = robust::Config {
            seed,
            ..config.clone()
        };
        done(&robust::run_in(session, &one)?);
        Ok(())
    })
}

fn open(config: &Config) -> Result<Session> {
    Session::open(
        &config.artifacts,
        config.device,
        config.tf32,
        config.threads,
    )
}

/// One set on an open session. Counts stay on the device until the set's end.
pub fn run_in(session: &Session, config: &Config) -> Result<Summary> {
    let started = Instant::now();
    if config.chunk < 1 {
        bail!("--chunk must be at least 1");
    }
    if !(0.0..=1.0).contains(&config.baseline_tolerance) {
        bail!("--baseline-tolerance is a share, from 0 to 1");
    }
    let grid = if config.use_saved_sweep {
        None
    } else {
        Some(
            fgsm::eps_grid(config.eps_step, config.eps_max)
                .context("--eps-step and --eps-max do not fit together")?,
        )
    };
    let device = session.device.device;
    let set = SetDir::new(&config.artifacts, config.seed);
    let models = nullclass::model::load_models(&set, &config.variants()?, session.dataset, device)?;
    let test = &session.test;
    let adv = inputs::load_fgsm(&set.fgsm_dir(), session.dataset, test, &models[0], device)?;
    let n = adv.len();
    let (sweep_eps, saved_sweep) = match grid {
        Some(g) => (g, None),
        None => {
            let (e, images) = inputs::load_saved_sweep(&adv.dir, n)?;
            (e, Some(images.to_device(device)))
        }
    };

    // Rows of `pending`: clean counts per model, then threshold counts per model, then
    // the sweep's (model, eps) rows in the order of `sweep_rows`.
    let mut pending = PendingOutcomes::default();
    let t0 = Instant::now();
    for m in &models {
        let pred = m.model.predict(&test.images, config.chunk);
        pending.push(test.len(), Outcomes::on_device(&pred, &test.labels));
    }
    let clean_seconds = t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    let mut predictions = Vec::new();
    for m in &models {
        let (class, prob) =
            scores::predict_with_prob(&m.model, &adv.adv, config.chunk, Kind::Float);
        pending.push(n, Outcomes::on_device(&class, &adv.labels));
        predictions.push(Tensor::stack(&[class.to_kind(Kind::Float), prob], 1));
    }
    let predictions = Tensor::stack(&predictions, 0);
    let figure8 = figure8::base_predictions(&adv.dir, n, &models[0], config.chunk, device)?;
    let threshold_seconds = t0.elapsed().as_secs_f64();

    let t0 = Instant::now();
    // Several epsilons share a forward pass when N is small, so that tiny sets still
    // run at full batches.
    let per_group = (config.chunk / n).max(1) as usize;
    let mut sweep_rows: Vec<(usize, f32)> = Vec::new();
    for (g, group) in sweep_eps.chunks(per_group).enumerate() {
        let first = (g * per_group) as i64;
        let images = match &saved_sweep {
            Some(s) => s.narrow(0, first, group.len() as i64).reshape([-1, 28, 28]),
            None => {
                let parts: Vec<Tensor> = group
                    .iter()
                    .map(|&eps| fgsm::perturb_all(&adv.sources, &adv.signs, eps))
                    .collect();
                Tensor::cat(&parts, 0)
            }
        };
        for (i, m) in models.iter().enumerate() {
            let pred = m
                .model
                .predict(&images, config.chunk)
                .view([group.len() as i64, n]);
            pending.push(n, Outcomes::per_row_on_device(&pred, &adv.labels));
            sweep_rows.extend(group.iter().map(|&eps| (i, eps)));
        }
    }
    // The one host read: on a GPU it waits for all the work queued above, so
    // sweep_seconds also holds what of the clean and threshold passes still ran.
    let counts = pending.read()?;
    let sweep_seconds = t0.elapsed().as_secs_f64();
    let (clean, rest) = counts.split_at(models.len());
    let (threshold, swept) = rest.split_at(models.len());
    let named = |c: &[Outcomes]| -> Vec<(String, Outcomes)> {
        models
            .iter()
            .map(|m| m.name.clone())
            .zip(c.iter().copied())
            .collect()
    };
    let (clean, threshold) = (named(clean), named(threshold));
    let mut sweep: Vec<Vec<String>> = vec![Vec::new(); models.len()];
    for (&(i, eps), c) in sweep_rows.iter().zip(swept) {
        sweep[i].push(scores::sweep_row(&models[i].name, eps, c));
    }

    let base = threshold[0].1;
    if base.correct as f64 > config.baseline_tolerance * n as f64 {
        bail!(
            "the baseline {} classifies {} of the {n} threshold images in {} correctly, though the search \
             made each one flip it (allowed: a share of {}); the adversarial set does not fit this model",
            models[0].file.display(),
            base.correct,
            adv.dir.display(),
            config.baseline_tolerance
        );
    }
    if base.correct > 0 {
        eprintln!(
            "evaluator: warning: the baseline classifies {} of the {n} threshold images correctly \
             (floating-point differences at the decision boundary; see --baseline-tolerance)",
            base.correct
        );
    }

    let out = set.eval_dir();
    fs::create_dir_all(&out).with_context(|| format!("cannot create folder {}", out.display()))?;
    let meta_path = out.join(META_FILE);
    // Gone before the other files change, so a run that fails from here on leaves no
    // meta.json beside a mix of old and new files.
    if meta_path.exists() {
        fs::remove_file(&meta_path)
            .with_context(|| format!("cannot remove the old {}", meta_path.display()))?;
    }
    let clean_rows: Vec<String> = clean.iter().map(|(m, c)| scores::clean_row(m, c)).collect();
    write_lines(&out.join("clean.csv"), scores::CLEAN_HEADER, &clean_rows)?;
    let threshold_rows: Vec<String> = threshold
        .iter()
        .map(|(m, c)| scores::threshold_row(m, c))
        .collect();
    write_lines(
        &out.join("threshold.csv"),
        scores::THRESHOLD_HEADER,
        &threshold_rows,
    )?;
    write_lines(
        &out.join("sweep.csv"),
        scores::SWEEP_HEADER,
        &sweep.concat(),
    )?;
    npy::write(&out.join("threshold_predictions.npy"), &predictions)?;
    npy::write(&out.join(figure8::FILE), &figure8)?;

    let wall_seconds = started.elapsed().as_secs_f64();
    let meta = Meta {
        tool: "evaluator",
        version: env!("CARGO_PKG_VERSION"),
        dataset: session.dataset,
        set_seed: config.seed,
        config,
        device: session.device.name(),
        models: models.iter().map(|m| m.entry()).collect(),
        fgsm_dir: adv.dir.display().to_string(),
        fgsm_meta_sha256: adv.meta_sha256.clone(),
        n,
        sweep_eps: &sweep_eps,
        sweep_source: if saved_sweep.is_some() {
            "sweep_images.npy"
        } else {
            "rebuilt"
        },
        baseline_threshold: base,
        clean_seconds,
        threshold_seconds,
        sweep_seconds,
        wall_seconds,
    };
    artifacts::write_json(&meta_path, &meta)?;
    Ok(Summary {
        out_dir: out,
        clean,
        threshold,
        wall_seconds,
    })
}
