//! The toy ramp task of the report's section 2: 3-pixel "images" holding a down
//! or an up ramp at one of two positions, uniform-noise nulls, the small 1-D CNN
//! that classifies them, and the probe that labels a grid over the input cube.
//!
//! Labels: 0 down, 1 up, 2 null. Every generator runs on the requested device with
//! torch's global generator, so a seeded run repeats.
//!
//! The optimiser is Adam as Keras runs it ([`Adam`]), with its state kept, so that
//! the null model can continue the baseline's training as the published code does.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::model::glorot_uniform;

pub const PIXELS: i64 = 3;
pub const NUM_CLASSES: i64 = 3;
pub const DOWN: i64 = 0;
pub const UP: i64 = 1;
pub const NULL: i64 = 2;
pub const CLASS_NAMES: [&str; 3] = ["down", "up", "null"];

/// The two ramp shapes (method-notes.md uses 0.666/0.333 for 2/3 and 1/3).
pub const DOWN_RAMP: [f64; 2] = [0.666, 0.333];
pub const UP_RAMP: [f64; 2] = [0.333, 0.666];
/// Half-width of the uniform noise added to every pixel of a ramp sample.
pub const NOISE: f64 = 0.05;
/// Grid points per axis of the decision-space probe: the published code probes
/// `np.arange(0, 1, 1/48)`, 48 points a side at spacing 1/48.
pub const GRID: i64 = 48;

/// The prototype of `label` (DOWN or UP) at pixel `offset` (0 or 1); the pixel
/// the ramp leaves free is background, 0.
pub fn prototype(label: i64, offset: i64) -> [f64; 3] {
    let ramp = if label == DOWN { DOWN_RAMP } else { UP_RAMP };
    let mut px = [0.0; 3];
    px[offset as usize] = ramp[0];
    px[offset as usize + 1] = ramp[1];
    px
}

/// The four prototypes as rows `[down@0, down@1, up@0, up@1]`, so row
/// `2 * label + offset` is `prototype(label, offset)`.
pub fn prototype_table(device: Device) -> Tensor {
    let rows: Vec<f32> = [(DOWN, 0), (DOWN, 1), (UP, 0), (UP, 1)]
        .iter()
        .flat_map(|&(l, o)| prototype(l, o).map(|v| v as f32))
        .collect();
    Tensor::from_slice(&rows)
        .view([4, PIXELS])
        .to_device(device)
}

/// Samples with their labels; `offsets` is the ramp's position, -1 for a null.
#[derive(Debug)]
pub struct RampBatch {
    pub images: Tensor,
    pub labels: Tensor,
    pub offsets: Tensor,
}

/// `n` ramp samples: a random class and position each, U(-0.05, 0.05) noise on
/// every pixel, clipped to [0, 1].
pub fn ramps(n: i64, device: Device) -> RampBatch {
    let labels = Tensor::randint(2, [n], (Kind::Int64, device));
    let offsets = Tensor::randint(2, [n], (Kind::Int64, device));
    let protos = prototype_table(device).index_select(0, &(&labels * 2 + &offsets));
    let noise = Tensor::rand([n, PIXELS], (Kind::Float, device)) * (2.0 * NOISE) - NOISE;
    RampBatch {
        images: (protos + noise).clamp(0.0, 1.0),
        labels,
        offsets,
    }
}

/// A training batch: ramp samples, each slot replaced by a U(0, 1) null with
/// probability `null_prob` (0 for the baseline).
pub fn batch(n: i64, null_prob: f64, device: Device) -> RampBatch {
    let mut b = ramps(n, device);
    if null_prob > 0.0 {
        let is_null = Tensor::rand([n], (Kind::Float, device)).lt(null_prob);
        let noise = Tensor::rand([n, PIXELS], (Kind::Float, device));
        b.images = noise.where_self(&is_null.unsqueeze(1), &b.images);
        b.labels = b.labels.masked_fill(&is_null, NULL);
        b.offsets = b.offsets.masked_fill(&is_null, -1);
    }
    b
}

