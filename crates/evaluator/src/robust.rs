//! `evaluator robust`: scores the attacks of `adversary-gen robust` and a
//! confidence-rejection baseline, so that a null model's robustness can be told apart
//! from (a) the attack not knowing it and (b) what thresholding the baseline's
//! confidence gives for free.
//!
//! Writes into SET/eval/:
//! - `robust.csv` (`attack,model,eps,n,correct,misclassified,unclassified`): attacks
//!   `fgsm-transfer`, `pgd-transfer` (images made on the baseline, scored by every
//!   model), `pgd-adaptive`, `fgsm-adaptive` (each model scored on images made against
//!   itself), `apgd`, `square` (the same, for APGD and the Square attack) and
//!   `worst-case`: per image, the worst outcome over all six attacks at that radius
//!   (a wrong digit if any attack's image is one, else null if any is null or
//!   rejected, else correct); eps 0 rows are the clean source images. Models are the 8 of the set and
//!   `reject-V`: the baseline rejecting inputs whose top softmax probability is below
//!   a tau that matches null model V's clean null rate. Under adaptive attacks
//!   `reject-V` is scored on the baseline's own adaptive images.
//! - `robust_error.csv` (`model,eps,n,clean_errors,robust_errors,rejects`): robust
//!   error with rejection (Sheikholeslami et al. 2021; Tramer 2022): a source counts
//!   as an error if the clean image is misclassified or rejected, or if the worst
//!   case at that radius is accepted as a wrong digit. `rejects` says what rejection
//!   is: `null` (the null class), `p<TAU` (the baseline's top probability below tau)
//!   or `none` (the baseline). Beside the 7 rejectors of robust.csv it has
//!   `reject-99`: tau set so that 99 % of the correctly classified clean test images
//!   are kept. The sources are test images the baseline classifies correctly, so the
//!   baseline's clean error on them is 0 by selection.
//! - `rejection.csv` (`model,matches,target_null_rate,tau,clean_reject_rate,n_test`).
//! - `fgsm_margin.csv` (`model,n,found,no_flip,wrong_clean,median_threshold,share_below_0_4`).
//! - `gradients.csv` (`attack,model,eps,n,zero_gradient`): images whose input
//!   gradient was exactly zero at some step (from adversary-gen's meta.json; eps 0
//!   rows of `fgsm-adaptive` are the gradient at the source): the gradient-masking check.
//! - `robust_meta.json`, last.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use nullclass::artifacts::{self, SetDir};
use nullclass::dataset::{recorded, DataSet};
use nullclass::device::{device_name, DeviceChoice, Tf32};
use nullclass::fgsm;
use nullclass::model::NULL_CLASS;
use nullclass::session::Session;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::inputs::{self, read_checked, read_vector, SetModel};
use crate::scores::{self, Outcomes};

/// The file written last: a make target for the robust scores.
pub const META_FILE: &str = "robust_meta.json";
pub const ROBUST_HEADER: &str = "attack,model,eps,n,correct,misclassified,unclassified";
pub const REJECTION_HEADER: &str = "model,matches,target_null_rate,tau,clean_reject_rate,n_test";
pub const GRADIENT_HEADER: &str = "attack,model,eps,n,zero_gradient";
pub const ROBUST_ERROR_HEADER: &str = "model,eps,n,clean_errors,robust_errors,rejects";
/// The operating point of the extra rejector: this share of the correctly classified
/// clean test images is kept.
pub const KEEP_CORRECT: f64 = 0.99;
pub const KEEP_CORRECT_NAME: &str = "reject-99";
/// Attacks each model faces on images made against itself, with their file prefix.
const ADAPTIVE_FILES: [(&str, &str); 3] = [
    ("pgd-adaptive", "pgd_adaptive"),
    ("apgd", "apgd"),
    ("square", "square"),
];
pub const MARGIN_HEADER: &str =
    "model,n,found,no_flip,wrong_clean,median_threshold,share_below_0_4";

