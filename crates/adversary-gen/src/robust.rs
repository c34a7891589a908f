//! `adversary-gen robust`: the attacks beyond the report, on one set.
//!
//! The report's attacker knows only the baseline and transfers one FGSM step to the
//! null models. Here the attacker also runs PGD and, crucially, attacks every model
//! itself with losses that count the null class as failure (issue 6). All attacks use
//! the same source images: the first N test images the baseline classifies correctly.
//!
//! Writes SET/adversarial/robust/ (meta.json last, the folder replaced at once):
//! - `source_images.npy` float32 [N,28,28], `labels.npy` / `test_indices.npy` int64 [N],
//!   `eps.npy` float32 [E] (the PGD radii; 0 is not among them);
//! - `fgsm_transfer_signs.npy`: sign of the baseline's cross-entropy gradient [N,28,28];
//! - `pgd_transfer.npy` [E,N,28,28]: PGD with cross-entropy on the baseline;
//! - per model V: `pgd_adaptive_V.npy` [E,N,28,28] (margin loss, then the 9 targeted
//!   margins, worst case kept), `apgd_V.npy` [E,N,28,28] (APGD with the ensemble of
//!   [`apgd::ensemble`], worst case kept), `square_V.npy` [E,N,28,28] (the Square
//!   attack on the null-aware margin), `fgsm_margin_signs_V.npy` [N,28,28],
//!   `fgsm_margin_threshold_V.npy` float32 [N] and `fgsm_margin_status_V.npy` int64 [N]
//!   (the epsilon-threshold search with the margin-loss sign; status 0 found, 1 no
//!   wrong digit up to --max-eps, 2 a wrong digit already at epsilon 0).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use nullclass::artifacts::SetDir;
use nullclass::attack_budget;
use nullclass::dataset::TEST_COUNT;
use nullclass::device::{device_name, DeviceChoice, Tf32};
use nullclass::fgsm::{self, Goal, SearchConfig};
use nullclass::model::{load_set_models, LoadedModel, ModelEntry, SetModel};
use nullclass::session::Session;
use serde::Serialize;
use tch::{Kind, Tensor};

use crate::apgd::{self, ApgdConfig, ApgdLoss};
use crate::losses::{margin, Loss};
use crate::output::{FileEntry, Staged};
use crate::pgd::{self, PgdConfig};
use crate::square::{self, SquareConfig};
use crate::META_FILE;