/// Every grid point of [0, 1)^3 at spacing 1/n, as rows `[n^3, 3]` in C order:
/// row `(i * n + j) * n + k` is the image `(i/n, j/n, k/n)`.
pub fn grid_points(n: i64, device: Device) -> Tensor {
    let axis = Tensor::arange(n, (Kind::Float, device)) / n as f64;
    let mesh = Tensor::meshgrid_indexing(&[&axis, &axis, &axis], "ij");
    Tensor::stack(&mesh, -1).view([-1, PIXELS])
}

/// Labels of the grid as the ideal model would give them (the report's Figure 2):
/// a ramp class wherever a noisy ramp sample can land, null everywhere else.
pub fn optimal_grid(n: i64) -> Tensor {
    let mut labels = vec![NULL; (n * n * n) as usize];
    let inside = |v: f64, p: f64| v >= (p - NOISE).max(0.0) && v <= (p + NOISE).min(1.0);
    for (idx, label) in labels.iter_mut().enumerate() {
        let idx = idx as i64;
        let px = [idx / (n * n), (idx / n) % n, idx % n].map(|i| i as f64 / n as f64);
        for class in [DOWN, UP] {
            for offset in [0, 1] {
                let proto = prototype(class, offset);
                if (0..3).all(|d| inside(px[d], proto[d])) {
                    *label = class;
                }
            }
        }
    }
    Tensor::from_slice(&labels).view([n, n, n])
}

/// Share of grid points given to each class, `[down, up, null]`.
pub fn class_shares(labels: &Tensor) -> [f64; 3] {
    let counts = labels
        .flatten(0, -1)
        .to_device(Device::Cpu)
        .bincount::<Tensor>(None, NUM_CLASSES);
    let total = labels.numel() as f64;
    [0, 1, 2].map(|c| counts.int64_value(&[c]) as f64 / total)
}

fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64) -> nn::Conv1D {
    let cfg = nn::ConvConfig {
        ws_init: glorot_uniform(c_in * k, c_out * k),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv1d(p, c_in, c_out, k, cfg)
}

fn linear(p: nn::Path, d_in: i64, d_out: i64) -> nn::Linear {
    let cfg = nn::LinearConfig {
        ws_init: glorot_uniform(d_in, d_out),
        bs_init: Some(nn::Init::Const(0.0)),
        bias: true,
    };
    nn::linear(p, d_in, d_out, cfg)
}

/// Keras' padding "same" for a kernel of 2: the one extra input goes on the right
/// (pad 0 left, 1 right), which PyTorch's symmetric `padding` cannot express.
fn pad_same_k2(x: &Tensor) -> Tensor {
    x.constant_pad_nd([0, 1])
}

/// The toy CNN (method-notes.md): Conv1D 8 k2 same, Conv1D 16 k2 same, MaxPool 2
/// stride 1, Dropout 0.25, Flatten, Dense 32, Dropout 0.5, Dense 3.
#[derive(Debug)]
pub struct RampCnn {
    conv1: nn::Conv1D,
    conv2: nn::Conv1D,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl RampCnn {
    pub fn new(p: &nn::Path) -> Self {
        Self {
            conv1: conv(p / "conv1", 1, 8, 2),
            conv2: conv(p / "conv2", 8, 16, 2),
            // 16 channels x 2 positions left by the stride-1 pool over 3.
            fc1: linear(p / "fc1", 32, 32),
            fc2: linear(p / "fc2", 32, NUM_CLASSES),
        }
    }

    /// Every parameter's name and shape, as a checkpoint must hold them.
    pub fn parameter_shapes() -> Vec<(&'static str, Vec<i64>)> {
        vec![
            ("conv1.weight", vec![8, 1, 2]),
            ("conv1.bias", vec![8]),
            ("conv2.weight", vec![16, 8, 2]),
            ("conv2.bias", vec![16]),
            ("fc1.weight", vec![32, 32]),
            ("fc1.bias", vec![32]),
            ("fc2.weight", vec![NUM_CLASSES, 32]),
            ("fc2.bias", vec![NUM_CLASSES]),
        ]
    }
}

impl ModuleT for RampCnn {
    /// Images `[N,3]` to logits `[N,3]`. Flatten is channel-major, as PyTorch's.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = pad_same_k2(&xs.view([-1, 1, PIXELS]))
            .apply(&self.conv1)
            .relu();
        x = pad_same_k2(&x).apply(&self.conv2).relu();
        x = x.max_pool1d([2], [1], [0], [1], false);
        x = x
            .dropout(0.25, train)
            .flatten(1, -1)
            .apply(&self.fc1)
            .relu();
        x.dropout(0.5, train).apply(&self.fc2)
    }
}

/// A toy model with its variables.
pub struct RampModel {
    pub vs: nn::VarStore,
    pub net: RampCnn,
}

impl RampModel {
    /// A freshly initialised model (the global torch seed decides the weights).
    pub fn fresh(device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let net = RampCnn::new(&vs.root());
        Self { vs, net }
    }

    /// Loads a checkpoint, requiring exactly the model's tensor names and shapes.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let model = Self::fresh(device);
        let found = crate::model::read_checkpoint(path, &RampCnn::parameter_shapes(), "ramp")?;
        model
            .set_parameters(&found)
            .with_context(|| format!("cannot load {}", path.display()))?;
        Ok(model)
    }

    /// Overwrites parameters by name (hand-built models in tests, checkpoints).
    pub fn set_parameters(&self, values: &HashMap<String, Tensor>) -> Result<()> {
        let mut vars = self.vs.variables();
        tch::no_grad(|| -> Result<()> {
            for (name, value) in values {
                let var = vars
                    .get_mut(name)
                    .with_context(|| format!("the toy model has no parameter {name}"))?;
                var.f_copy_(value)
                    .with_context(|| format!("cannot set parameter {name}"))?;
            }
            Ok(())
        })
    }

    /// Logits for a batch, without dropout or gradients.
    pub fn logits(&self, xs: &Tensor) -> Tensor {
        tch::no_grad(|| self.net.forward_t(xs, false))
    }

    /// Predicted classes for many images, in chunks of `chunk`.
    pub fn predict(&self, images: &Tensor, chunk: i64) -> Tensor {
        let n = images.size()[0];
        let parts: Vec<Tensor> = (0..n)
            .step_by(chunk.max(1) as usize)
            .map(|s| {
                self.logits(&images.narrow(0, s, chunk.min(n - s)))
                    .argmax(1, false)
            })
            .collect();
        Tensor::cat(&parts, 0)
    }

    /// The decision-space probe: the argmax label of every point of the n x n x n
    /// grid over [0, 1)^3, as int64 `[n, n, n]` on the CPU; `[i, j, k]` is the label
    /// of the image `(i/n, j/n, k/n)`.
    pub fn probe_grid(&self, n: i64) -> Tensor {
        let device = self.vs.device();
        self.predict(&grid_points(n, device), 65_536)
            .view([n, n, n])
            .to_device(Device::Cpu)
    }

    /// Share of `n` fresh ramp samples classified as their true class.
    pub fn ramp_accuracy(&self, n: i64) -> f64 {
        let b = ramps(n, self.vs.device());
        let pred = self.predict(&b.images, 65_536);
        pred.eq_tensor(&b.labels).sum(Kind::Int64).int64_value(&[]) as f64 / n as f64
    }

    /// Share of `n` uniform-noise images put in the null class.
    pub fn null_rate(&self, n: i64) -> f64 {
        let x = Tensor::rand([n, PIXELS], (Kind::Float, self.vs.device()));
        self.predict(&x, 65_536)
            .eq(NULL)
            .sum(Kind::Int64)
            .int64_value(&[]) as f64
            / n as f64
    }
}

