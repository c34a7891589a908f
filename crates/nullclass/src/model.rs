//! The MNIST CNN of the report's Table 1 (method-notes.md), with 11 logits: index 10
//! is the null class for every model, the baseline included.
//!
//! Parameter names follow PyTorch (`conv1.weight` ...), so a checkpoint loads into
//! the equivalent `torch.nn.Module` with `load_state_dict(strict=True)`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

use crate::artifacts::{self, SetDir};
use crate::dataset::DataSet;
use crate::nulls::Variant;

pub const NUM_CLASSES: i64 = 11;
pub const NULL_CLASS: i64 = 10;

/// Glorot (Xavier) uniform, as Keras initialises kernels: U(-a, a) with
/// a = sqrt(6 / (fan_in + fan_out)), where a conv's fans include its kernel area.
pub fn glorot_uniform(fan_in: i64, fan_out: i64) -> nn::Init {
    let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
    nn::Init::Uniform { lo: -a, up: a }
}

fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        ws_init: glorot_uniform(c_in * k * k, c_out * k * k),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

fn linear(p: nn::Path, d_in: i64, d_out: i64) -> nn::Linear {
    let cfg = nn::LinearConfig {
        ws_init: glorot_uniform(d_in, d_out),
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    nn::linear(p, d_in, d_out, cfg)
}

#[derive(Debug)]
pub struct MnistCnn {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl MnistCnn {
    pub fn new(p: &nn::Path) -> Self {
        Self {
            conv1: conv(p / "conv1", 1, 32, 3),
            conv2: conv(p / "conv2", 32, 64, 3),
            fc1: linear(p / "fc1", 9216, 128),
            fc2: linear(p / "fc2", 128, NUM_CLASSES),
        }
    }

    /// Every parameter's name and shape, as a checkpoint must hold them.
    pub fn parameter_shapes() -> Vec<(&'static str, Vec<i64>)> {
        vec![
            ("conv1.weight", vec![32, 1, 3, 3]),
            ("conv1.bias", vec![32]),
            ("conv2.weight", vec![64, 32, 3, 3]),
            ("conv2.bias", vec![64]),
            ("fc1.weight", vec![128, 9216]),
            ("fc1.bias", vec![128]),
            ("fc2.weight", vec![NUM_CLASSES, 128]),
            ("fc2.bias", vec![NUM_CLASSES]),
        ]
    }
}

impl ModuleT for MnistCnn {
    /// Images `[N,28,28]` or `[N,1,28,28]` in [0, 1] to logits `[N,11]`.
    // Written as reassignments rather than one method chain: each intermediate is freed
    // as soon as the next exists, which keeps glibc from returning and re-faulting big
    // buffers every step (toolchain.md measured this as the gap to PyTorch on CPU).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.view([-1, 1, 28, 28]).apply(&self.conv1);
        x = x.relu_();
        x = x.apply(&self.conv2);
        x = x.relu_();
        x = x.max_pool2d_default(2);
        x = x.dropout(0.25, train);
        x = x.flatten(1, -1);
        x = x.apply(&self.fc1);
        x = x.relu_();
        x = x.dropout(0.5, train);
        x.apply(&self.fc2)
    }
}

impl MnistCnn {
    /// Training forward with dropout masks given rather than drawn: `keep1` covers the
    /// pooled conv features (`[N,9216]` or `[N,64,12,12]`), `keep2` the hidden layer
    /// (`[N,128]`), each holding 0 or 1/(1-p). Drawing the masks outside lets the
    /// trainer take them from a counter-based stream that the stacked trainer
    /// reproduces exactly ([`crate::stacked`]). `None` is the inference forward.
    pub fn forward_masked(&self, xs: &Tensor, keep: Option<(&Tensor, &Tensor)>) -> Tensor {
        let mut x = xs.view([-1, 1, 28, 28]).apply(&self.conv1);
        x = x.relu_();
        x = x.apply(&self.conv2);
        x = x.relu_();
        x = x.max_pool2d_default(2);
        if let Some((keep1, _)) = keep {
            // Not `*=`: in place would overwrite what autograd saved.
            x = x.g_mul(&keep1.view([-1, 64, 12, 12]));
        }
        x = x.flatten(1, -1);
        x = x.apply(&self.fc1);
        x = x.relu_();
        if let Some((_, keep2)) = keep {
            x = x.g_mul(&keep2.view([-1, 128]));
        }
        x.apply(&self.fc2)
    }
}

/// Reads a safetensors checkpoint that must hold exactly `expected`'s tensor names
/// and shapes; every error names the file. `what` names the kind of model.
pub fn read_checkpoint(
    path: &Path,
    expected: &[(&str, Vec<i64>)],
    what: &str,
) -> Result<HashMap<String, Tensor>> {
    let tensors = Tensor::read_safetensors(path)
        .with_context(|| format!("cannot read {what} checkpoint {}", path.display()))?;
    let found: HashMap<String, Tensor> = tensors.into_iter().collect();
    for (name, shape) in expected {
        match found.get(*name) {
            None => bail!("{}: checkpoint has no tensor {name}", path.display()),
            Some(t) if t.size() != *shape => bail!(
                "{}: tensor {name} has shape {:?}, expected {:?}",
                path.display(),
                t.size(),
                shape
            ),
            Some(_) => {}
        }
    }
    if let Some(extra) = found.keys().find(|k| !expected.iter().any(|(n, _)| n == k)) {
        bail!(
            "{}: checkpoint has an unexpected tensor {extra}",
            path.display()
        );
    }
    Ok(found)
}

/// A model with its variables, ready for inference or training.
pub struct LoadedModel {
    pub vs: nn::VarStore,
    pub net: MnistCnn,
}

impl LoadedModel {
    /// A freshly initialised model (the global torch seed decides the weights).
    pub fn fresh(device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let net = MnistCnn::new(&vs.root());
        Self { vs, net }
    }

    /// Loads a checkpoint, requiring exactly the model's tensor names and shapes.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let model = Self::fresh(device);
        let found = read_checkpoint(path, &MnistCnn::parameter_shapes(), "model")?;
        let mut vars = model.vs.variables();
        tch::no_grad(|| -> Result<()> {
            for (name, var) in vars.iter_mut() {
                var.f_copy_(&found[name.as_str()])
                    .with_context(|| format!("{}: cannot load tensor {name}", path.display()))?;
            }
            Ok(())
        })?;
        Ok(model)
    }

    /// Logits for a batch, without dropout or gradients.
    pub fn logits(&self, xs: &Tensor) -> Tensor {
        tch::no_grad(|| self.net.forward_t(xs, false))
    }

    /// Predicted classes for many images, in chunks of `batch`.
    pub fn predict(&self, images: &Tensor, batch: i64) -> Tensor {
        let n = images.size()[0];
        let chunks: Vec<Tensor> = (0..n)
            .step_by(batch.max(1) as usize)
            .map(|s| {
                self.logits(&images.narrow(0, s, batch.min(n - s)))
                    .argmax(1, false)
            })
            .collect();
        Tensor::cat(&chunks, 0)
    }
}