#[derive(Args, Debug, Clone, Serialize)]
pub struct Config {
    /// Artifacts root: reads data/<dataset>.safetensors and seed-NN/models/*.safetensors.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Set seed (selects seed-NN; also seeds the random starts).
    #[arg(long, value_parser = nullclass::flag_ranges::int::<u64>(0..=nullclass::flag_ranges::MAX_SEED))]
    pub seed: u64,
    /// Source images: the first N test images the baseline classifies correctly.
    #[arg(long, default_value_t = attack_budget::IMAGES, value_parser = nullclass::flag_ranges::int::<i64>(1..=nullclass::dataset::TEST_COUNT))]
    pub n: i64,
    /// auto, cpu, cuda or cuda:N (auto takes a GPU when one is usable).
    #[arg(long, default_value = "auto")]
    #[serde(serialize_with = "nullclass::artifacts::serialize_display")]
    pub device: DeviceChoice,
    /// TF32 on a GPU: on or off (off by default, as for `adversary-gen fgsm`).
    #[arg(long, default_value = "off")]
    pub tf32: Tf32,
    /// PGD radii: step, 2 step, ..., --eps-max.
    #[arg(long, default_value_t = 0.05, value_parser = nullclass::flag_ranges::pixel_eps)]
    pub eps_step: f64,
    /// Largest PGD radius (0.3 is the MNIST standard).
    #[arg(long, default_value_t = 0.3, value_parser = nullclass::flag_ranges::pixel_eps)]
    pub eps_max: f64,
    /// PGD step size.
    #[arg(long, default_value_t = 0.01, value_parser = nullclass::flag_ranges::pixel_eps)]
    pub step: f64,
    /// PGD steps per run.
    #[arg(long, default_value_t = attack_budget::PGD_STEPS, value_parser = nullclass::flag_ranges::int::<usize>(1..=1_000_000))]
    pub steps: usize,
    /// Random starts per loss; the worst case per image is kept.
    #[arg(long, default_value_t = attack_budget::PGD_RESTARTS, value_parser = nullclass::flag_ranges::int::<usize>(1..=10_000))]
    pub restarts: usize,
    /// Start at the source image instead of a random point of the ball.
    #[arg(long)]
    pub no_random_start: bool,
    /// Adaptive PGD without the 9 targeted runs (10x cheaper, weaker).
    #[arg(long)]
    pub no_targeted: bool,
    /// APGD iterations per run (AutoAttack's n_iter).
    #[arg(long, default_value_t = attack_budget::APGD_N_ITER, value_parser = nullclass::flag_ranges::int::<usize>(1..=100_000))]
    pub apgd_n_iter: usize,
    /// APGD random starts per loss (n_restarts).
    #[arg(long, default_value_t = attack_budget::APGD_N_RESTARTS, value_parser = nullclass::flag_ranges::int::<usize>(1..=1000))]
    pub apgd_n_restarts: usize,
    /// Output-diversified steps at each APGD start (ODI, Tashiro et al. 2020; 0 = the
    /// uniform start alone, as AutoAttack).
    #[arg(long, default_value_t = attack_budget::APGD_ODI_STEPS, value_parser = nullclass::flag_ranges::int::<usize>(0..=100))]
    pub apgd_odi_steps: usize,
    /// APGD-T's targeted DLR runs, at the strongest wrong digits (n_target_classes,
    /// 0 to 9).
    #[arg(long, default_value_t = attack_budget::APGD_N_TARGET_CLASSES, value_parser = nullclass::flag_ranges::int::<usize>(0..=9))]
    pub apgd_n_target_classes: usize,
    /// Square attack queries per image (n_queries; 0 skips the attack's queries
    /// beyond its initialisation).
    #[arg(long, default_value_t = attack_budget::SQUARE_N_QUERIES, value_parser = nullclass::flag_ranges::int::<usize>(0..=1_000_000))]
    pub square_n_queries: usize,
    /// Square attack's initial share of pixels per square (p_init).
    #[arg(long, default_value_t = 0.8, value_parser = nullclass::flag_ranges::pixel_eps)]
    pub square_p_init: f64,
    /// Largest epsilon of the margin-FGSM threshold search.
    #[arg(long, default_value_t = 1.0, value_parser = nullclass::flag_ranges::pixel_eps)]
    pub max_eps: f64,
    /// Images attacked at once (bounds memory only).
    #[arg(long, default_value_t = 500, value_parser = nullclass::flag_ranges::int::<i64>(1..))]
    pub chunk: i64,
    /// Torch intra-op threads (torch's default when absent).
    #[arg(long, value_parser = nullclass::flag_ranges::int::<i32>(1..=nullclass::flag_ranges::MAX_THREADS))]
    pub threads: Option<i32>,
}

impl Config {
    pub fn pgd(&self, eps: f32) -> PgdConfig {
        PgdConfig {
            eps,
            step: self.step,
            steps: self.steps,
            restarts: self.restarts,
            random_start: !self.no_random_start,
            seed: self.seed,
        }
    }

    pub fn apgd(&self, eps: f32) -> ApgdConfig {
        ApgdConfig {
            eps,
            n_iter: self.apgd_n_iter,
            n_restarts: self.apgd_n_restarts,
            odi_steps: self.apgd_odi_steps,
            seed: self.seed,
        }
    }

    pub fn square(&self, eps: f32) -> SquareConfig {
        SquareConfig {
            eps,
            n_queries: self.square_n_queries,
            p_init: self.square_p_init,
            seed: self.seed,
        }
    }

