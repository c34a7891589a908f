//! Projected gradient ascent in the L-infinity ball (Madry et al.'s PGD), batched.
//!
//! Each image keeps its best iterate over every step, restart and loss, judged by the
//! attacked model's [`margin`](crate::losses::margin): positive means a wrong digit
//! wins. Keeping the best iterate makes the attack monotone by construction: more
//! steps, restarts or targets can only raise an image's kept margin, never lower it,
//! which is what a reader needs to trust a "the defense held" result.

use nullclass::fgsm::loss_gradient;
use nullclass::streams::{hash32, mix64, unit_float, MASK32};
use serde::Serialize;
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

use crate::losses::{margin, Loss};

/// One PGD attack's settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PgdConfig {
    /// Radius of the L-infinity ball around the source image.
    pub eps: f32,
    /// Size of each signed-gradient step.
    pub step: f64,
    /// Steps per restart.
    pub steps: usize,
    /// Random starts per loss (1 = a single run).
    pub restarts: usize,
    /// Start each run at a uniform random point of the ball rather than the source.
    pub random_start: bool,
    /// Seeds the random starts (with the image's test index and the restart).
    pub seed: u64,
}

/// The kept worst case for each image of a batch.
#[derive(Debug)]
pub struct PgdResult {
    /// float32 `[B,1,28,28]`, inside the ball and [0, 1].
    pub images: Tensor,
    /// float32 `[B]`: the attacked model's margin at `images`.
    pub margin: Tensor,
    /// bool `[B]`: the input gradient was exactly zero at some step, a sign of
    /// gradient masking (saturated softmax) rather than of robustness.
    pub zero_gradient: Tensor,
}

impl PgdResult {
    /// Images whose kept iterate makes the attacked model predict a wrong digit.
    pub fn successes(&self) -> i64 {
        self.margin.gt(0.0).sum(Kind::Int64).int64_value(&[])
    }
}

/// Uniform noise in [-1, 1) `[B, pixels]` for the images with test indices `ids`
/// (int64 `[B]`): a counter-based hash of (seed, restart, index, pixel), so an image
/// gets the same start whatever batch it is in and on any device.
pub fn start_noise(ids: &Tensor, seed: u64, restart: usize, pixels: i64) -> Tensor {
    let stream = seed ^ ((restart as u64) << 40) ^ 0x7067_6400_0000_0000;
    unit_float(&image_bits(ids, stream, pixels))
        .g_mul_scalar(2.0)
        .g_sub_scalar(1.0)
}

/// `count` random 32-bit values per image `[B, count]` (int64 in [0, 2^32)) of the
/// stream `stream` for the images with test indices `ids`: what every attack's
/// randomness is drawn from, so that an image's numbers do not depend on its batch.
pub fn image_bits(ids: &Tensor, stream: u64, count: i64) -> Tensor {
    let salt = (mix64(stream) as i64) & MASK32;
    let keys = hash32(&(ids.g_mul_scalar(0x2545_F491_i64) + salt).bitwise_and(MASK32));
    let counters = Tensor::arange(count, (Kind::Int64, ids.device())).g_mul_scalar(0x9E37_79B1_i64);
    hash32(&(keys.view([-1, 1]) + counters.view([1, -1])).bitwise_and(MASK32))
}

/// How often a pruning run drops the images it has already broken.
const PRUNE_EVERY: usize = 10;

