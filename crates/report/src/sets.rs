//! Finding and reading the sets under an artifacts root. A set with a missing or
//! unreadable file is kept aside with the reason, so the report can name it instead
//! of silently averaging over fewer sets. The optional robustness outputs are the
//! exception: they never set a set aside (see `robust`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use nullclass::dataset::DataSet;
use nullclass::model::NULL_CLASS;
use nullclass::nulls::Variant;
use serde::Deserialize;

use crate::arrays::{self, ANY};
use crate::csv_rows;
use crate::robust::{self, Robust};

/// How many adversarial images Figures 7, 8 and 11-17 show.
pub const EXAMPLES: usize = 30;

/// The three outcomes of scoring one image, in the order of every table and figure.
pub const OUTCOMES: [&str; 3] = ["correct", "misclassified", "unclassified"];

/// The baseline's predictions of the 1.5 x images (Figure 8), by `evaluator fgsm`.
pub const BASE_1_5_FILE: &str = "eval/base_x1.5_predictions.npy";

/// Files every set must have, relative to its folder.
pub fn required_files() -> Vec<String> {
    let mut files: Vec<String> = Variant::ALL
        .iter()
        .map(|v| format!("models/{v}.json"))
        .collect();
    files.extend(
        [
            "eval/clean.csv",
            "eval/threshold.csv",
            "eval/sweep.csv",
            "eval/threshold_predictions.npy",
            BASE_1_5_FILE,
            // Written last by the evaluator: without it the scores may be half-written.
            "eval/meta.json",
            "adversarial/fgsm/labels.npy",
            "adversarial/fgsm/eps_threshold.npy",
            "adversarial/fgsm/adv_images.npy",
            "adversarial/fgsm/adv_images_x1.5.npy",
            "adversarial/fgsm/meta.json",
        ]
        .map(String::from),
    );
    files
}

/// How many of `n` images one model scored correct, misclassified and unclassified.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutcomeCounts {
    pub n: u64,
    pub outcomes: [u64; 3],
}

impl OutcomeCounts {
    /// Percent of `n` per outcome.
    pub fn percents(&self) -> [f64; 3] {
        self.outcomes.map(|c| 100.0 * c as f64 / self.n as f64)
    }
}

/// What the report shows of one model's training record.
#[derive(Debug, Deserialize)]
pub struct ModelRecord {
    pub variant: String,
    /// MNIST when absent: trained before there was a second data set.
    #[serde(default)]
    pub dataset: DataSet,
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    pub device: Option<String>,
    pub threads: Option<u64>,
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
    #[serde(default)]
    pub history: Vec<serde_json::Value>,
    pub best_epoch: Option<u64>,
    pub wall_seconds: Option<f64>,
    pub ms_per_step: Option<f64>,
}

impl ModelRecord {
    /// A training setting as text, "n/a" when the record lacks it.
    pub fn setting(&self, key: &str) -> String {
        match self.config.get(key) {
            None | Some(serde_json::Value::Null) => "n/a".to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        }
    }
}

/// What the report shows of adversary-gen's and the evaluator's meta.json.
#[derive(Debug, Default, Deserialize)]
pub struct ToolMeta {
    #[serde(default)]
    pub dataset: DataSet,
    /// The tool's settings (`strength` reads how many images it attacked).
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    pub device: Option<String>,
    pub version: Option<String>,
    pub wall_seconds: Option<f64>,
}

/// A prediction: class (10 = null) and its softmax probability.
pub type Prediction = (i64, f64);

/// The first [`EXAMPLES`] adversarial images of a set and how they were scored.
#[derive(Debug)]
pub struct Examples {
    pub labels: Vec<i64>,
    /// 28 x 28 images, row-major, at the threshold and at 1.5 x the threshold.
    pub at_threshold: Vec<Vec<f32>>,
    pub at_1_5: Vec<Vec<f32>>,
    /// Per model (`Variant::ALL` order), its predictions of the threshold images.
    pub threshold_predictions: Vec<Vec<Prediction>>,
    /// The baseline's predictions of the 1.5 x images, as `evaluator fgsm` saved them.
    pub base_at_1_5: Vec<Prediction>,
}

#[derive(Debug)]
pub struct Set {
    pub name: String,
    /// What every model, the attack and the scores were made from.
    pub dataset: DataSet,
    /// Per model, `Variant::ALL` order.
    pub models: Vec<ModelRecord>,
    /// Per model: clean test accuracy and null rate, percent.
    pub clean: Vec<[f64; 2]>,
    pub threshold: Vec<OutcomeCounts>,
    pub sweep_eps: Vec<f64>,
    /// Per model, per epsilon of `sweep_eps`.
    pub sweep: Vec<Vec<OutcomeCounts>>,
    pub eps_threshold: Vec<f64>,
    /// The label of each adversarial image's source, as `eps_threshold`.
    pub labels: Vec<i64>,
    pub attack: ToolMeta,
    pub eval: ToolMeta,
    pub examples: Examples,
    /// The optional outputs of `make robust`; never a reason to skip the set.
    pub robust: Robust,
}

#[derive(Debug, Clone)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

