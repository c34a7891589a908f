//! FGSM and its per-image epsilon threshold (method-notes.md, "FGSM with an epsilon
//! threshold"; the report's section 5.2).
//!
//! Everything is batched: one call handles a whole batch of images, and the threshold
//! search advances every image of the batch in lockstep, each with its own bracket.
//! The attack code and the evaluator share [`perturb`], so an image rebuilt from its
//! source, signed gradient and epsilon is bit-for-bit the one the search classified.

use anyhow::{bail, Result};
use tch::nn::ModuleT;
use tch::{Kind, Reduction, Tensor};

use crate::model::NULL_CLASS;

/// The search's outcome for one image, as stored in [`Search::status`].
pub const FOUND: i64 = 0;
/// No epsilon up to the grid's maximum changes the prediction: the image is discarded.
pub const NO_FLIP: i64 = 1;
/// The unperturbed image is already misclassified: the image is skipped.
pub const WRONG_CLEAN: i64 = 2;

/// What counts as a flip in the threshold search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Goal {
    /// Any prediction other than the label, the null class included: the report's
    /// search against the baseline, which never predicts null.
    #[default]
    AnyChange,
    /// A digit other than the label: an attacker who lands in the null class has
    /// failed (the adaptive attacks against null models).
    WrongDigit,
}

impl Goal {
    /// Whether each prediction (int64, any shape) reaches the goal against `labels`
    /// (broadcast to it).
    pub fn reached(self, predictions: &Tensor, labels: &Tensor) -> Tensor {
        let changed = predictions.ne_tensor(labels);
        match self {
            Goal::AnyChange => changed,
            Goal::WrongDigit => changed.logical_and(&predictions.ne(NULL_CLASS)),
        }
    }
}

/// The search's grid and stopping rule. The defaults are the published ones.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SearchConfig {
    /// What the perturbation must achieve.
    pub goal: Goal,
    /// Smallest non-zero epsilon of the first grid.
    pub min_eps: f64,
    /// Largest epsilon tried; images that do not flip by then are discarded.
    pub max_eps: f64,
    /// Points per grid: the first is 0 plus `points - 1` log-spaced values from
    /// `min_eps` to `max_eps`; each refinement is `points` log-spaced values from the
    /// bracket's lower to its upper end.
    pub points: i64,
    /// The search stops once the flipping epsilon and the one below it are this close.
    pub tolerance: f64,
    /// Images per forward pass (memory bound, not part of the method).
    pub chunk: i64,
    /// A guard against a search that does not converge.
    pub max_rounds: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            goal: Goal::AnyChange,
            min_eps: 1e-3,
            max_eps: 1.0,
            points: 10,
            tolerance: 1e-3,
            chunk: 1000,
            max_rounds: 64,
        }
    }
}

impl SearchConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.min_eps > 0.0 && self.max_eps > self.min_eps && self.max_eps.is_finite()) {
            bail!(
                "the epsilon grid needs 0 < min ({}) < max ({})",
                self.min_eps,
                self.max_eps
            );
        }
        if self.points < 3 {
            bail!(
                "the epsilon grid needs at least 3 points, not {}",
                self.points
            );
        }
        // Below about 1e-6 float32 epsilons can no longer split a bracket near 1.
        if self.tolerance.is_nan() || self.tolerance < 1e-6 {
            bail!(
                "the search tolerance must be at least 1e-6, not {}",
                self.tolerance
            );
        }
        if self.chunk < 1 {
            bail!("the forward chunk must hold at least one image");
        }
        Ok(())
    }

    /// The first grid: 0, then `points - 1` log-spaced values from `min_eps` to
    /// `max_eps`, as float32 (the precision the images are perturbed at).
    pub fn first_grid(&self) -> Vec<f32> {
        let steps = (self.points - 2) as f64;
        let (a, b) = (self.min_eps.log10(), self.max_eps.log10());
        let mut grid = vec![0.0f32];
        grid.extend((0..self.points - 1).map(|k| match k {
            0 => self.min_eps as f32,
            k if k == self.points - 2 => self.max_eps as f32,
            k => 10f64.powf(a + (b - a) * k as f64 / steps) as f32,
        }));
        grid
    }

    /// Whether a bracket `[lower, upper]` (float32 values) is closed, compared in
    /// float32 so that the first grid's `[0, 1e-3]` counts as within 1e-3.
    pub fn is_closed(&self, lower: f32, upper: f32) -> bool {
        upper - lower <= self.tolerance as f32
    }
}

