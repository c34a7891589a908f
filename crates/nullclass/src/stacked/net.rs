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
use tch::{Device, Kind, Tensor};

use crate::model::MnistCnn;
use crate::streams::{keep_mask, keep_scale, Purpose};

/// Dropout rates of the report's Table 1: after the pooled conv features, after the
/// hidden dense layer.
pub const DROP_POOLED: f64 = 0.25;
pub const DROP_HIDDEN: f64 = 0.5;
const POOLED: i64 = 9216;
const HIDDEN: i64 = 128;

/// One training step's dropout for K models: boolean keep masks `[K,B*9216]` and
/// `[K,B*128]` from the step's streams (one byte an element, where float masks
/// took four).
pub struct Dropout {
    pub pooled: Tensor,
    pub hidden: Tensor,
}

impl Dropout {
    /// The masks of the batches keyed by `keys` `[K]` (the step keys).
    pub fn draw(keys: &Tensor, batch: i64) -> Self {
        Self {
            pooled: keep_mask(keys, Purpose::Dropout1, batch * POOLED, DROP_POOLED),
            hidden: keep_mask(keys, Purpose::Dropout2, batch * HIDDEN, DROP_HIDDEN),
        }
    }

    /// Model k's masks as the multipliers `MnistCnn::forward_masked` takes (0 or
    /// 1/(1-p) in `kind`): multiplying by them gives the same bits as [`Self::apply`].
    pub fn multipliers(&self, k: i64, kind: Kind) -> (Tensor, Tensor) {
        let scaled = |m: &Tensor, p: f64| m.get(k).to_kind(kind).g_mul_scalar_(keep_scale(p));
        (
            scaled(&self.pooled, DROP_POOLED),
            scaled(&self.hidden, DROP_HIDDEN),
        )
    }