    /// The PGD radii (the sweep grid without 0).
    pub fn radii(&self) -> Result<Vec<f32>> {
        let grid = fgsm::eps_grid(self.eps_step, self.eps_max)?;
        let radii: Vec<f32> = grid.into_iter().filter(|&e| e > 0.0).collect();
        if radii.is_empty() {
            bail!("--eps-max {} leaves no PGD radius above 0", self.eps_max);
        }
        Ok(radii)
    }

    fn validate(&self) -> Result<()> {
        if self.n < 1 || self.n > TEST_COUNT {
            bail!(
                "--n {} is out of range: the test set has {TEST_COUNT} images",
                self.n
            );
        }
        if self.chunk < 1 {
            bail!("--chunk must be at least 1");
        }
        if !(self.step > 0.0 && self.step.is_finite()) {
            bail!("--step must be positive");
        }
        if self.restarts < 1 {
            bail!("--restarts must be at least 1");
        }
        if self.apgd_n_restarts < 1 {
            bail!("--apgd-n-restarts must be at least 1");
        }
        if self.apgd_n_target_classes > 9 {
            bail!(
                "--apgd-n-target-classes {} is more than the 9 wrong classes",
                self.apgd_n_target_classes
            );
        }
        if !(self.square_p_init > 0.0 && self.square_p_init <= 1.0) {
            bail!("--square-p-init {} must be in (0, 1]", self.square_p_init);
        }
        if self.eps_max > 1.0 {
            bail!(
                "--eps-max {} is beyond the pixel range [0, 1]",
                self.eps_max
            );
        }
        Ok(())
    }
}

/// What one attack did to one model at one radius, from the attacker's side.
#[derive(Debug, Serialize)]
pub struct AttackStat {
    pub attack: &'static str,
    pub model: String,
    pub eps: f32,
    /// Images whose kept iterate puts a wrong digit on top of the attacked model.
    pub successes: i64,
    /// Images whose input gradient was exactly zero at some step.
    pub zero_gradient: i64,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
struct MarginFgsm {
    model: String,
    found: i64,
    no_flip: i64,
    wrong_clean: i64,
    /// Source images whose margin-loss gradient is all zeros.
    zero_gradient: i64,
}

#[derive(Debug, Serialize)]
struct Meta<'a> {
    tool: &'static str,
    version: &'static str,
    dataset: nullclass::dataset::DataSet,
    set_seed: u64,
    config: &'a Config,
    device: String,
    eps: &'a [f32],
    losses_adaptive: Vec<Loss>,
    losses_apgd: Vec<String>,
    models: Vec<ModelEntry>,
    data_file: String,
    walked: i64,
    skipped_wrong: i64,
    attacks: Vec<AttackStat>,
    fgsm_margin: Vec<MarginFgsm>,
    files: &'a [FileEntry],
    wall_seconds: f64,
}

/// The first `n` test images the baseline classifies correctly: (images [N,1,28,28],
/// labels, test indices, walked, skipped).
fn sources(
    base: &LoadedModel,
    test: &nullclass::dataset::Split,
    n: i64,
    chunk: i64,
) -> Result<(Tensor, Tensor, Tensor, i64, i64)> {
    let right = base.predict(&test.images, chunk).eq_tensor(&test.labels);
    let idx = right.nonzero().squeeze_dim(1);
    if idx.size()[0] < n {
        bail!(
            "the baseline classifies only {} test images correctly, fewer than --n {n}",
            idx.size()[0]
        );
    }
    let idx = idx.narrow(0, 0, n);
    let walked = idx.int64_value(&[n - 1]) + 1;
    Ok((
        test.images.index_select(0, &idx),
        test.labels.index_select(0, &idx),
        idx,
        walked,
        walked - n,
    ))
}

/// One attack's kept worst case on a chunk: images, margins, zero-gradient flags.
struct Chunk {
    images: Tensor,
    margin: Tensor,
    zero_gradient: Tensor,
}