#[derive(Args, Debug, Clone, Serialize)]
pub struct Config {
    /// Artifacts root: reads data/, seed-NN/models/ and seed-NN/adversarial/robust/.
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// Set seed (selects seed-NN).
    #[arg(long, value_parser = nullclass::flag_ranges::int::<u64>(0..=nullclass::flag_ranges::MAX_SEED))]
    pub seed: u64,
    /// auto, cpu, cuda or cuda:N (auto takes a GPU when one is usable).
    #[arg(long, default_value = "auto")]
    #[serde(serialize_with = "nullclass::artifacts::serialize_display")]
    pub device: DeviceChoice,
    /// TF32 on a GPU: on or off (off by default, as for `evaluator fgsm`).
    #[arg(long, default_value = "off")]
    pub tf32: Tf32,
    /// Images per forward pass (bounds memory only).
    #[arg(long, default_value_t = 1000, value_parser = nullclass::flag_ranges::int::<i64>(1..))]
    pub chunk: i64,
    /// Torch intra-op threads (torch's default when absent).
    #[arg(long, value_parser = nullclass::flag_ranges::int::<i32>(1..=nullclass::flag_ranges::MAX_THREADS))]
    pub threads: Option<i32>,
}

/// The tau at which rejecting `p < tau` rejects `round(rate * N)` of the confidences
/// `probs` (float64 `[N]`): halfway between the k-th and (k+1)-th smallest, 0 (reject
/// nothing) for k = 0, and above every value for k = N. Ties at the cut can only move
/// the count by the tied images.
pub fn tau_for_rate(probs: &Tensor, rate: f64) -> Result<f64> {
    let (sorted, _) = probs.sort(0, false);
    let v: Vec<f64> = Vec::try_from(sorted.to_kind(Kind::Double).to_device(Device::Cpu))?;
    let k = ((rate * v.len() as f64).round() as usize).min(v.len());
    Ok(match k {
        0 => 0.0,
        k if k == v.len() => f64::INFINITY,
        k if v[k - 1] < v[k] => (v[k - 1] + v[k]) / 2.0,
        k => v[k],
    })
}

/// The rejection baseline's predictions: the baseline's class, or null below tau.
pub fn reject(classes: &Tensor, probs: &Tensor, tau: f64) -> Tensor {
    classes.masked_fill(&probs.lt(tau), NULL_CLASS)
}

/// One rejection baseline: the baseline with the tau matching a null model.
#[derive(Debug, Clone, Serialize)]
pub struct Rejector {
    pub name: String,
    pub matches: String,
    pub target_null_rate: f64,
    pub tau: f64,
    pub clean_reject_rate: f64,
    pub n_test: i64,
}

/// What adversary-gen robust wrote, on the scoring device.
struct RobustSet {
    dir: PathBuf,
    meta: serde_json::Value,
    meta_sha256: String,
    sources: Tensor,
    labels: Tensor,
    radii: Vec<f32>,
    transfer_signs: Tensor,
    pgd_transfer: Tensor,
}

fn load_robust(
    dir: &Path,
    dataset: DataSet,
    models: &[SetModel],
    device: Device,
) -> Result<RobustSet> {
    let meta_path = dir.join("meta.json");
    let text = std::fs::read_to_string(&meta_path).with_context(|| {
        format!(
            "cannot read {} (run adversary-gen robust first)",
            meta_path.display()
        )
    })?;
    let meta: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", meta_path.display()))?;
    dataset.check_same(recorded(&meta, &meta_path)?, &meta_path)?;
    for m in models {
        let recorded = meta["models"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["name"] == m.name.as_str()))
            .and_then(|e| e["sha256"].as_str());
        if recorded != Some(m.sha256.as_str()) {
            bail!(
                "{} was made from a different {} than {}; rerun adversary-gen robust",
                meta_path.display(),
                m.name,
                m.file.display()
            );
        }
    }
    let labels = read_vector(&dir.join("labels.npy"), Kind::Int64)?;
    let n = labels.size()[0];
    let eps = read_vector(&dir.join("eps.npy"), Kind::Float)?;
    let e = eps.size()[0];
    let image = [n, 28, 28];
    Ok(RobustSet {
        dir: dir.to_path_buf(),
        meta_sha256: artifacts::sha256_hex(text.as_bytes()),
        meta,
        sources: read_checked(dir, "source_images.npy", Kind::Float, &image)?.to_device(device),
        labels: labels.to_device(device),
        radii: Vec::try_from(&eps)?,
        transfer_signs: read_checked(dir, "fgsm_transfer_signs.npy", Kind::Float, &image)?
            .to_device(device),
        pgd_transfer: read_checked(dir, "pgd_transfer.npy", Kind::Float, &[e, n, 28, 28])?
            .to_device(device),
    })
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
    robust_dir: String,
    robust_meta_sha256: String,
    n: i64,
    eps: Vec<f32>,
    rejection: &'a [Rejector],
    /// Scored in robust_error.csv only.
    rejection_extra: &'a [Rejector],
    wall_seconds: f64,
}