/// Adam as Keras (the published code) computes it: `lr_t = lr * sqrt(1 - b2^t) /
/// (1 - b1^t)` and `w -= lr_t * m / (sqrt(v) + eps)`, so eps is added to the
/// uncorrected `sqrt(v)` ("epsilon hat"). PyTorch (and tch's Adam) adds eps to the
/// bias-corrected `sqrt(v / (1 - b2^t))` instead: the same update with an eps
/// larger by `1 / sqrt(1 - b2^t)` (31.6 x at step 1, 1.3 x at step 1000).
///
/// Its state (step count and both moments) can be saved and loaded with the
/// weights, which tch's optimisers cannot: the published null ramp model is the
/// trained baseline trained on, optimiser state and all.
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Steps taken so far (t of the last update).
    pub step: i64,
    /// Parameters by name, with their first and second moments.
    params: Vec<(String, Tensor, Tensor, Tensor)>,
}

/// Names of the optimiser's tensors in a state file, beside the weights' own names.
const STEP_KEY: &str = "adam.step";
const M_PREFIX: &str = "adam.m.";
const V_PREFIX: &str = "adam.v.";

impl Adam {
    /// Keras' defaults of method-notes.md (betas 0.9 / 0.999, eps 1e-8), fresh state.
    pub fn new(model: &RampModel, lr: f64) -> Self {
        let mut vars: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let params = vars
            .into_iter()
            .map(|(name, w)| {
                let (m, v) = (w.zeros_like(), w.zeros_like());
                (name, w, m, v)
            })
            .collect();
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            params,
        }
    }

    /// One update from the gradients `backward` left; clears them.
    pub fn step(&mut self) {
        self.step += 1;
        let t = self.step as i32;
        let lr_t = self.lr * (1.0 - self.beta2.powi(t)).sqrt() / (1.0 - self.beta1.powi(t));
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        tch::no_grad(|| {
            for (_, w, m, v) in &mut self.params {
                let mut g = w.grad();
                if !g.defined() {
                    continue;
                }
                let _ = m.g_mul_scalar_(b1).g_add_(&(&g * (1.0 - b1)));
                let _ = v.g_mul_scalar_(b2).g_add_(&(g.square() * (1.0 - b2)));
                let update = &*m * lr_t / (v.sqrt() + eps);
                let _ = w.g_sub_(&update);
                let _ = g.zero_();
            }
        });
    }

    /// Backward pass of `loss`, then [`Self::step`].
    pub fn backward_step(&mut self, loss: &Tensor) {
        loss.backward();
        self.step();
    }

    /// The model's weights and this optimiser's state, one safetensors file.
    pub fn save_with_weights(&self, path: &Path) -> Result<()> {
        let step = Tensor::from_slice(&[self.step]);
        let mut named: Vec<(String, &Tensor)> = vec![(STEP_KEY.to_string(), &step)];
        for (name, w, m, v) in &self.params {
            named.push((name.clone(), w));
            named.push((format!("{M_PREFIX}{name}"), m));
            named.push((format!("{V_PREFIX}{name}"), v));
        }
        crate::artifacts::write_atomic(path, |tmp| {
            Tensor::write_safetensors(&named, tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))
        })
    }

    /// A model and its optimiser as [`Self::save_with_weights`] left them, with
    /// learning rate `lr`.
    pub fn load_with_weights(path: &Path, lr: f64, device: Device) -> Result<(RampModel, Self)> {
        let mut expected: Vec<(String, Vec<i64>)> = vec![(STEP_KEY.to_string(), vec![1])];
        for (name, shape) in RampCnn::parameter_shapes() {
            expected.push((name.to_string(), shape.clone()));
            expected.push((format!("{M_PREFIX}{name}"), shape.clone()));
            expected.push((format!("{V_PREFIX}{name}"), shape));
        }
        let expected: Vec<(&str, Vec<i64>)> = expected
            .iter()
            .map(|(n, s)| (n.as_str(), s.clone()))
            .collect();
        let found = crate::model::read_checkpoint(path, &expected, "ramp optimiser state")?;
        let model = RampModel::fresh(device);
        let weights: HashMap<String, Tensor> = RampCnn::parameter_shapes()
            .iter()
            .map(|(n, _)| (n.to_string(), found[*n].shallow_clone()))
            .collect();
        model
            .set_parameters(&weights)
            .with_context(|| format!("cannot load {}", path.display()))?;
        let mut adam = Self::new(&model, lr);
        let step = found[STEP_KEY]
            .f_int64_value(&[0])
            .with_context(|| format!("{}: {STEP_KEY} is not an integer", path.display()))?;
        if step < 0 {
            bail!("{}: {STEP_KEY} is {step}", path.display());
        }
        adam.step = step;
        for (name, _, m, v) in &mut adam.params {
            let load = |dst: &mut Tensor, key: String| -> Result<()> {
                tch::no_grad(|| dst.f_copy_(&found[&key]))
                    .with_context(|| format!("{}: cannot load {key}", path.display()))
            };
            load(m, format!("{M_PREFIX}{name}"))?;
            load(v, format!("{V_PREFIX}{name}"))?;
        }
        Ok((model, adam))
    }
}

