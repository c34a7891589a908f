//! K MNIST CNNs as one network.
//!
//! Parameters are stacked along a leading model axis (`conv1.weight` is
//! `[K,32,1,3,3]`, `fc1.weight` `[K,128,9216]`, ...). The convolutions run as one
//! grouped convolution over a `[B, K*C, H, W]` activation (model k owns channels
//! `k*C..(k+1)*C`), the dense layers as batched matmuls over `[K,B,...]`. No
//! operation mixes two models, so the gradient of a sum of per-model losses gives
//! each model exactly its own gradient, and an element-wise optimiser such as Adam
//! updates each model as it would alone.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use crate::model::MnistCnn;

/// How the convolutions of K models are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Convs {
    /// conv1 and conv2 as one grouped convolution each (K groups): the fewest
    /// kernels, for GPUs.
    #[default]
    Grouped,
    /// conv1 (one input channel per model) as im2col plus one batched matmul
    /// `[K,32,9] x [K,9,B*676]`, conv2 grouped.
    Im2col,
    /// Each model's convolutions on their own, then stacked: on CPUs, where the
    /// grouped kernels are slower per model and kernel launches cost nothing.
    PerModel,
}

impl FromStr for Convs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "grouped" => Ok(Self::Grouped),
            "im2col" => Ok(Self::Im2col),
            "per-model" => Ok(Self::PerModel),
            _ => Err(format!(
                "unknown convolution method {s:?}: use grouped, im2col or per-model"
            )),
        }
    }
}

impl std::fmt::Display for Convs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Grouped => "grouped",
            Self::Im2col => "im2col",
            Self::PerModel => "per-model",
        })
    }
}

/// K models' parameters, stacked, in a VarStore of their own (for the optimiser).
pub struct StackedCnn {
    pub vs: VarStore,
    k: i64,
    convs: Convs,
    /// In the order of [`MnistCnn::parameter_shapes`]; the dense weights are held
    /// transposed, `[K,in,out]`: CPU batched matmuls (and their backward) are several
    /// times faster that way round than on `[K,out,in]` transposed views.
    params: Vec<Tensor>,
}

/// Dense weights, stored transposed (see [`StackedCnn::params`]).
fn is_dense_weight(name: &str) -> bool {
    name.starts_with("fc") && name.ends_with(".weight")
}

impl StackedCnn {
    /// Stacks the given models' variables (PyTorch names, as `VarStore::variables`
    /// returns them); their kind becomes the stack's kind.
    pub fn from_models(
        models: &[HashMap<String, Tensor>],
        device: Device,
        convs: Convs,
    ) -> Result<Self> {
        let kind = models
            .first()
            .context("a stack needs at least one model")?
            .get("fc1.weight")
            .context("model 0 has no fc1.weight")?
            .kind();
        let mut vs = VarStore::new(device);
        // var_copy creates each variable in the store's kind before copying into it.
        vs.set_kind(kind);
        let root = vs.root();
        let mut params = Vec::new();
        for (name, shape) in MnistCnn::parameter_shapes() {
            let parts = models
                .iter()
                .enumerate()
                .map(|(k, m)| {
                    let t = m
                        .get(name)
                        .with_context(|| format!("model {k} has no {name}"))?;
                    if t.size() != shape {
                        bail!(
                            "model {k}: {name} has shape {:?}, expected {shape:?}",
                            t.size()
                        );
                    }
                    let t = t.detach().to_device(device);
                    Ok(if is_dense_weight(name) { t.tr() } else { t })
                })
                .collect::<Result<Vec<_>>>()?;
            let (layer, leaf) = name
                .split_once('.')
                .context("parameter names are layer.leaf")?;
            params.push((&root / layer).var_copy(leaf, &Tensor::stack(&parts, 0)));
        }
        Ok(Self {
            vs,
            k: models.len() as i64,
            convs,
            params,
        })
    }

    pub fn models(&self) -> i64 {
        self.k
    }

    pub fn convs(&self) -> Convs {
        self.convs
    }