/// The worst outcome per image so far: a wrong digit beats null (or rejected), which
/// beats correct.
fn worse(old: &Tensor, new: &Tensor, labels: &Tensor) -> Tensor {
    let wrong = |p: &Tensor| p.ne_tensor(labels).logical_and(&p.ne(NULL_CLASS));
    let pick_new = wrong(new)
        .logical_and(&wrong(old).logical_not())
        .logical_or(&new.eq(NULL_CLASS).logical_and(&old.eq_tensor(labels)));
    new.where_self(&pick_new, old)
}

/// The CSV rows of one attack at one eps: every model, then every rejection baseline;
/// and each model's worst prediction per image over the attacks, per eps.
struct Scorer<'a> {
    models: &'a [SetModel],
    rejectors: &'a [Rejector],
    /// Rejection baselines scored for the worst case and robust error only.
    extra: &'a [Rejector],
    labels: &'a Tensor,
    chunk: i64,
    rows: Vec<String>,
    worst: Vec<(String, u32, Tensor)>,
}

impl Scorer<'_> {
    fn row(&mut self, attack: &str, model: &str, eps: f32, pred: &Tensor) {
        let c = Outcomes::of(pred, self.labels);
        self.rows
            .push(format!("{attack},{}", scores::sweep_row(model, eps, &c)));
        self.record(model, eps, pred);
    }

    fn record(&mut self, model: &str, eps: f32, pred: &Tensor) {
        let key = eps.to_bits();
        match self
            .worst
            .iter_mut()
            .find(|(m, e, _)| m == model && *e == key)
        {
            Some(w) => w.2 = worse(&w.2, pred, self.labels),
            None => self
                .worst
                .push((model.to_string(), key, pred.shallow_clone())),
        }
    }

    fn worst_of(&self, model: &str, eps: f32) -> Option<&Tensor> {
        let key = eps.to_bits();
        self.worst
            .iter()
            .find(|(m, e, _)| m == model && *e == key)
            .map(|w| &w.2)
    }

    /// All models and rejectors on the same images.
    fn transfer(&mut self, attack: &str, eps: f32, images: &Tensor) {
        for m in self.models {
            let pred = m.model.predict(images, self.chunk);
            self.row(attack, &m.name, eps, &pred);
        }
        let (classes, probs) =
            scores::predict_with_prob(&self.models[0].model, images, self.chunk, Kind::Double);
        self.rejectors_on(attack, eps, &classes, &probs);
    }

    fn rejectors_on(&mut self, attack: &str, eps: f32, classes: &Tensor, probs: &Tensor) {
        for r in self.rejectors {
            self.row(attack, &r.name, eps, &reject(classes, probs, r.tau));
        }
        for r in self.extra {
            self.record(&r.name, eps, &reject(classes, probs, r.tau));
        }
    }

    /// Each model on its own images (`images_of(i)`); rejectors on the baseline's.
    fn adaptive<F: Fn(usize) -> Result<Tensor>>(
        &mut self,
        attack: &str,
        eps: f32,
        images_of: F,
    ) -> Result<()> {
        for (i, m) in self.models.iter().enumerate() {
            let images = images_of(i)?;
            let pred = m.model.predict(&images, self.chunk);
            self.row(attack, &m.name, eps, &pred);
            if i == 0 {
                let (classes, probs) =
                    scores::predict_with_prob(&m.model, &images, self.chunk, Kind::Double);
                self.rejectors_on(attack, eps, &classes, &probs);
            }
        }
        Ok(())
    }

    /// The `worst-case` rows, and robust_error.csv's rows, over `grid` (0 first).
    fn worst_case(&mut self, grid: &[f32]) -> Vec<String> {
        let mut names: Vec<(String, String)> = self
            .models
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let rule = if i == 0 { "none" } else { "null" };
                (m.name.clone(), rule.to_string())
            })
            .collect();
        for r in self.rejectors.iter().chain(self.extra) {
            names.push((r.name.clone(), format!("p<{}", r.tau)));
        }
        let n = self.labels.size()[0];
        let mut error_rows = Vec::new();
        for &eps in grid {
            for (k, (name, rule)) in names.iter().enumerate() {
                let (Some(pred), Some(clean)) =
                    (self.worst_of(name, eps), self.worst_of(name, 0.0))
                else {
                    continue;
                };
                let (pred, clean) = (pred.shallow_clone(), clean.shallow_clone());
                if k < self.models.len() + self.rejectors.len() {
                    let c = Outcomes::of(&pred, self.labels);
                    self.rows
                        .push(format!("worst-case,{}", scores::sweep_row(name, eps, &c)));
                }
                let clean_error = clean.ne_tensor(self.labels);
                let wrong = pred
                    .ne_tensor(self.labels)
                    .logical_and(&pred.ne(NULL_CLASS));
                let count = |t: &Tensor| t.sum(Kind::Int64).int64_value(&[]);
                error_rows.push(format!(
                    "{name},{eps:?},{n},{},{},{rule}",
                    count(&clean_error),
                    count(&clean_error.logical_or(&wrong))
                ));
            }
        }
        error_rows
    }
}

