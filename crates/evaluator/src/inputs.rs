//! Reading and checking what the evaluator scores: the FGSM folder adversary-gen
//! wrote (the set's 8 models come from [`load_set_models`]). Every check runs before anything is written.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nullclass::artifacts;
use nullclass::dataset::{recorded, DataSet, Split};
use nullclass::fgsm;
pub use nullclass::model::{load_set_models, ModelEntry, SetModel};
use nullclass::npy;
use tch::{Device, Kind, Tensor};

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

/// A non-empty one-dimensional array of `kind` (labels, epsilons).
pub fn read_vector(path: &Path, kind: Kind) -> Result<Tensor> {
    let t = npy::read(path)?;
    if t.kind() != kind || t.dim() != 1 || t.numel() == 0 {
        let (dtype, len) = if kind == Kind::Int64 {
            ("int64", "N")
        } else {
            ("float32", "E")
        };
        bail!(
            "{}: expected a non-empty {dtype} [{len}] array",
            path.display()
        );
    }
    Ok(t)
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

/// Checks that `sources` (float32 `[N,28,28]`) and `labels` (int64 `[N]`), read from
/// `dir`, are the test images and labels at `dir/test_indices.npy`: an adversarial set
/// made from another data set, or edited, is refused before it is scored.
pub fn check_sources(dir: &Path, sources: &Tensor, labels: &Tensor, test: &Split) -> Result<()> {
    let n = labels.size()[0];
    let indices = read_checked(dir, "test_indices.npy", Kind::Int64, &[n])?;
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
    if !test_images.equal(&sources.to_device(Device::Cpu)) {
        bad(
            "source_images.npy",
            "images differ from the test images at test_indices.npy",
        )?;
    }
    if !test_labels.equal(&labels.to_device(Device::Cpu)) {
        bad(
            "labels.npy",
            "labels differ from the test labels at test_indices.npy",
        )?;
    }
    Ok(())
}

/// Reads the FGSM folder and checks it against itself, against the test set it claims
/// to come from, and against the baseline model it claims to be made from.
pub fn load_fgsm(
    dir: &Path,
    dataset: DataSet,
    test: &Split,
    baseline: &SetModel,
    device: Device,
) -> Result<FgsmSet> {
    let meta_path = dir.join("meta.json");
    let text = std::fs::read_to_string(&meta_path).with_context(|| {
        format!(
            "cannot read {} (run adversary-gen first)",
            meta_path.display()
        )
    })?;
    let meta: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", meta_path.display()))?;
    dataset.check_same(recorded(&meta, &meta_path)?, &meta_path)?;
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

    let labels = read_vector(&dir.join("labels.npy"), Kind::Int64)?;
    let n = labels.size()[0];
    let image = [n, 28, 28];
    let sources = read_checked(dir, "source_images.npy", Kind::Float, &image)?;
    let signs = read_checked(dir, "signed_grads.npy", Kind::Float, &image)?;
    let threshold = read_checked(dir, "eps_threshold.npy", Kind::Float, &[n])?;
    let adv = read_checked(dir, "adv_images.npy", Kind::Float, &image)?;

    let bad =
        |name: &str, what: &str| -> Result<()> { bail!("{}: {what}", dir.join(name).display()) };
    check_sources(dir, &sources, &labels, test)?;
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
    let eps = read_vector(&dir.join("sweep_eps.npy"), Kind::Float)
        .context("run adversary-gen with --save-sweep")?;
    let e = eps.size()[0];
    let images = read_checked(dir, "sweep_images.npy", Kind::Float, &[e, n, 28, 28])?;
    Ok((Vec::try_from(&eps)?, images))
}