    /// Images `[K,B,1,28,28]` (model k's batch in row k) to logits `[K,B,11]`.
    /// `keep` holds the dropout keep masks `[K,B,9216]` and `[K,B,128]` (0 or
    /// 1/(1-p), in the order [`MnistCnn::forward_masked`] applies them), or `None`
    /// for inference.
    pub fn forward(&self, xs: &Tensor, keep: Option<(&Tensor, &Tensor)>) -> Tensor {
        let k = self.k;
        let [_, _, _, _, fw1, fb1, fw2, fb2] = &self.params[..] else {
            unreachable!("eight parameters")
        };
        let batch = xs.size()[1];
        // Reassignments rather than a chain: each intermediate is freed as soon as
        // the next exists (see MnistCnn::forward_t).
        let mut x = self.features(xs, batch);
        if let Some((keep1, _)) = keep {
            // Not `*=`: in place would overwrite what autograd saved.
            x = x.g_mul(&keep1.view([k, batch, 9216]));
        }
        x = fb1.unsqueeze(1).baddbmm(&x, fw1, 1, 1);
        x = x.relu_();
        if let Some((_, keep2)) = keep {
            x = x.g_mul(&keep2.view([k, batch, 128]));
        }
        fb2.unsqueeze(1).baddbmm(&x, fw2, 1, 1)
    }

    /// conv1, ReLU, conv2, ReLU, max-pool: `[K,B,1,28,28]` to `[K,B,9216]`, each
    /// model's features in MnistCnn's flatten order.
    fn features(&self, xs: &Tensor, batch: i64) -> Tensor {
        let k = self.k;
        let [w1, b1, w2, b2, ..] = &self.params[..] else {
            unreachable!("eight parameters")
        };
        let conv = |x: &Tensor, w: &Tensor, b: &Tensor, groups: i64| {
            x.conv2d(w, Some(b), [1, 1], [0, 0], [1, 1], groups)
        };
        if self.convs == Convs::PerModel {
            let parts: Vec<Tensor> = (0..k)
                .map(|i| {
                    let mut x = conv(
                        &xs.get(i).reshape([batch, 1, 28, 28]),
                        &w1.get(i),
                        &b1.get(i),
                        1,
                    );
                    x = x.relu_();
                    x = conv(&x, &w2.get(i), &b2.get(i), 1);
                    x = x.relu_();
                    x.max_pool2d_default(2).view([batch, 9216])
                })
                .collect();
            return Tensor::stack(&parts, 0);
        }
        // Grouped: model k owns channels k*C..(k+1)*C of one [B, K*C, H, W] activation.
        let mut x = if self.convs == Convs::Im2col {
            let cols = xs
                .reshape([k * batch, 1, 28, 28])
                .im2col([3, 3], [1, 1], [0, 0], [1, 1])
                .view([k, batch, 9, 676])
                .permute([0, 2, 1, 3])
                .reshape([k, 9, batch * 676]);
            b1.view([k, 32, 1])
                .baddbmm(&w1.view([k, 32, 9]), &cols, 1, 1)
                .view([k, 32, batch, 26, 26])
                .permute([2, 0, 1, 3, 4])
                .reshape([batch, k * 32, 26, 26])
        } else {
            let x = xs.reshape([k, batch, 28, 28]).transpose(0, 1).contiguous();
            conv(&x, &w1.view([k * 32, 1, 3, 3]), &b1.view([k * 32]), k)
        };
        x = x.relu_();
        x = conv(&x, &w2.view([k * 64, 32, 3, 3]), &b2.view([k * 64]), k);
        x = x.relu_();
        x = x.max_pool2d_default(2);
        x.view([batch, k, 9216]).transpose(0, 1)
    }

    /// Model k's parameters under the usual names and shapes, as detached copies on
    /// the stack's device (what a snapshot of the best epoch keeps).
    pub fn model_tensors(&self, k: i64) -> Vec<(String, Tensor)> {
        MnistCnn::parameter_shapes()
            .iter()
            .zip(&self.params)
            .map(|((name, _), p)| {
                let t = p.get(k).detach();
                let t = if is_dense_weight(name) { t.tr() } else { t };
                (name.to_string(), t.contiguous().copy())
            })
            .collect()
    }
}

/// Writes one model's tensors as a checkpoint, in the same format (and, for the
/// same values, the same bytes) as `VarStore::save` of a [`crate::model::LoadedModel`].
pub fn save_model(tensors: &[(String, Tensor)], path: &Path) -> Result<()> {
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.to_device(Device::Cpu).contiguous()))
        .collect();
    Tensor::write_safetensors(&cpu, path)
        .with_context(|| format!("cannot write {}", path.display()))
}