/// `clip(images + eps * signs, 0, 1)` with one epsilon per image (`eps` float32 `[B]`,
/// images and signs `[B, ...]`). `eps * sign` is exact (signs are -1, 0 or 1), so
/// the result does not depend on how a device fuses the multiply and the add.
pub fn perturb(images: &Tensor, signs: &Tensor, eps: &Tensor) -> Tensor {
    let mut shape = vec![-1i64];
    shape.resize(images.dim(), 1);
    let step = signs * eps.to_kind(images.kind()).view(shape.as_slice());
    (images + step).clamp(0.0, 1.0)
}

/// [`perturb`] with the same epsilon for every image.
pub fn perturb_all(images: &Tensor, signs: &Tensor, eps: f32) -> Tensor {
    let eps = Tensor::full(
        [images.size()[0]],
        f64::from(eps),
        (Kind::Float, images.device()),
    );
    perturb(images, signs, &eps)
}

/// d loss / d images, where the loss is the 11-way softmax cross-entropy of `net`'s
/// logits against `labels`, summed over the batch so that each image's gradient is
/// that of its own loss, whatever the batch size. Dropout is off.
pub fn input_gradient<M: ModuleT>(net: &M, images: &Tensor, labels: &Tensor) -> Tensor {
    loss_gradient(net, images, |logits| {
        logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::None, -100, 0.0)
    })
    .1
}

/// `net`'s logits at `images` (detached) and d loss / d images, where `loss` maps
/// the logits `[B, 11]` to one loss per image `[B]`; the per-image losses are summed,
/// so each image's gradient is that of its own loss. Dropout is off.
pub fn loss_gradient<M, F>(net: &M, images: &Tensor, loss: F) -> (Tensor, Tensor)
where
    M: ModuleT,
    F: FnOnce(&Tensor) -> Tensor,
{
    tch::with_grad(|| {
        let x = images.detach().set_requires_grad(true);
        let logits = net.forward_t(&x, false);
        let total = loss(&logits).sum(Kind::Float);
        // Asking for the input's gradient alone leaves the weights' .grad untouched.
        let mut grads = Tensor::run_backward(&[&total], &[&x], false, false);
        (logits.detach(), grads.remove(0))
    })
}

/// The FGSM direction `sign(d loss / d x)`, computed `chunk` images at a time; float32
/// with values in {-1, 0, 1}.
pub fn signed_gradient<M: ModuleT>(
    net: &M,
    images: &Tensor,
    labels: &Tensor,
    chunk: i64,
) -> Tensor {
    chunked_gradient(net, images, labels, chunk, |logits, labels| {
        logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::None, -100, 0.0)
    })
    .sign()
}