/// One model of a set, loaded, with where it came from (the attack and the scores
/// record the file's hash, so that a retrained model is noticed downstream).
pub struct SetModel {
    pub name: String,
    pub file: PathBuf,
    pub sha256: String,
    pub model: LoadedModel,
}

/// What a tool's meta.json records of a [`SetModel`].
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

/// Fails when the model's JSON says it was trained on another data set than
/// `dataset`. A checkpoint without its JSON (placed by hand, or by a test) is
/// taken to be of the root's data set.
pub fn check_model_dataset(set: &SetDir, variant: &Variant, dataset: DataSet) -> Result<()> {
    let json = set.model_json(variant);
    if !json.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&json)
        .with_context(|| format!("cannot read {}", json.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", json.display()))?;
    dataset.check_same(crate::dataset::recorded(&value, &json)?, &json)
}

/// All 8 models of the set, in [`Variant::ALL`] order; names every missing file at
/// once, and refuses a model trained on another data set than `dataset`.
pub fn load_set_models(set: &SetDir, dataset: DataSet, device: Device) -> Result<Vec<SetModel>> {
    load_models(set, &Variant::all(), dataset, device)
}

/// The models `variants` of the set, in that order, checked as [`load_set_models`]
/// checks all 8.
pub fn load_models(
    set: &SetDir,
    variants: &[Variant],
    dataset: DataSet,
    device: Device,
) -> Result<Vec<SetModel>> {
    let missing: Vec<String> = variants
        .iter()
        .map(|v| set.model(v))
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "set folder {} has {} of the {} models asked for; missing: {}",
            set.dir.display(),
            variants.len() - missing.len(),
            variants.len(),
            missing.join(", ")
        );
    }
    variants
        .iter()
        .map(|v| {
            check_model_dataset(set, v, dataset)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_parameter_count() {
        let m = LoadedModel::fresh(Device::Cpu);
        let out = m.logits(&Tensor::rand([5, 28, 28], (tch::Kind::Float, Device::Cpu)));
        assert_eq!(out.size(), [5, NUM_CLASSES]);
        let vars = m.vs.variables();
        let total: i64 = vars.values().map(|t| t.numel() as i64).sum();
        assert_eq!(total, 1_200_011);
        for (name, shape) in MnistCnn::parameter_shapes() {
            assert_eq!(vars[name].size(), shape, "{name}");
        }
        assert_eq!(vars.len(), 8);
    }

    #[test]
    fn glorot_bounds_and_zero_bias() {
        let m = LoadedModel::fresh(Device::Cpu);
        let vars = m.vs.variables();
        let a = (6.0f64 / (9216.0 + 128.0)).sqrt();
        let w = &vars["fc1.weight"];
        assert!(w.abs().max().double_value(&[]) <= a);
        assert!(w.abs().max().double_value(&[]) > 0.9 * a);
        assert_eq!(
            vars["conv1.bias"]
                .abs()
                .sum(tch::Kind::Double)
                .double_value(&[]),
            0.0
        );
    }

    #[test]
    fn save_load_roundtrip_and_bad_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let m = LoadedModel::fresh(Device::Cpu);
        let path = dir.path().join("m.safetensors");
        m.vs.save(&path).unwrap();
        let back = LoadedModel::load(&path, Device::Cpu).unwrap();
        let x = Tensor::rand([3, 28, 28], (tch::Kind::Float, Device::Cpu));
        assert!(m.logits(&x).equal(&back.logits(&x)));

        let bad = dir.path().join("bad.safetensors");
        let w = Tensor::zeros([2, 2], (tch::Kind::Float, Device::Cpu));
        Tensor::write_safetensors(&[("conv1.weight", &w)], &bad).unwrap();
        let err = LoadedModel::load(&bad, Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("bad.safetensors") && err.contains("conv1.weight"),
            "{err}"
        );

        std::fs::write(&bad, b"not a checkpoint").unwrap();
        let err = format!("{:#}", LoadedModel::load(&bad, Device::Cpu).err().unwrap());
        assert!(err.contains("bad.safetensors"), "{err}");
    }
}
