//! Reading and checking what the evaluator scores: the set's 8 models and the FGSM
//! folder adversary-gen wrote. Every check runs before anything is written.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nullclass::artifacts::{self, SetDir};
use nullclass::dataset::Split;
use nullclass::fgsm;
use nullclass::model::LoadedModel;
use nullclass::npy;
use nullclass::nulls::Variant;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

/// A loaded model with where it came from.
pub struct SetModel {
    pub name: String,
    pub file: PathBuf,
    pub sha256: String,
    pub model: LoadedModel,
}

#[derive(Debug, Serialize)]
pub struct ModelEntry {
    pub name: String,
    pub file: String,
    pub sha256: String,
}

impl SetModel {
    pub fn entry(&self) -> ModelEntry {
        ModelEntry {
            name: self.name.clone(),
            file: self.file.display().to_string(),
            sha256: self.sha256.clone(),
        }
    }
}

/// All 8 models of the set, in [`Variant::ALL`] order; names every missing file at once.
pub fn load_models(set: &SetDir, device: Device) -> Result<Vec<SetModel>> {
    let variants = Variant::all();
    let missing: Vec<String> = variants
        .iter()
        .map(|v| set.model(v))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "set folder {} has {} of its 8 models; missing: {}",
            set.dir.display(),
            8 - missing.len(),
            missing.join(", ")
        );
    }
    variants
        .iter()
        .map(|v| {
            let file = set.model(v);
            let model = LoadedModel::load(&file, device)?;
            let sha256 = artifacts::sha256_file(&file)?;
            Ok(SetModel {
                name: v.name(),
                file,
                sha256,
                model,
            })
        })
        .collect()
}

/// The FGSM folder's contents, on the scoring device.
pub struct FgsmSet {
    pub dir: PathBuf,
    /// float32 `[N,28,28]`.
    pub sources: Tensor,
    /// int64 `[N]`.
    pub labels: Tensor,
    /// float32 `[N,28,28]`.
    pub signs: Tensor,
    /// float32 `[N]`.
    pub threshold: Tensor,
    /// float32 `[N,28,28]`.
    pub adv: Tensor,
    /// adversary-gen's meta.json, parsed.
    pub meta: serde_json::Value,
    pub meta_sha256: String,
}

impl FgsmSet {
    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn all(t: &Tensor) -> bool {
    t.all().int64_value(&[]) != 0
}

pub fn read_checked(dir: &Path, name: &str, kind: Kind, shape: &[i64]) -> Result<Tensor> {
    let path = dir.join(name);
    let t = npy::read(&path)?;
    if t.kind() != kind || t.size() != shape {
        bail!(
            "{}: expected {kind:?} {shape:?}, found {:?} {:?}",
            path.display(),
            t.kind(),
            t.size()
        );
    }
    Ok(t)
}

/// Reads the FGSM folder and checks it against itself, against the test set it claims
/// to come from, and against the baseline model it claims to be made from.
pub fn load_fgsm(dir: &Path, test: &Split, baseline: &SetModel, device: Device) -> Result<FgsmSet> {
    let meta_path = dir.join("meta.json");
    let text = std::fs::read_to_string(&meta_path).with_context(|| {
        format!(
            "cannot read {} (run adversary-gen first)",
            meta_path.display()
        )
    })?;
    let meta: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", meta_path.display()))?;
    let meta_sha256 = artifacts::sha256_hex(text.as_bytes());
    if meta["model_sha256"].as_str() != Some(baseline.sha256.as_str()) {
        bail!(
            "{} was made from a different baseline than {} (sha256 {} vs {}); rerun adversary-gen",
            dir.display(),
            baseline.file.display(),
            meta["model_sha256"],
            baseline.sha256
        );
    }

    let labels = npy::read(&dir.join("labels.npy"))?;
    let n = labels.size().first().copied().unwrap_or(0);
    if labels.kind() != Kind::Int64 || labels.size() != [n] || n == 0 {
        bail!(
            "{}: expected a non-empty int64 [N] array",
            dir.join("labels.npy").display()
        );
    }
    let image = [n, 28, 28];
    let sources = read_checked(dir, "source_images.npy", Kind::Float, &image)?;
    let indices = read_checked(dir, "test_indices.npy", Kind::Int64, &[n])?;
    let signs = read_checked(dir, "signed_grads.npy", Kind::Float, &image)?;
    let threshold = read_checked(dir, "eps_threshold.npy", Kind::Float, &[n])?;
    let adv = read_checked(dir, "adv_images.npy", Kind::Float, &image)?;

    let bad =
        |name: &str, what: &str| -> Result<()> { bail!("{}: {what}", dir.join(name).display()) };
    let (lo, hi) = (
        indices.min().int64_value(&[]),
        indices.max().int64_value(&[]),
    );
    if lo < 0 || hi >= test.len() {
        bad("test_indices.npy", "indices outside the test set")?;
    }
    let test_images = test
        .images
        .to_device(Device::Cpu)
        .view([-1, 28, 28])
        .index_select(0, &indices);
    let test_labels = test.labels.to_device(Device::Cpu).index_select(0, &indices);
    if !test_images.equal(&sources) {
        bad(
            "source_images.npy",
            "images differ from the test images at test_indices.npy",
        )?;
    }
    if !test_labels.equal(&labels) {
        bad(
            "labels.npy",
            "labels differ from the test labels at test_indices.npy",
        )?;
    }
    if !all(&signs.abs().eq(1.0).logical_or(&signs.eq(0.0))) {
        bad("signed_grads.npy", "values other than -1, 0 and 1")?;
    }
    if !(all(&threshold.isfinite()) && all(&threshold.gt(0.0))) {
        bad(
            "eps_threshold.npy",
            "thresholds must be finite and positive",
        )?;
    }
    // The scored images must be exactly what the threshold search classified.
    if !fgsm::perturb(&sources, &signs, &threshold).equal(&adv) {
        bad(
            "adv_images.npy",
            "images differ from clip(source + threshold * sign, 0, 1)",
        )?;
    }
    Ok(FgsmSet {
        dir: dir.to_path_buf(),
        sources: sources.to_device(device),
        labels: labels.to_device(device),
        signs: signs.to_device(device),
        threshold: threshold.to_device(device),
        adv: adv.to_device(device),
        meta,
        meta_sha256,
    })
}

/// The sweep images adversary-gen saved with --save-sweep: epsilons float32 `[E]` and
/// images float32 `[E,N,28,28]`.
pub fn load_saved_sweep(dir: &Path, n: i64) -> Result<(Vec<f32>, Tensor)> {
    let eps_path = dir.join("sweep_eps.npy");
    let eps =
        npy::read(&eps_path).with_context(|| "run adversary-gen with --save-sweep".to_string())?;
    let e = eps.size().first().copied().unwrap_or(0);
    if eps.kind() != Kind::Float || eps.size() != [e] || e == 0 {
        bail!(
            "{}: expected a non-empty float32 [E] array",
            eps_path.display()
        );
    }
    let images = read_checked(dir, "sweep_images.npy", Kind::Float, &[e, n, 28, 28])?;
    Ok((Vec::try_from(&eps)?, images))
}