    /// `x * keep * 1/(1-p)` in one pass where the device has a fused kernel:
    /// PyTorch's dropout backward is exactly that product (and autograd knows its
    /// derivative). The kept values round as `x * (1/(1-p))`, the dropped are 0.
    pub fn apply(x: &Tensor, keep: &Tensor, p: f64) -> Tensor {
        Tensor::native_dropout_backward(x, &keep.view(x.size().as_slice()), keep_scale(p))
    }
}

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

    /// Images `[K,B,1,28,28]` (model k's batch in row k) to logits `[K,B,11]`, in
    /// the images' kind: parameters of another kind are cast to it first, so bf16
    /// images give a bf16 forward whose gradients reach the float32 parameters
    /// (mixed precision with float32 master weights). `dropout` holds the step's
    /// keep masks, applied where [`MnistCnn::forward_masked`] applies them, or is
    /// `None` for inference.
    pub fn forward(&self, xs: &Tensor, dropout: Option<&Dropout>) -> Tensor {
        let k = self.k;
        let kind = xs.kind();
        let params: Vec<Tensor> = self
            .params
            .iter()
            .map(|p| {
                if p.kind() == kind {
                    p.shallow_clone()
                } else {
                    p.to_kind(kind)
                }
            })
            .collect();
        let [w1, b1, w2, b2, fw1, fb1, fw2, fb2] = &params[..] else {
            unreachable!("eight parameters")
        };
        let batch = xs.size()[1];
        // Reassignments rather than a chain: each intermediate is freed as soon as
        // the next exists (see MnistCnn::forward_t).
        let mut x = match self.convs {
            Convs::PerModel => {
                let parts: Vec<Tensor> = (0..k)
                    .map(|i| {
                        let x = xs.get(i).reshape([batch, 1, 28, 28]);
                        let x = features_one(&x, [&w1.get(i), &b1.get(i), &w2.get(i), &b2.get(i)]);
                        x.view([batch, POOLED])
                    })
                    .collect();
                Tensor::stack(&parts, 0)
            }
            convs => {
                let mut x = conv1_stacked(xs, w1, b1, convs);
                x = x.relu_();
                x = conv2_grouped(&x, w2, b2);
                x = x.relu_();
                x = x.max_pool2d_default(2);
                x.view([batch, k, POOLED]).transpose(0, 1)
            }
        };
        if let Some(d) = dropout {
            x = Dropout::apply(&x, &d.pooled, DROP_POOLED);
        }
        x = fb1.unsqueeze(1).baddbmm(&x, fw1, 1, 1);
        x = x.relu_();
        if let Some(d) = dropout {
            x = Dropout::apply(&x, &d.hidden, DROP_HIDDEN);
        }
        fb2.unsqueeze(1).baddbmm(&x, fw2, 1, 1)
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

fn conv(x: &Tensor, w: &Tensor, b: &Tensor, groups: i64) -> Tensor {
    x.conv2d(w, Some(b), [1, 1], [0, 0], [1, 1], groups)
}

/// One model's conv1, ReLU, conv2, ReLU, max-pool: `[B,1,28,28]` to `[B,64,12,12]`.
fn features_one(x: &Tensor, [w1, b1, w2, b2]: [&Tensor; 4]) -> Tensor {
    let mut x = conv(x, w1, b1, 1);
    x = x.relu_();
    x = conv(&x, w2, b2, 1);
    x = x.relu_();
    x.max_pool2d_default(2)
}

/// conv1 of K models, images `[K,B,1,28,28]`, weights `[K,32,1,3,3]`, to one
/// `[B,K*32,26,26]` activation in which model k owns channels `k*32..(k+1)*32`.
/// `Grouped` is one grouped (depthwise: one input channel per group) convolution;
/// `Im2col` unfolds the images and runs one batched matmul `[K,32,9] x [K,9,B*676]`.
/// (`PerModel` is handled by the caller.)
pub fn conv1_stacked(xs: &Tensor, w1: &Tensor, b1: &Tensor, convs: Convs) -> Tensor {
    let size = xs.size();
    let (k, batch) = (size[0], size[1]);
    if convs == Convs::Im2col {
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
    }
}

/// conv2 of K models as one grouped convolution: `[B,K*32,26,26]` to `[B,K*64,24,24]`.
pub fn conv2_grouped(x: &Tensor, w2: &Tensor, b2: &Tensor) -> Tensor {
    let k = w2.size()[0];
    conv(x, &w2.view([k * 64, 32, 3, 3]), &b2.view([k * 64]), k)
}

/// conv2 of K models as im2col plus one batched matmul `[K,64,288] x [K,288,B*576]`
/// (for the convolution benchmark; the network runs conv2 grouped).
pub fn conv2_im2col(x: &Tensor, w2: &Tensor, b2: &Tensor) -> Tensor {
    let k = w2.size()[0];
    let batch = x.size()[0];
    let cols = x
        .view([batch, k, 32, 26, 26])
        .transpose(0, 1)
        .reshape([k * batch, 32, 26, 26])
        .im2col([3, 3], [1, 1], [0, 0], [1, 1])
        .view([k, batch, 288, 576])
        .permute([0, 2, 1, 3])
        .reshape([k, 288, batch * 576]);
    b2.view([k, 64, 1])
        .baddbmm(&w2.view([k, 64, 288]), &cols, 1, 1)
        .view([k, 64, batch, 24, 24])
        .permute([2, 0, 1, 3, 4])
        .reshape([batch, k * 64, 24, 24])
}

/// conv1 or conv2 of K models one model at a time: model k's input `xs[k]`
/// `[B,C,H,W]`, its outputs concatenated into the grouped layout `[B,K*C',H',W']`
/// (for the convolution benchmark).
pub fn conv_per_model(xs: &[Tensor], w: &Tensor, b: &Tensor) -> Tensor {
    let parts: Vec<Tensor> = xs
        .iter()
        .enumerate()
        .map(|(i, x)| conv(x, &w.get(i as i64), &b.get(i as i64), 1))
        .collect();
    Tensor::cat(&parts, 1)
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
