//! adversary-gen: FGSM adversarial images at each image's epsilon threshold, from one
//! set's baseline model (the report's section 5.2, method-notes.md "FGSM with an
//! epsilon threshold").
//!
//! `adversary-gen robust` ([`robust`]) runs the attacks beyond the report: PGD and
//! white-box attacks on every model with losses that count the null class as failure.
//!
//! A library as well as a binary so that tests can drive [`acquire`] directly.

pub mod acquire;
pub mod apgd;
pub mod losses;
pub mod output;
pub mod pgd;
pub mod robust;
pub mod square;
pub mod synthetic;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use nullclass::artifacts::{self, SetDir};
use nullclass::dataset::TEST_COUNT;
use nullclass::device::{DeviceChoice, Tf32};
use nullclass::fgsm::{self, SearchConfig};
use nullclass::model::LoadedModel;
use nullclass::nulls::Variant;
use nullclass::session::{self, Session};
use serde::Serialize;
use tch::{Kind, Tensor};

/// The file written last (inside the folder that replaces the old one at once): a
/// make target for the whole folder.
pub const META_FILE: &str = "meta.json";

/// How far beyond the threshold the report's Figure 8 images lie.
pub const FIGURE8_SCALE: f64 = 1.5;

#[derive(Parser, Debug, Clone, Serialize)]
/// Finds each test image's FGSM epsilon threshold against a set's baseline model
/// and writes SET/adversarial/fgsm/ (sources, labels, test indices, signed gradients,
/// thresholds, adversarial images at 1x and 1.5x the threshold; meta.json last).
///
/// The test set is walked in order; images the baseline misclassifies are skipped and
/// images no epsilon up to --max-eps flips are discarded, until --n are acquired.
pub struct Config {
    /// Artifacts root: reads data/<dataset>.safetensors and seed-NN/models/base.safetensors.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Set seed (selects seed-NN; the attack itself is deterministic).
    #[arg(long, value_parser = nullclass::flag_ranges::int::<u64>(0..=nullclass::flag_ranges::MAX_SEED))]
    pub seed: u64,
    /// Images to acquire.
    #[arg(long, default_value_t = 1000, value_parser = nullclass::flag_ranges::int::<i64>(1..=nullclass::dataset::TEST_COUNT))]
    pub n: i64,
    /// auto, cpu, cuda or cuda:N (auto takes a GPU when one is usable).
    #[arg(long, default_value = "auto")]
    #[serde(serialize_with = "nullclass::artifacts::serialize_display")]
    pub device: DeviceChoice,
    /// TF32 in cuBLAS and cuDNN on a GPU: on or off. Off by default: the threshold
    /// images sit within --tolerance (1e-3) of the baseline's decision boundary, and
    /// TF32's 10-bit mantissa moves logits by more than that, so images made with it
    /// could flip back when scored.
    #[arg(long, default_value = "off")]
    pub tf32: Tf32,
    /// Source images whose searches run in lockstep.
    #[arg(long, default_value_t = 500, value_parser = nullclass::flag_ranges::int::<i64>(1..))]
    pub batch: i64,
    /// Images per forward pass (bounds memory only).
    #[arg(long, default_value_t = 1000, value_parser = nullclass::flag_ranges::int::<i64>(1..))]
    pub chunk: i64,
    /// Smallest non-zero epsilon of the first grid.
    #[arg(long, default_value_t = 1e-3, value_parser = nullclass::flag_ranges::pixel_eps)]
    pub min_eps: f64,
    /// Largest epsilon tried; images that do not flip by then are discarded.
    #[arg(long, default_value_t = 1.0, value_parser = nullclass::flag_ranges::pixel_eps)]
    pub max_eps: f64,
    /// Points per search grid (0 and 9 log-spaced values first, then 10 log-spaced
    /// values between the bracket's ends).
    #[arg(long, default_value_t = 10, value_parser = nullclass::flag_ranges::int::<i64>(3..=1000))]
    pub points: i64,
    /// The search stops once the flip is bracketed this tightly.
    #[arg(long, default_value_t = 1e-3, value_parser = nullclass::flag_ranges::search_tolerance)]
    pub tolerance: f64,
    /// Also write the sweep's images (sweep_images.npy, float32 [E,N,28,28], and
    /// sweep_eps.npy); the evaluator otherwise rebuilds them with the same arithmetic.
    #[arg(long)]
    pub save_sweep: bool,
    /// Sweep epsilon step (with --save-sweep).
    #[arg(long, default_value_t = 0.02, value_parser = nullclass::flag_ranges::pixel_eps)]
    pub eps_step: f64,
    /// Sweep's largest epsilon (with --save-sweep).
    #[arg(long, default_value_t = 1.0, value_parser = nullclass::flag_ranges::pixel_eps_or_zero)]
    pub eps_max: f64,
    /// Torch intra-op threads (torch's default when absent).
    #[arg(long, value_parser = nullclass::flag_ranges::int::<i32>(1..=nullclass::flag_ranges::MAX_THREADS))]
    pub threads: Option<i32>,
}