/// An attack over all sources in chunks, for every radius: images `[E,N,1,28,28]` and
/// stats. `attack_chunk(eps, start, len)` attacks sources `start..start + len`.
fn sweep<F: Fn(f32, i64, i64) -> Chunk>(
    name: &str,
    attack: &'static str,
    n: i64,
    chunk: i64,
    radii: &[f32],
    attack_chunk: F,
) -> (Tensor, Vec<AttackStat>) {
    let mut per_eps = Vec::new();
    let mut stats = Vec::new();
    for &eps in radii {
        let t0 = Instant::now();
        let (mut images, mut successes, mut zero) = (Vec::new(), 0, 0);
        for s in (0..n).step_by(chunk as usize) {
            let r = attack_chunk(eps, s, chunk.min(n - s));
            successes += r.margin.gt(0.0).sum(Kind::Int64).int64_value(&[]);
            zero += r.zero_gradient.sum(Kind::Int64).int64_value(&[]);
            images.push(r.images);
        }
        let seconds = t0.elapsed().as_secs_f64();
        eprintln!(
            "adversary-gen: {attack} on {name}, eps {eps}: {successes}/{n} turned into a wrong class \
             ({zero} with a zero gradient), {seconds:.1} s"
        );
        stats.push(AttackStat {
            attack,
            model: name.to_string(),
            eps,
            successes,
            zero_gradient: zero,
            seconds,
        });
        per_eps.push(Tensor::cat(&images, 0));
    }
    (Tensor::stack(&per_eps, 0), stats)
}

/// The sources `s..s + len` of (images, labels, test indices).
fn part(t: &(Tensor, Tensor, Tensor), s: i64, len: i64) -> (Tensor, Tensor, Tensor) {
    (
        t.0.narrow(0, s, len),
        t.1.narrow(0, s, len),
        t.2.narrow(0, s, len),
    )
}

/// PGD with `losses` on `model`, every radius.
fn pgd_sweep(
    model: &LoadedModel,
    name: &str,
    attack: &'static str,
    losses: &[Loss],
    src: &(Tensor, Tensor, Tensor),
    config: &Config,
    radii: &[f32],
) -> (Tensor, Vec<AttackStat>) {
    sweep(
        name,
        attack,
        src.0.size()[0],
        config.chunk,
        radii,
        |eps, s, len| {
            let (x, y, ids) = part(src, s, len);
            let r = pgd::attack(&model.net, &x, &y, &ids, losses, &config.pgd(eps));
            Chunk {
                images: r.images,
                margin: r.margin,
                zero_gradient: r.zero_gradient,
            }
        },
    )
}

/// One set, in a process of its own.
pub fn run(config: &Config) -> Result<PathBuf> {
    let session = Session::open(
        &config.artifacts,
        config.device,
        config.tf32,
        config.threads,
    )?;
    run_in(&session, config)
}

