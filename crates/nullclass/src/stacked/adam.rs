//! Adam over a few large tensors (the stacked parameters) in few passes over memory.
//!
//! The update is PyTorch's (`torch.optim.Adam`, also libtorch's C++ Adam that
//! `tch::nn::Adam` wraps), with epsilon added to the bias-corrected root of the
//! second moment, not to the raw one as Keras does:
//!
//! ```text
//! m = b1 m + (1 - b1) g            v = b2 v + (1 - b2) g^2
//! p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//! ```
//!
//! libtorch runs this as eight element-wise kernels per tensor (about 80 bytes of
//! memory traffic per float32 parameter). Here it is six: `m.lerp_(g)`, `g^2`,
//! `v.lerp_(g^2)`, `sqrt(v)`, one `addcmul` that forms the whole (negated)
//! denominator `-(sqrt(v) a + b)` with a = 1/(sqrt(1 - b2^t) lr/(1 - b1^t)) and
//! b = eps/(lr/(1 - b1^t)), and `p.addcdiv_(m, denominator)`: about 64 bytes. tch
//! 0.24 reaches neither PyTorch's fused Adam nor its `_foreach_` kernels, and its
//! `addcmul`/`addcdiv` take no scalar factor, so the step's factors travel as 0-dim
//! tensors, all of them uploaded once at the start: no host-device traffic per step.
//! The result equals libtorch's Adam to rounding (tested in float64).

use anyhow::{bail, Context, Result};
use tch::Tensor;

/// Adam's hyper-parameters (the paper's: lr 1e-3, betas 0.9/0.999, eps 1e-8).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl AdamConfig {
    pub fn paper(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

pub struct Adam {
    params: Vec<Tensor>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    /// `[steps, 2]` in the parameters' kind on their device: row t-1 holds step
    /// t's `-a` and `-b` (see the module comment).
    factors: Tensor,
    steps_done: i64,
    beta: (f64, f64),
}

impl Adam {
    /// An optimiser for `params` (all on one device, of one floating kind) that
    /// will take at most `steps` steps.
    pub fn new(params: Vec<Tensor>, config: AdamConfig, steps: usize) -> Result<Self> {
        let first = params
            .first()
            .context("Adam needs at least one parameter")?;
        let (device, kind) = (first.device(), first.kind());
        if params
            .iter()
            .any(|p| p.device() != device || p.kind() != kind)
        {
            bail!("Adam's parameters must share one device and kind");
        }
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = config;
        if !(lr > 0.0 && (0.0..1.0).contains(&beta1) && (0.0..1.0).contains(&beta2) && eps > 0.0) {
            bail!("Adam needs lr > 0, betas in [0, 1) and eps > 0, got {config:?}");
        }
        let mut factors = Vec::with_capacity(2 * steps);
        for t in 1..=steps as i32 {
            let step_size = lr / (1.0 - beta1.powi(t));
            let root_bc2 = (1.0 - beta2.powi(t)).sqrt();
            factors.push(-1.0 / (root_bc2 * step_size));
            factors.push(-eps / step_size);
        }
        let factors = Tensor::from_slice(&factors)
            .view([steps as i64, 2])
            .to_kind(kind)
            .to_device(device);
        let zeros = |p: &Tensor| p.zeros_like().detach();
        Ok(Self {
            exp_avg: params.iter().map(zeros).collect(),
            exp_avg_sq: params.iter().map(zeros).collect(),
            params,
            factors,
            steps_done: 0,
            beta: (beta1, beta2),
        })
    }

    /// The gradients of `loss` with respect to the parameters, then one step.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads =
            Tensor::f_run_backward(&[loss], &self.params, false, false).context("backward pass")?;
        self.step(&grads)
    }

    /// One update with the given gradients (one per parameter, in order).
    pub fn step(&mut self, grads: &[Tensor]) -> Result<()> {
        if grads.len() != self.params.len() {
            bail!(
                "{} gradients for {} parameters",
                grads.len(),
                self.params.len()
            );
        }
        if self.steps_done >= self.factors.size()[0] {
            bail!("Adam was built for {} steps", self.factors.size()[0]);
        }
        let row = self.factors.get(self.steps_done);
        let (neg_a, neg_b) = (row.get(0), row.get(1));
        let (beta1, beta2) = self.beta;
        tch::no_grad(|| {
            for (((p, g), m), v) in self
                .params
                .iter_mut()
                .zip(grads)
                .zip(&mut self.exp_avg)
                .zip(&mut self.exp_avg_sq)
            {
                let _ = m.lerp_(g, 1.0 - beta1);
                let _ = v.lerp_(&g.square(), 1.0 - beta2);
                let denominator = neg_b.addcmul(&v.sqrt(), &neg_a);
                let _ = p.addcdiv_(m, &denominator);
            }
        });
        self.steps_done += 1;
        Ok(())
    }
}