/// gradients.csv's rows, from the attack's meta.json.
fn gradient_rows(adv: &RobustSet, n: i64) -> Result<Vec<String>> {
    let bad = || {
        anyhow::anyhow!(
            "{}: attacks / fgsm_margin entries lack their zero_gradient counts",
            adv.dir.join("meta.json").display()
        )
    };
    let mut rows = Vec::new();
    for a in adv.meta["attacks"].as_array().ok_or_else(bad)? {
        let (attack, model) = (a["attack"].as_str(), a["model"].as_str());
        let (eps, zero) = (a["eps"].as_f64(), a["zero_gradient"].as_i64());
        let (Some(attack), Some(model), Some(eps), Some(zero)) = (attack, model, eps, zero) else {
            return Err(bad());
        };
        rows.push(format!("{attack},{model},{:?},{n},{zero}", eps as f32));
    }
    for m in adv.meta["fgsm_margin"].as_array().ok_or_else(bad)? {
        let (Some(model), Some(zero)) = (m["model"].as_str(), m["zero_gradient"].as_i64()) else {
            return Err(bad());
        };
        rows.push(format!("fgsm-adaptive,{model},0.0,{n},{zero}"));
    }
    Ok(rows)
}

fn median(mut v: Vec<f32>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f32::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        f64::from(v[n / 2])
    } else {
        (f64::from(v[n / 2 - 1]) + f64::from(v[n / 2])) / 2.0
    }
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
    if config.chunk < 1 {
        bail!("--chunk must be at least 1");
    }
    let device = session.device.device;
    let set = SetDir::new(&config.artifacts, config.seed);
    let models = inputs::load_set_models(&set, session.dataset, device)?;
    let test = &session.test;
    let adv = load_robust(&set.robust_dir(), session.dataset, &models, device)?;
    inputs::check_sources(&adv.dir, &adv.sources, &adv.labels, test)?;
    let n = adv.labels.size()[0];
    let image = [n, 28, 28];

    // Each null model's clean null rate on the whole test set fixes its rejector's tau.
    let (_, test_probs) =
        scores::predict_with_prob(&models[0].model, &test.images, config.chunk, Kind::Double);
    let n_test = test.len();
    let rejectors = models[1..]
        .iter()
        .map(|m| {
            let rate = Outcomes::of(&m.model.predict(&test.images, config.chunk), &test.labels)
                .null_rate();
            let tau = tau_for_rate(&test_probs, rate)?;
            let rejected = test_probs.lt(tau).sum(Kind::Int64).int64_value(&[]);
            Ok(Rejector {
                name: format!("reject-{}", m.name),
                matches: m.name.clone(),
                target_null_rate: rate,
                tau,
                clean_reject_rate: rejected as f64 / n_test as f64,
                n_test,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // The common operating point: 99 % of the correctly classified clean images kept.
    let (test_classes, _) =
        scores::predict_with_prob(&models[0].model, &test.images, config.chunk, Kind::Double);
    let right = test_probs.masked_select(&test_classes.eq_tensor(&test.labels));
    let tau = tau_for_rate(&right, 1.0 - KEEP_CORRECT)?;
    let rejected = test_probs.lt(tau).sum(Kind::Int64).int64_value(&[]);
    let extra = [Rejector {
        name: KEEP_CORRECT_NAME.to_string(),
        matches: format!(
            "{} % of the correct clean images kept",
            100.0 * KEEP_CORRECT
        ),
        target_null_rate: f64::NAN,
        tau,
        clean_reject_rate: rejected as f64 / n_test as f64,
        n_test,
    }];

    let mut scorer = Scorer {
        models: &models,
        rejectors: &rejectors,
        extra: &extra,
        labels: &adv.labels,
        chunk: config.chunk,
        rows: Vec::new(),
        worst: Vec::new(),
    };
    let grid: Vec<f32> = std::iter::once(0.0)
        .chain(adv.radii.iter().copied())
        .collect();
    for &eps in &grid {
        let x = fgsm::perturb_all(&adv.sources, &adv.transfer_signs, eps);
        scorer.transfer("fgsm-transfer", eps, &x);
    }
    for (k, &eps) in grid.iter().enumerate() {
        let x = if k == 0 {
            adv.sources.shallow_clone()
        } else {
            adv.pgd_transfer.get(k as i64 - 1)
        };
        scorer.transfer("pgd-transfer", eps, &x);
    }
    let e = adv.radii.len() as i64;
    let mut adaptive: Vec<Vec<Tensor>> = ADAPTIVE_FILES.iter().map(|_| Vec::new()).collect();
    let mut margin_signs = Vec::new();
    for m in &models {
        let name = &m.name;
        for (files, (_, prefix)) in adaptive.iter_mut().zip(ADAPTIVE_FILES) {
            files.push(read_checked(
                &adv.dir,
                &format!("{prefix}_{name}.npy"),
                Kind::Float,
                &[e, n, 28, 28],
            )?);
        }
        margin_signs.push(
            read_checked(
                &adv.dir,
                &format!("fgsm_margin_signs_{name}.npy"),
                Kind::Float,
                &image,
            )?
            .to_device(device),
        );
    }
    for (files, (attack, _)) in adaptive.iter().zip(ADAPTIVE_FILES) {
        for (k, &eps) in grid.iter().enumerate() {
            scorer.adaptive(attack, eps, |i| {
                Ok(if k == 0 {
                    adv.sources.shallow_clone()
                } else {
                    files[i].get(k as i64 - 1).to_device(device)
                })
            })?;
        }
    }
    for &eps in &grid {
        scorer.adaptive("fgsm-adaptive", eps, |i| {
            Ok(fgsm::perturb_all(&adv.sources, &margin_signs[i], eps))
        })?;
    }
    let error_rows = scorer.worst_case(&grid);

    let mut margin_rows = Vec::new();
    for m in &models {
        let name = &m.name;
        let thr = read_checked(
            &adv.dir,
            &format!("fgsm_margin_threshold_{name}.npy"),
            Kind::Float,
            &[n],
        )?;
        let status = read_checked(
            &adv.dir,
            &format!("fgsm_margin_status_{name}.npy"),
            Kind::Int64,
            &[n],
        )?;
        let found_mask = status.eq(fgsm::FOUND);
        let count = |s: i64| status.eq(s).sum(Kind::Int64).int64_value(&[]);
        let found: Vec<f32> = Vec::try_from(thr.masked_select(&found_mask))?;
        let below = found.iter().filter(|&&t| t < 0.4).count();
        margin_rows.push(format!(
            "{name},{n},{},{},{},{},{}",
            found.len(),
            count(fgsm::NO_FLIP),
            count(fgsm::WRONG_CLEAN),
            median(found.clone()),
            below as f64 / n as f64
        ));
    }

    let out = set.eval_dir();
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create folder {}", out.display()))?;
    let meta_path = out.join(META_FILE);
    if meta_path.exists() {
        std::fs::remove_file(&meta_path)
            .with_context(|| format!("cannot remove the old {}", meta_path.display()))?;
    }
    crate::write_lines(&out.join("robust.csv"), ROBUST_HEADER, &scorer.rows)?;
    let rejection_rows: Vec<String> = rejectors
        .iter()
        .map(|r| {
            format!(
                "{},{},{},{},{},{}",
                r.name, r.matches, r.target_null_rate, r.tau, r.clean_reject_rate, r.n_test
            )
        })
        .collect();
    crate::write_lines(
        &out.join("rejection.csv"),
        REJECTION_HEADER,
        &rejection_rows,
    )?;
    crate::write_lines(&out.join("fgsm_margin.csv"), MARGIN_HEADER, &margin_rows)?;
    crate::write_lines(
        &out.join("robust_error.csv"),
        ROBUST_ERROR_HEADER,
        &error_rows,
    )?;
    crate::write_lines(
        &out.join("gradients.csv"),
        GRADIENT_HEADER,
        &gradient_rows(&adv, n)?,
    )?;
    let meta = Meta {
        tool: "evaluator robust",
        version: env!("CARGO_PKG_VERSION"),
        dataset: session.dataset,
        set_seed: config.seed,
        config,
        device: device_name(device),
        models: models.iter().map(|m| m.entry()).collect(),
        robust_dir: adv.dir.display().to_string(),
        robust_meta_sha256: adv.meta_sha256.clone(),
        n,
        eps: adv.radii.clone(),
        rejection: &rejectors,
        rejection_extra: &extra,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    artifacts::write_json(&meta_path, &meta)?;
    Ok(out)
}