/// One run (one loss, one start) over the active images, updating their kept best
/// `(images, margin, zero_gradient)`. With `prune`, images whose kept margin is
/// positive leave the run (they are broken; further steps could only raise their
/// margin), which makes the later runs, mostly spent on the hard images, cheap.
#[allow(clippy::too_many_arguments)]
fn run_once<M: ModuleT>(
    net: &M,
    start: Tensor,
    labels: &Tensor,
    lo: &Tensor,
    hi: &Tensor,
    loss: Loss,
    cfg: &PgdConfig,
    prune: bool,
    best: &mut (Tensor, Tensor, Tensor),
) {
    let mut idx = Tensor::arange(start.size()[0], (Kind::Int64, start.device()));
    let (mut x, mut y, mut lo, mut hi) = (start, labels.shallow_clone(), lo.copy(), hi.copy());
    for s in 0..=cfg.steps {
        if prune && s % PRUNE_EVERY == 0 && s > 0 {
            let keep = best
                .1
                .index_select(0, &idx)
                .le(0.0)
                .nonzero()
                .squeeze_dim(1);
            if keep.size()[0] == 0 {
                return;
            }
            if keep.size()[0] < idx.size()[0] {
                let pick = |t: &Tensor| t.index_select(0, &keep);
                (idx, x, y, lo, hi) = (pick(&idx), pick(&x), pick(&y), pick(&lo), pick(&hi));
            }
        }
        let (logits, grad) = if s == cfg.steps {
            (tch::no_grad(|| net.forward_t(&x, false)), None)
        } else {
            let (z, g) = loss_gradient(net, &x, |z| loss.objective(z, &y));
            (z, Some(g))
        };
        let m = margin(&logits, &y);
        let kept = best.1.index_select(0, &idx);
        let better = m.gt_tensor(&kept);
        let kept_x = best.0.index_select(0, &idx);
        best.0 = best
            .0
            .index_copy(0, &idx, &x.where_self(&better.view([-1, 1, 1, 1]), &kept_x));
        best.1 = best.1.index_copy(0, &idx, &m.where_self(&better, &kept));
        let Some(g) = grad else { break };
        let zero = g.abs().flatten(1, -1).amax(1, false).eq(0.0);
        let was = best.2.index_select(0, &idx);
        best.2 = best.2.index_copy(0, &idx, &was.logical_or(&zero));
        x = (x + g.sign().g_mul_scalar(cfg.step))
            .maximum(&lo)
            .minimum(&hi);
    }
}

/// Attacks `images` (`[B,1,28,28]` in [0, 1]; `labels` and test indices `ids` int64
/// `[B]`) with each loss in turn, `cfg.restarts` runs each. The first run covers every
/// image; later runs only those not yet broken, since a run can only add successes.
pub fn attack<M: ModuleT>(
    net: &M,
    images: &Tensor,
    labels: &Tensor,
    ids: &Tensor,
    losses: &[Loss],
    cfg: &PgdConfig,
) -> PgdResult {
    let b = images.size()[0];
    let eps = f64::from(cfg.eps);
    let lo = (images - eps).clamp_min(0.0);
    let hi = (images + eps).clamp_max(1.0);
    let clean = tch::no_grad(|| net.forward_t(images, false));
    let mut best = (
        images.copy(),
        margin(&clean, labels),
        Tensor::zeros([b], (Kind::Bool, images.device())),
    );
    let mut first = true;
    for &loss in losses {
        for r in 0..cfg.restarts.max(1) {
            let active = if first {
                Tensor::arange(b, (Kind::Int64, images.device()))
            } else {
                best.1.le(0.0).nonzero().squeeze_dim(1)
            };
            let first_run = first;
            first = false;
            let a = active.size()[0];
            if a == 0 {
                continue;
            }
            let pick = |t: &Tensor| t.index_select(0, &active);
            let x0 = pick(images);
            let (lo_a, hi_a) = (pick(&lo), pick(&hi));
            let start = if cfg.random_start && eps > 0.0 {
                let noise = start_noise(&pick(ids), cfg.seed, r, 28 * 28).view([a, 1, 28, 28]);
                (&x0 + noise.g_mul_scalar(eps))
                    .maximum(&lo_a)
                    .minimum(&hi_a)
            } else {
                x0
            };
            let mut sub = (pick(&best.0), pick(&best.1), pick(&best.2));
            // The first run goes the full distance on every image, so that broken
            // images end with a confident wrong digit (what a confidence-rejection
            // defense must face); later runs only need to break the rest.
            let prune = !first_run;
            run_once(
                net,
                start,
                &pick(labels),
                &lo_a,
                &hi_a,
                loss,
                cfg,
                prune,
                &mut sub,
            );
            best.0 = best.0.index_copy(0, &active, &sub.0);
            best.1 = best.1.index_copy(0, &active, &sub.1);
            best.2 = best.2.index_copy(0, &active, &sub.2);
        }
    }
    PgdResult {
        images: best.0,
        margin: best.1,
        zero_gradient: best.2,
    }
}

/// The losses of the adaptive attack: the untargeted margin, then (with `targeted`)
/// one targeted margin per wrong digit.
pub fn adaptive_losses(targeted: bool) -> Vec<Loss> {
    let mut losses = vec![Loss::Margin];
    if targeted {
        losses.extend((1..10).map(|offset| Loss::Targeted { offset }));
    }
    losses
}