/// One set on an open session (`crate::robust_sets` runs many).
pub fn run_in(session: &Session, config: &Config) -> Result<PathBuf> {
    let started = Instant::now();
    config.validate()?;
    let radii = config.radii()?;
    let search = SearchConfig {
        goal: Goal::WrongDigit,
        max_eps: config.max_eps,
        chunk: config.chunk.max(1000),
        ..SearchConfig::default()
    };
    search.validate()?;
    let device = session.device.device;
    let set = SetDir::new(&config.artifacts, config.seed);
    let mut models = load_set_models(&set, session.dataset, device)?;
    for m in &mut models {
        // The attacks need input gradients only.
        m.model.vs.freeze();
    }
    let (data_file, test) = (&session.data_file, &session.test);
    let (x, y, ids, walked, skipped_wrong) =
        sources(&models[0].model, test, config.n, config.chunk)?;
    let src = (x.shallow_clone(), y.shallow_clone(), ids.shallow_clone());
    let n = config.n;
    let side = [n, 28, 28];
    let sweep_side = [radii.len() as i64, n, 28, 28];

    let mut out = Staged::new(&set.robust_dir())?;
    out.npy("source_images.npy", &x.view(side))?;
    out.npy("labels.npy", &y)?;
    out.npy("test_indices.npy", &ids)?;
    out.npy("eps.npy", &Tensor::from_slice(&radii))?;

    let base = &models[0].model;
    let signs = fgsm::signed_gradient(&base.net, &x, &y, config.chunk);
    out.npy("fgsm_transfer_signs.npy", &signs.view(side))?;
    let (images, mut attacks) = pgd_sweep(
        base,
        "base",
        "pgd-transfer",
        &[Loss::CrossEntropy],
        &src,
        config,
        &radii,
    );
    out.npy("pgd_transfer.npy", &images.view(sweep_side))?;

    let losses = pgd::adaptive_losses(!config.no_targeted);
    let apgd_losses = apgd::ensemble(config.apgd_n_target_classes);
    let mut fgsm_margin = Vec::new();
    for m in &models {
        let (name, model) = (&m.name, &m.model);
        let (images, stats) = pgd_sweep(model, name, "pgd-adaptive", &losses, &src, config, &radii);
        attacks.extend(stats);
        out.npy(
            &format!("pgd_adaptive_{name}.npy"),
            &images.view(sweep_side),
        )?;
        let (images, stats) = sweep(name, "apgd", n, config.chunk, &radii, |eps, s, len| {
            let (x, y, ids) = part(&src, s, len);
            let r = apgd::attack(&model.net, &x, &y, &ids, &apgd_losses, &config.apgd(eps));
            Chunk {
                images: r.images,
                margin: r.margin,
                zero_gradient: r.zero_gradient,
            }
        });
        attacks.extend(stats);
        out.npy(&format!("apgd_{name}.npy"), &images.view(sweep_side))?;
        let (images, stats) = sweep(name, "square", n, config.chunk, &radii, |eps, s, len| {
            let (x, y, ids) = part(&src, s, len);
            let r = square::attack(&model.net, &x, &y, &ids, &config.square(eps));
            Chunk {
                images: r.images,
                margin: r.margin,
                // Square never asks for a gradient.
                zero_gradient: Tensor::zeros([len], (Kind::Bool, x.device())),
            }
        });
        attacks.extend(stats);
        out.npy(&format!("square_{name}.npy"), &images.view(sweep_side))?;

        let grads = fgsm::chunked_gradient(&model.net, &x, &y, config.chunk, margin);
        let zero_gradient = grads
            .abs()
            .flatten(1, -1)
            .amax(1, false)
            .eq(0.0)
            .sum(Kind::Int64)
            .int64_value(&[]);
        let signs = grads.sign();
        let found = fgsm::threshold_search(&model.net, &x, &signs, &y, &search)
            .with_context(|| format!("margin-FGSM threshold search on model {name}"))?;
        let count = |s: i64| found.status.eq(s).sum(Kind::Int64).int64_value(&[]);
        fgsm_margin.push(MarginFgsm {
            model: name.clone(),
            found: count(fgsm::FOUND),
            no_flip: count(fgsm::NO_FLIP),
            wrong_clean: count(fgsm::WRONG_CLEAN),
            zero_gradient,
        });
        out.npy(&format!("fgsm_margin_signs_{name}.npy"), &signs.view(side))?;
        out.npy(
            &format!("fgsm_margin_threshold_{name}.npy"),
            &found.threshold,
        )?;
        out.npy(&format!("fgsm_margin_status_{name}.npy"), &found.status)?;
    }

    let files = std::mem::take(&mut out.files);
    let meta = Meta {
        tool: "adversary-gen robust",
        version: env!("CARGO_PKG_VERSION"),
        dataset: session.dataset,
        set_seed: config.seed,
        config,
        device: device_name(device),
        eps: &radii,
        losses_adaptive: losses,
        losses_apgd: apgd_losses.iter().map(|l: &ApgdLoss| l.name()).collect(),
        models: models.iter().map(SetModel::entry).collect(),
        data_file: data_file.display().to_string(),
        walked,
        skipped_wrong,
        attacks,
        fgsm_margin,
        files: &files,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    out.json(META_FILE, &meta)
        .context("cannot write meta.json")?;
    out.commit()?;
    Ok(set.robust_dir())
}