#[derive(Debug)]
pub struct Found {
    pub sets: Vec<Set>,
    pub skipped: Vec<Skipped>,
}

/// Every `seed-NN` folder under `root`, in seed order, read or set aside.
pub fn find(root: &Path) -> Result<Found> {
    let entries = fs::read_dir(root)
        .with_context(|| format!("cannot list the artifacts folder {}", root.display()))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", root.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let seed = name
            .strip_prefix("seed-")
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(seed) = seed {
            if entry.path().is_dir() {
                dirs.push((seed, name, entry.path()));
            }
        }
    }
    dirs.sort();
    let mut found = Found {
        sets: Vec::new(),
        skipped: Vec::new(),
    };
    for (_, name, dir) in dirs {
        let missing: Vec<String> = required_files()
            .into_iter()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            found.skipped.push(Skipped {
                name,
                reason: format!("missing {}", missing.join(", ")),
            });
            continue;
        }
        match read_set(&name, &dir) {
            Ok(set) => found.sets.push(set),
            Err(e) => found.skipped.push(Skipped {
                name,
                reason: format!("{e:#}"),
            }),
        }
    }
    Ok(found)
}

fn read_set(name: &str, dir: &Path) -> Result<Set> {
    let models = Variant::ALL
        .iter()
        .map(|v| {
            let path = dir.join(format!("models/{v}.json"));
            let record: ModelRecord = read_json(&path)?;
            ensure!(
                record.variant == *v,
                "{}: variant is {:?}, expected {v:?}",
                path.display(),
                record.variant
            );
            Ok(record)
        })
        .collect::<Result<Vec<_>>>()?;

    let eps_threshold = read_f64(&dir.join("adversarial/fgsm/eps_threshold.npy"))?;
    let n = eps_threshold.len() as u64;
    ensure!(n > 0, "adversarial/fgsm/eps_threshold.npy is empty");

    let clean = read_clean(&dir.join("eval/clean.csv"))?;
    let threshold = read_threshold(&dir.join("eval/threshold.csv"), n)?;
    let (sweep_eps, sweep) = read_sweep(&dir.join("eval/sweep.csv"), n)?;
    let attack: ToolMeta = read_json(&dir.join("adversarial/fgsm/meta.json"))?;
    let eval: ToolMeta = read_json(&dir.join("eval/meta.json"))?;
    let (examples, labels) = read_examples(dir, n as i64)?;
    let dataset = models[0].dataset;
    let made_from = models
        .iter()
        .map(|m| (format!("models/{}.json", m.variant), m.dataset))
        .chain([
            ("adversarial/fgsm/meta.json".to_string(), attack.dataset),
            ("eval/meta.json".to_string(), eval.dataset),
        ]);
    for (file, found) in made_from {
        ensure!(
            found == dataset,
            "{file} was made from {}, models/base.json from {}: data sets cannot be mixed",
            found.title(),
            dataset.title()
        );
    }
    Ok(Set {
        name: name.to_string(),
        dataset,
        models,
        clean,
        threshold,
        sweep_eps,
        sweep,
        eps_threshold,
        labels,
        attack,
        eval,
        examples,
        robust: robust::read(dir),
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not the expected JSON", path.display()))
}

fn read_f64(path: &Path) -> Result<Vec<f64>> {
    Ok(arrays::f32s(path, &[ANY])?
        .1
        .into_iter()
        .map(f64::from)
        .collect())
}

/// Rows of a CSV with exactly `header`, each checked to name a model and collected
/// per model.
fn read_rows<R: serde::de::DeserializeOwned>(
    path: &Path,
    header: &[&str],
    model: impl Fn(&R) -> &str,
) -> Result<Vec<Vec<R>>> {
    let mut per_model: Vec<Vec<R>> = Variant::ALL.iter().map(|_| Vec::new()).collect();
    for (line, row) in csv_rows::read::<R>(path, header)? {
        let name = model(&row);
        let Some(k) = Variant::ALL.iter().position(|v| *v == name) else {
            bail!(
                "{}: row {line} names an unknown model {name:?}",
                path.display()
            );
        };
        per_model[k].push(row);
    }
    if let Some(k) = per_model.iter().position(Vec::is_empty) {
        bail!("{}: no row for model {}", path.display(), Variant::ALL[k]);
    }
    Ok(per_model)
}

fn one_row<R>(path: &Path, rows: Vec<Vec<R>>) -> Result<Vec<R>> {
    rows.into_iter()
        .enumerate()
        .map(|(k, mut r)| {
            ensure!(
                r.len() == 1,
                "{}: {} rows for model {}, expected one",
                path.display(),
                r.len(),
                Variant::ALL[k]
            );
            Ok(r.remove(0))
        })
        .collect()
}

/// The evaluator's headers (evaluator/src/scores.rs).
const CLEAN_HEADER: [&str; 4] = ["model", "n", "accuracy", "null_rate"];
const THRESHOLD_HEADER: [&str; 5] = ["model", "n", "correct", "misclassified", "unclassified"];
const SWEEP_HEADER: [&str; 6] = [
    "model",
    "eps",
    "n",
    "correct",
    "misclassified",
    "unclassified",
];

#[derive(Deserialize)]
struct CleanRow {
    model: String,
    n: u64,
    accuracy: f64,
    null_rate: f64,
}

fn read_clean(path: &Path) -> Result<Vec<[f64; 2]>> {
    let rows = one_row(
        path,
        read_rows(path, &CLEAN_HEADER, |r: &CleanRow| &r.model)?,
    )?;
    rows.iter()
        .map(|r| {
            let fractions = (0.0..=1.0).contains(&r.accuracy) && (0.0..=1.0).contains(&r.null_rate);
            ensure!(
                fractions && r.n > 0,
                "{}: model {}: accuracy and null_rate must be fractions of n > 0",
                path.display(),
                r.model
            );
            Ok([100.0 * r.accuracy, 100.0 * r.null_rate])
        })
        .collect()
}

#[derive(Deserialize)]
struct CountRow {
    model: String,
    #[serde(default)]
    eps: f64,
    n: u64,
    correct: u64,
    misclassified: u64,
    unclassified: u64,
}

impl CountRow {
    fn counts(&self, path: &Path, expected_n: u64) -> Result<OutcomeCounts> {
        let outcomes = [self.correct, self.misclassified, self.unclassified];
        ensure!(
            self.n == expected_n && outcomes.iter().sum::<u64>() == self.n,
            "{}: model {}: counts {outcomes:?} of n = {} do not add up to the {expected_n} adversarial images",
            path.display(),
            self.model,
            self.n
        );
        Ok(OutcomeCounts {
            n: self.n,
            outcomes,
        })
    }
}

fn read_threshold(path: &Path, n: u64) -> Result<Vec<OutcomeCounts>> {
    let rows = one_row(
        path,
        read_rows(path, &THRESHOLD_HEADER, |r: &CountRow| &r.model)?,
    )?;
    rows.iter().map(|r| r.counts(path, n)).collect()
}

fn read_sweep(path: &Path, n: u64) -> Result<(Vec<f64>, Vec<Vec<OutcomeCounts>>)> {
    let mut per_model = read_rows(path, &SWEEP_HEADER, |r: &CountRow| &r.model)?;
    for rows in &mut per_model {
        rows.sort_by(|a, b| a.eps.total_cmp(&b.eps));
    }
    let eps: Vec<f64> = per_model[0].iter().map(|r| r.eps).collect();
    for (k, rows) in per_model.iter().enumerate() {
        let same =
            rows.len() == eps.len() && rows.iter().zip(&eps).all(|(r, e)| (r.eps - e).abs() < 1e-9);
        ensure!(
            same,
            "{}: model {} was swept over other epsilons than model base",
            path.display(),
            Variant::ALL[k]
        );
    }
    let counts = per_model
        .iter()
        .map(|rows| {
            rows.iter()
                .map(|r| r.counts(path, n))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((eps, counts))
}

/// Predictions saved as float32 pairs (class, probability), checked to be classes.
fn predictions(path: &Path, pairs: &[f32]) -> Result<Vec<Prediction>> {
    pairs
        .chunks(2)
        .map(|p| {
            let class = p[0].round() as i64;
            ensure!(
                p[0] == class as f32
                    && (0..=NULL_CLASS).contains(&class)
                    && (0.0..=1.0).contains(&p[1]),
                "{}: ({}, {}) is no (class, probability) pair",
                path.display(),
                p[0],
                p[1]
            );
            Ok((class, p[1] as f64))
        })
        .collect()
}

/// The examples and the labels of all `n` images.
fn read_examples(dir: &Path, n: i64) -> Result<(Examples, Vec<i64>)> {
    let k = n.min(EXAMPLES as i64) as usize;
    let fgsm = dir.join("adversarial/fgsm");
    let labels_path = fgsm.join("labels.npy");
    let (_, labels) = arrays::i64s(&labels_path, &[n])?;
    if let Some(bad) = labels.iter().find(|l| !(0..10).contains(*l)) {
        bail!("{}: label {bad} is not a class 0-9", labels_path.display());
    }
    let images = |file: &str| -> Result<Vec<Vec<f32>>> {
        let (_, pixels) = arrays::f32s(&fgsm.join(file), &[n, 28, 28])?;
        Ok(arrays::images(&pixels[..k * 784]))
    };
    let pred_path = dir.join("eval/threshold_predictions.npy");
    let (_, pred) = arrays::f32s(&pred_path, &[8, n, 2])?;
    let threshold_predictions = pred
        .chunks(2 * n as usize)
        .map(|model| predictions(&pred_path, &model[..2 * k]))
        .collect::<Result<Vec<_>>>()?;
    let base_path = dir.join(BASE_1_5_FILE);
    let (_, base) = arrays::f32s(&base_path, &[n, 2])?;
    let examples = Examples {
        labels: labels[..k].to_vec(),
        at_threshold: images("adv_images.npy")?,
        at_1_5: images("adv_images_x1.5.npy")?,
        threshold_predictions,
        base_at_1_5: predictions(&base_path, &base[..2 * k])?,
    };
    Ok((examples, labels))
}