/// d loss / d images for many images, `chunk` at a time, where `loss` maps a chunk's
/// logits `[B, 11]` and labels `[B]` to one loss per image `[B]`.
pub fn chunked_gradient<M, F>(
    net: &M,
    images: &Tensor,
    labels: &Tensor,
    chunk: i64,
    loss: F,
) -> Tensor
where
    M: ModuleT,
    F: Fn(&Tensor, &Tensor) -> Tensor,
{
    let n = images.size()[0];
    let parts: Vec<Tensor> = (0..n)
        .step_by(chunk.max(1) as usize)
        .map(|s| {
            let len = chunk.min(n - s);
            let labels = labels.narrow(0, s, len);
            loss_gradient(net, &images.narrow(0, s, len), |z| loss(z, &labels)).1
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// Predicted classes of `images`, `chunk` at a time, without gradients or dropout.
pub fn classify<M: ModuleT>(net: &M, images: &Tensor, chunk: i64) -> Tensor {
    let n = images.size()[0];
    let parts: Vec<Tensor> = (0..n)
        .step_by(chunk.max(1) as usize)
        .map(|s| {
            tch::no_grad(|| {
                net.forward_t(&images.narrow(0, s, chunk.min(n - s)), false)
                    .argmax(1, false)
            })
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// The result of [`threshold_search`] for a batch of `B` images.
#[derive(Debug)]
pub struct Search {
    /// int64 `[B]`: [`FOUND`], [`NO_FLIP`] or [`WRONG_CLEAN`].
    pub status: Tensor,
    /// float32 `[B]`: the smallest epsilon found to flip the prediction (0 unless found).
    pub threshold: Tensor,
    /// float32 `[B]`: the largest epsilon below it known not to flip (0 unless found).
    pub lower: Tensor,
    /// Refinement rounds run after the first grid.
    pub rounds: usize,
    /// Perturbed images classified, all rounds together.
    pub forwards: i64,
}

/// Every image of `eps` `[A, P]` perturbed at each of its P epsilons: `[A * P, ...]`.
fn perturb_grid(images: &Tensor, signs: &Tensor, eps: &Tensor) -> Tensor {
    let (a, p) = (eps.size()[0], eps.size()[1]);
    let mut rest = images.size()[1..].to_vec();
    let mut expanded = vec![a, p];
    expanded.extend_from_slice(&rest);
    let x = images
        .unsqueeze(1)
        .expand(expanded.as_slice(), false)
        .reshape([a * p, -1]);
    let g = signs
        .unsqueeze(1)
        .expand(expanded.as_slice(), false)
        .reshape([a * p, -1]);
    let mut shape = vec![a * p];
    shape.append(&mut rest);
    perturb(&x, &g, &eps.reshape([a * p])).view(shape.as_slice())
}

/// The interior points of each bracket's refinement grid: `points - 2` values strictly
/// between `lower` and `upper` (`[A]` each), log-spaced (linear when `lower` is 0,
/// which only a first grid starting above the tolerance can leave). Float32 `[A, P-2]`.
fn refinement_grid(lower: &Tensor, upper: &Tensor, points: i64) -> Tensor {
    let device = lower.device();
    let t = Tensor::arange_start(1, points - 1, (Kind::Double, device))
        .g_div_scalar((points - 1) as f64)
        .unsqueeze(0);
    let lo = lower.to_kind(Kind::Double).unsqueeze(1);
    let hi = upper.to_kind(Kind::Double).unsqueeze(1);
    let (log_lo, log_hi) = (lo.log10(), hi.log10());
    let logspaced = ((&log_lo + (&log_hi - &log_lo) * &t) * std::f64::consts::LN_10).exp();
    let linear = &lo + (&hi - &lo) * &t;
    logspaced
        .where_self(&lo.gt(0.0), &linear)
        .to_kind(Kind::Float)
}

/// For each image (`images` and `signs` `[B, ...]` in [0, 1], `labels` int64 `[B]`), the
/// smallest epsilon such that `net` misclassifies `perturb(image, sign, eps)`, found as
/// method-notes.md describes: try the first grid, take the first flipping epsilon and
/// the one before it, and search again on a log-spaced grid between the two until they
/// are within the tolerance. Only the interior of each refinement grid is classified:
/// its ends are already known.
pub fn threshold_search<M: ModuleT>(
    net: &M,
    images: &Tensor,
    signs: &Tensor,
    labels: &Tensor,
    config: &SearchConfig,
) -> Result<Search> {
    config.validate()?;
    let b = images.size()[0];
    let device = images.device();
    let grid = config.first_grid();
    let p = grid.len() as i64;

    let eps = Tensor::from_slice(&grid)
        .to_device(device)
        .unsqueeze(0)
        .expand([b, p], true);
    let preds = classify(net, &perturb_grid(images, signs, &eps), config.chunk).view([b, p]);
    let flips = config.goal.reached(&preds, &labels.unsqueeze(1));
    let mut forwards = b * p;

    let any = flips.any_dim(1, false);
    let first = flips.to_kind(Kind::Int64).argmax(1, false);
    let wrong_clean = flips.select(1, 0);
    let status = Tensor::full([b], FOUND, (Kind::Int64, device))
        .masked_fill(&any.logical_not(), NO_FLIP)
        .masked_fill(&wrong_clean, WRONG_CLEAN);
    let found = status.eq(FOUND);
    let mut upper = eps
        .gather(1, &first.unsqueeze(1), false)
        .squeeze_dim(1)
        .masked_fill(&found.logical_not(), 0.0);
    let mut lower = eps
        .gather(1, &(&first - 1).clamp_min(0).unsqueeze(1), false)
        .squeeze_dim(1)
        .masked_fill(&found.logical_not(), 0.0);

    let tolerance = config.tolerance as f32;
    let mut rounds = 0;
    loop {
        let open = found.logical_and(&(&upper - &lower).gt(f64::from(tolerance)));
        let idx = open.nonzero().squeeze_dim(1);
        let a = idx.size()[0];
        if a == 0 {
            break;
        }
        if rounds == config.max_rounds {
            bail!("the epsilon search did not close {a} brackets in {rounds} rounds");
        }
        rounds += 1;
        let (lo, hi) = (lower.index_select(0, &idx), upper.index_select(0, &idx));
        let cand = refinement_grid(&lo, &hi, config.points);
        let q = cand.size()[1];
        let x = images.index_select(0, &idx);
        let g = signs.index_select(0, &idx);
        let preds = classify(net, &perturb_grid(&x, &g, &cand), config.chunk).view([a, q]);
        forwards += a * q;
        let flips = config
            .goal
            .reached(&preds, &labels.index_select(0, &idx).unsqueeze(1));
        let any = flips.any_dim(1, false);
        let k = flips.to_kind(Kind::Int64).argmax(1, false).unsqueeze(1);
        let at_k = cand.gather(1, &k, false).squeeze_dim(1);
        let before_k = cand
            .gather(1, &(&k - 1).clamp_min(0), false)
            .squeeze_dim(1)
            .where_self(&k.squeeze_dim(1).gt(0), &lo);
        let last = cand.select(1, q - 1);
        // No interior point flips: the flip lies between the last one and the old upper end.
        let new_hi = at_k.where_self(&any, &hi);
        let new_lo = before_k.where_self(&any, &last);
        upper = upper.index_copy(0, &idx, &new_hi);
        lower = lower.index_copy(0, &idx, &new_lo);
    }
    Ok(Search {
        status,
        threshold: upper,
        lower,
        rounds,
        forwards,
    })
}

/// The sweep's epsilons `0, step, 2 step, ..., max` as float32 (each `k * step` is
/// rounded once, so 0.3 is the float32 nearest 0.3).
pub fn eps_grid(step: f64, max: f64) -> Result<Vec<f32>> {
    if !(step > 0.0 && max >= 0.0 && max.is_finite()) {
        bail!("the epsilon sweep needs a positive step ({step}) and a maximum >= 0 ({max})");
    }
    let count = (max / step + 1e-9).floor() as usize + 1;
    if count > 100_000 {
        bail!("the epsilon sweep would have {count} values");
    }
    Ok((0..count)
        .map(|k| ((k as f64 * step * 1e9).round() / 1e9) as f32)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn first_grid_matches_the_notes() {
        let grid = SearchConfig::default().first_grid();
        assert_eq!(grid.len(), 10);
        assert_eq!(grid[0], 0.0);
        assert_eq!(grid[1], 1e-3);
        assert_eq!(grid[9], 1.0);
        // np.logspace(-3, 0, 9)[4] = 10 ** -1.5
        assert!((grid[5] - 10f32.powf(-1.5)).abs() < 1e-7, "{grid:?}");
        assert!(grid.windows(2).all(|w| w[0] < w[1]));
        let c = SearchConfig::default();
        assert!(c.is_closed(grid[0], grid[1]));
        assert!(!c.is_closed(grid[1], grid[2]));
    }

    #[test]
    fn refinement_is_strictly_inside() {
        let lo = Tensor::from_slice(&[0.1f32, 0.0, 0.5]);
        let hi = Tensor::from_slice(&[0.2f32, 0.01, 1.0]);
        let g = refinement_grid(&lo, &hi, 10);
        assert_eq!(g.size(), [3, 8]);
        let v: Vec<f32> = Vec::try_from(g.flatten(0, -1)).unwrap();
        for (i, row) in v.chunks(8).enumerate() {
            let (l, h) = ([0.1f32, 0.0, 0.5][i], [0.2f32, 0.01, 1.0][i]);
            assert!(row.windows(2).all(|w| w[0] < w[1]), "{row:?}");
            assert!(row[0] > l && row[7] < h, "{row:?}");
        }
        // Log spacing: equal ratios.
        let r1 = v[1] / v[0];
        let r2 = v[7] / v[6];
        assert!((r1 - r2).abs() < 1e-5, "{r1} {r2}");
        assert!((r1 - 2f32.powf(1.0 / 9.0)).abs() < 1e-5);
    }

    #[test]
    fn perturb_clips_and_keeps_eps_zero() {
        let x = Tensor::from_slice(&[0.0f32, 0.5, 1.0, 0.25]).view([1, 2, 2]);
        let s = Tensor::from_slice(&[-1.0f32, 1.0, 1.0, 0.0]).view([1, 2, 2]);
        assert!(perturb_all(&x, &s, 0.0).equal(&x));
        let y: Vec<f32> = Vec::try_from(perturb_all(&x, &s, 0.75).flatten(0, -1)).unwrap();
        assert_eq!(y, [0.0, 1.0, 1.0, 0.25]);
        let two = Tensor::cat(&[&x, &x], 0);
        let st = Tensor::cat(&[&s, &s], 0);
        let per = perturb(&two, &st, &Tensor::from_slice(&[0.0f32, 0.25]));
        assert!(per.get(0).equal(&x.get(0)));
        let y: Vec<f32> = Vec::try_from(per.get(1).flatten(0, -1)).unwrap();
        assert_eq!(y, [0.0, 0.75, 1.0, 0.25]);
    }

    #[test]
    fn sweep_grid() {
        let g = eps_grid(0.02, 1.0).unwrap();
        assert_eq!(g.len(), 51);
        assert_eq!(g[15], 0.3f32);
        assert_eq!(g[50], 1.0);
        assert!(eps_grid(0.0, 1.0).is_err());
    }

    /// A one-pixel "model" whose class is 1 once the pixel passes 0.3: the threshold
    /// of a pixel at 0.1 pushed upward is 0.2, found within the tolerance.
    #[derive(Debug)]
    struct Step;
    impl ModuleT for Step {
        fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
            let v = xs.flatten(1, -1).select(1, 0);
            let one = (&v - 0.3).g_mul_scalar(100.0);
            Tensor::stack(&[one.neg(), one, v.zeros_like() - 100.0], 1)
        }
    }

    #[test]
    fn search_on_a_step() {
        let x = Tensor::from_slice(&[0.1f32, 0.1, 0.4, 0.3005]).view([4, 1]);
        let s = Tensor::from_slice(&[1.0f32, -1.0, 1.0, -1.0]).view([4, 1]);
        let labels = Tensor::from_slice(&[0i64, 0, 0, 1]);
        let cfg = SearchConfig {
            chunk: 3,
            ..Default::default()
        };
        let r = threshold_search(&Step, &x.to_device(Device::Cpu), &s, &labels, &cfg).unwrap();
        let status: Vec<i64> = Vec::try_from(&r.status).unwrap();
        assert_eq!(status, [FOUND, NO_FLIP, WRONG_CLEAN, FOUND]);
        let thr: Vec<f32> = Vec::try_from(&r.threshold).unwrap();
        let low: Vec<f32> = Vec::try_from(&r.lower).unwrap();
        assert!(
            thr[0] > 0.2 - 1e-6 && low[0] <= 0.2 && thr[0] - low[0] <= 1e-3,
            "{thr:?} {low:?}"
        );
        // Label 1 just above 0.3, pushed down, flips at the first step: the bracket [0, 1e-3] is closed.
        assert_eq!((thr[3], low[3]), (1e-3, 0.0));
        assert!(r.rounds >= 1);
    }
}