impl Config {
    pub fn search(&self) -> SearchConfig {
        SearchConfig {
            min_eps: self.min_eps,
            max_eps: self.max_eps,
            points: self.points,
            tolerance: self.tolerance,
            chunk: self.chunk,
            ..SearchConfig::default()
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ThresholdSummary {
    pub min: f64,
    pub median: f64,
    pub mean: f64,
    pub max: f64,
    pub share_below_0_4: f64,
}

impl ThresholdSummary {
    pub fn of(threshold: &Tensor) -> Result<Self> {
        let mut v: Vec<f32> = Vec::try_from(&threshold.to_device(tch::Device::Cpu))?;
        v.sort_by(f32::total_cmp);
        let n = v.len();
        if n == 0 {
            bail!("no thresholds to summarise");
        }
        let at = |i: usize| f64::from(v[i]);
        let median = if n % 2 == 1 {
            at(n / 2)
        } else {
            (at(n / 2 - 1) + at(n / 2)) / 2.0
        };
        Ok(Self {
            min: at(0),
            median,
            mean: v.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64,
            max: at(n - 1),
            share_below_0_4: v.iter().filter(|&&x| x < 0.4).count() as f64 / n as f64,
        })
    }
}

#[derive(Debug, Serialize)]
struct Meta<'a> {
    tool: &'static str,
    version: &'static str,
    dataset: nullclass::dataset::DataSet,
    set_seed: u64,
    config: &'a Config,
    search: SearchConfig,
    device: String,
    model_file: String,
    model_sha256: String,
    data_file: String,
    counts: acquire::WalkTally,
    last_test_index: i64,
    threshold: ThresholdSummary,
    figure8_scale: f64,
    max_refinement_rounds: usize,
    forwards: i64,
    files: &'a [output::FileEntry],
    wall_seconds: f64,
}

/// What a run produced, for the caller's log.
#[derive(Debug)]
pub struct Summary {
    pub counts: acquire::WalkTally,
    pub threshold: ThresholdSummary,
    pub out_dir: PathBuf,
    pub wall_seconds: f64,
}

/// One set, in a process of its own.
pub fn run(config: &Config) -> Result<Summary> {
    run_in(&open(config)?, config)
}

/// Sets `config.seed` to `config.seed + sets - 1` in one process: the device and the
/// data are set up once; each set's files are those its own [`run`] would write.
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

/// `adversary-gen robust` for sets `config.seed` to `config.seed + sets - 1` in one
/// process, as [`run_sets`] does for FGSM.
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

/// One set on an open session.
pub fn run_in(session: &Session, config: &Config) -> Result<Summary> {
    let started = Instant::now();
    if config.n < 1 || config.n > TEST_COUNT {
        bail!(
            "--n {} is out of range: the test set has {TEST_COUNT} images",
            config.n
        );
    }
    if config.batch < 1 {
        bail!("--batch must be at least 1");
    }
    let search = config.search();
    search
        .validate()
        .context("--min-eps, --max-eps, --points, --tolerance and --chunk do not fit together")?;
    let sweep = if config.save_sweep {
        Some(
            fgsm::eps_grid(config.eps_step, config.eps_max)
                .context("--eps-step and --eps-max do not fit together")?,
        )
    } else {
        None
    };
    let device = session.device.device;
    let set = SetDir::new(&config.artifacts, config.seed);
    let model_file = set.model(&Variant::all()[0]);
    if !model_file.exists() {
        bail!(
            "baseline model {} does not exist (train it first)",
            model_file.display()
        );
    }
    nullclass::model::check_model_dataset(&set, &Variant::all()[0], session.dataset)?;
    let model = LoadedModel::load(&model_file, device)?;
    let model_sha256 = artifacts::sha256_file(&model_file)?;
    let (data_file, test) = (&session.data_file, &session.test);
    if config.n > test.len() {
        bail!(
            "--n {} is more than the {} images of {}",
            config.n,
            test.len(),
            data_file.display()
        );
    }

    let got = acquire::acquire(&model.net, test, config.n, config.batch, &search)?;
    let n = config.n;
    let side = [n, 28, 28];
    let adv = fgsm::perturb(&got.images, &got.signs, &got.threshold);
    let scaled = (got.threshold.to_kind(Kind::Double) * FIGURE8_SCALE).to_kind(Kind::Float);
    let adv_scaled = fgsm::perturb(&got.images, &got.signs, &scaled);

    let mut out = output::Staged::new(&set.fgsm_dir())?;
    out.npy("source_images.npy", &got.images.view(side))?;
    out.npy("labels.npy", &got.labels)?;
    out.npy("test_indices.npy", &got.test_indices)?;
    out.npy("signed_grads.npy", &got.signs.view(side))?;
    out.npy("eps_threshold.npy", &got.threshold)?;
    out.npy("eps_lower.npy", &got.lower)?;
    out.npy("adv_images.npy", &adv.view(side))?;
    out.npy("adv_images_x1.5.npy", &adv_scaled.view(side))?;
    if let Some(grid) = &sweep {
        let eps = Tensor::from_slice(grid);
        let images: Vec<Tensor> = grid
            .iter()
            .map(|&e| fgsm::perturb_all(&got.images, &got.signs, e).view(side))
            .collect();
        out.npy("sweep_images.npy", &Tensor::stack(&images, 0))?;
        out.npy("sweep_eps.npy", &eps)?;
    }
    let threshold = ThresholdSummary::of(&got.threshold)?;
    let last_test_index = got.test_indices.int64_value(&[n - 1]);
    let wall_seconds = started.elapsed().as_secs_f64();
    let files = std::mem::take(&mut out.files);
    let meta = Meta {
        tool: "adversary-gen",
        version: env!("CARGO_PKG_VERSION"),
        dataset: session.dataset,
        set_seed: config.seed,
        config,
        search,
        device: session.device.name(),
        model_file: model_file.display().to_string(),
        model_sha256,
        data_file: data_file.display().to_string(),
        counts: got.counts,
        last_test_index,
        threshold,
        figure8_scale: FIGURE8_SCALE,
        max_refinement_rounds: got.max_rounds,
        forwards: got.forwards,
        files: &files,
        wall_seconds,
    };
    out.json(META_FILE, &meta)
        .context("cannot write meta.json")?;
    out.commit()?;
    Ok(Summary {
        counts: got.counts,
        threshold: meta.threshold,
        out_dir: set.fgsm_dir(),
        wall_seconds,
    })
}