/// Mean training loss and accuracy over a run of steps.
#[derive(Clone, Copy, Debug)]
pub struct StepStats {
    pub loss: f64,
    pub accuracy: f64,
}

/// Trains `steps` batches of `batch` samples with the given null probability.
pub fn train_steps(
    model: &RampModel,
    opt: &mut Adam,
    steps: usize,
    batch_size: i64,
    null_prob: f64,
) -> Result<StepStats> {
    let device = model.vs.device();
    // Summed on the device and read once, so a step never waits on the host.
    let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
    let mut correct = Tensor::zeros([], (Kind::Int64, device));
    for _ in 0..steps {
        let b = batch(batch_size, null_prob, device);
        let logits = model.net.forward_t(&b.images, true);
        let loss = logits.cross_entropy_for_logits(&b.labels);
        opt.backward_step(&loss);
        tch::no_grad(|| {
            loss_sum += loss.detach().to_kind(Kind::Double);
            correct += logits
                .argmax(1, false)
                .eq_tensor(&b.labels)
                .sum(Kind::Int64);
        });
    }
    let loss = loss_sum.double_value(&[]) / steps.max(1) as f64;
    if !loss.is_finite() {
        bail!("training loss became {loss}");
    }
    let accuracy = correct.int64_value(&[]) as f64 / (steps.max(1) as i64 * batch_size) as f64;
    Ok(StepStats { loss, accuracy })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_parameter_count() {
        let m = RampModel::fresh(Device::Cpu);
        let out = m.logits(&Tensor::rand([5, PIXELS], (Kind::Float, Device::Cpu)));
        assert_eq!(out.size(), [5, NUM_CLASSES]);
        let vars = m.vs.variables();
        for (name, shape) in RampCnn::parameter_shapes() {
            assert_eq!(vars[name].size(), shape, "{name}");
        }
        let total: i64 = vars.values().map(|t| t.numel() as i64).sum();
        assert_eq!(total, 24 + 272 + 1056 + 99);
    }

    #[test]
    fn same_padding_is_on_the_right() {
        let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0]).view([1, 1, 3]);
        let padded = pad_same_k2(&x);
        assert_eq!(
            Vec::<f32>::try_from(padded.flatten(0, -1)).unwrap(),
            [1.0, 2.0, 3.0, 0.0]
        );
    }

    #[test]
    fn optimal_grid_is_four_small_slabs() {
        let shares = class_shares(&optimal_grid(GRID));
        // Per slab 5 x 5 x 3 grid points (two pixels within 0.05 of 2/3 or 1/3, the
        // background within [0, 0.05]).
        let slab = 75.0 / (GRID * GRID * GRID) as f64;
        assert!((shares[0] - 2.0 * slab).abs() < 1e-12, "{shares:?}");
        assert!((shares[1] - 2.0 * slab).abs() < 1e-12, "{shares:?}");
    }
}
