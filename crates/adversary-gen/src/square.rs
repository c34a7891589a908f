//! The Square attack (Andriushchenko et al. 2020, "Square Attack: a query-efficient
//! black-box adversarial attack via random search"), L-infinity, batched over images.
//!
//! It uses the model's scores only, never a gradient: the check that what holds an
//! image against the gradient attacks is not gradient masking. Each query sets one
//! random square of the perturbation to +eps or -eps and keeps the change if the
//! null-aware [`margin`] rose; the square's area shrinks on the paper's schedule.
//! An image stops being queried once a wrong digit wins.
//!
//! Every random number (square positions and signs) comes from the counter-based
//! per-image streams of [`pgd::image_bits`](crate::pgd::image_bits), so an image gets
//! the same attack whatever batch it is in. Unlike the paper's code, each image draws
//! its own square position per query (the paper's draws one per batch).

use serde::Serialize;
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

use crate::losses::margin;
use crate::pgd::image_bits;

const SIDE: i64 = 28;
/// Distinguishes the Square attack's streams from the others'.
const STREAM: u64 = 0x7371_7561_0000_0000;

/// One Square attack's settings, named as in the paper and AutoAttack.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SquareConfig {
    /// Radius of the L-infinity ball around the source image.
    pub eps: f32,
    /// Forward passes per image, the initialisation included (`n_queries`).
    pub n_queries: usize,
    /// Share of the pixels the first squares cover (`p_init`; AutoAttack's 0.8).
    pub p_init: f64,
    /// Seeds the random squares (with the image's test index).
    pub seed: u64,
}

/// The kept worst case for each image of a batch.
#[derive(Debug)]
pub struct SquareResult {
    /// float32 `[B,1,28,28]`, inside the ball and [0, 1].
    pub images: Tensor,
    /// float32 `[B]`: the attacked model's margin at `images`.
    pub margin: Tensor,
    /// int64 `[B]`: queries spent per image.
    pub queries: Tensor,
}

impl SquareResult {
    pub fn successes(&self) -> i64 {
        self.margin.gt(0.0).sum(Kind::Int64).int64_value(&[])
    }
}

/// The share of pixels the square covers at query `i` of `n_queries`: the paper's
/// piecewise-constant schedule, written for 10,000 queries and rescaled to the budget.
pub fn p_at(p_init: f64, i: usize, n_queries: usize) -> f64 {
    let i = (i as f64 / n_queries.max(1) as f64 * 10_000.0) as usize;
    let halvings = match i {
        0..=10 => 0,
        11..=50 => 1,
        51..=200 => 2,
        201..=500 => 3,
        501..=1000 => 4,
        1001..=2000 => 5,
        2001..=4000 => 6,
        4001..=6000 => 7,
        6001..=8000 => 8,
        _ => 9,
    };
    p_init / f64::from(1u32 << halvings)
}

/// The square's side for share `p` of the 28 x 28 pixels: at least 1, at most 27.
pub fn side_for(p: f64) -> i64 {
    ((p * (SIDE * SIDE) as f64).sqrt().round() as i64).clamp(1, SIDE - 1)
}

/// Attacks `images` (`[B,1,28,28]` in [0, 1]; `labels`, test indices `ids` int64
/// `[B]`) with `cfg.n_queries` queries per image at most.
pub fn attack<M: ModuleT>(
    net: &M,
    images: &Tensor,
    labels: &Tensor,
    ids: &Tensor,
    cfg: &SquareConfig,
) -> SquareResult {
    let b = images.size()[0];
    let device = images.device();
    let eps = f64::from(cfg.eps);
    let lo = (images - eps).clamp_min(0.0);
    let hi = (images + eps).clamp_max(1.0);
    let forward = |x: &Tensor| tch::no_grad(|| net.forward_t(x, false));

    // Vertical stripes of +-eps, one sign per column (the paper's initialisation).
    let column = image_bits(ids, cfg.seed ^ STREAM, SIDE)
        .bitwise_and(1)
        .to_kind(Kind::Float)
        .g_mul_scalar(2.0)
        .g_sub_scalar(1.0)
        .view([b, 1, 1, SIDE]);
    let mut best = (images + column.g_mul_scalar(eps))
        .maximum(&lo)
        .minimum(&hi);
    let mut best_margin = margin(&forward(&best), labels);
    let mut queries = Tensor::ones([b], (Kind::Int64, device));
    let rows = Tensor::arange(SIDE, (Kind::Int64, device));
    for i in 1..cfg.n_queries {
        let active = best_margin.le(0.0).nonzero().squeeze_dim(1);
        let a = active.size()[0];
        if a == 0 {
            break;
        }
        let pick = |t: &Tensor| t.index_select(0, &active);
        let (x, x_best, y) = (pick(images), pick(&best), pick(labels));
        let (lo_a, hi_a) = (pick(&lo), pick(&hi));
        let s = side_for(p_at(cfg.p_init, i, cfg.n_queries));
        let bits = image_bits(&pick(ids), cfg.seed ^ STREAM ^ ((i as u64) << 24), 3);
        let top = bits.select(1, 0).remainder(SIDE - s + 1).view([a, 1, 1, 1]);
        let left = bits.select(1, 1).remainder(SIDE - s + 1).view([a, 1, 1, 1]);
        let sign = bits
            .select(1, 2)
            .bitwise_and(1)
            .to_kind(Kind::Float)
            .g_mul_scalar(2.0)
            .g_sub_scalar(1.0)
            .view([a, 1, 1, 1]);
        let r = rows.view([1, 1, SIDE, 1]);
        let c = rows.view([1, 1, 1, SIDE]);
        let inside = r
            .ge_tensor(&top)
            .logical_and(&r.lt_tensor(&(&top + s)))
            .logical_and(&c.ge_tensor(&left))
            .logical_and(&c.lt_tensor(&(&left + s)));
        let propose = |sign: &Tensor| {
            let square = (&x + sign.g_mul_scalar(eps)).maximum(&lo_a).minimum(&hi_a);
            square.where_self(&inside, &x_best)
        };
        // A square that changes nothing would waste the query: take the other sign.
        let mut x_new = propose(&sign);
        let same = (&x_new - &x_best)
            .abs()
            .flatten(1, -1)
            .amax(1, false)
            .lt(1e-7)
            .view([a, 1, 1, 1]);
        if same.any().int64_value(&[]) != 0 {
            x_new = propose(&(-&sign)).where_self(&same, &x_new);
        }
        let m = margin(&forward(&x_new), &y);
        let kept = pick(&best_margin);
        let better = m.gt_tensor(&kept);
        best = best.index_copy(
            0,
            &active,
            &x_new.where_self(&better.view([-1, 1, 1, 1]), &x_best),
        );
        best_margin = best_margin.index_copy(0, &active, &m.where_self(&better, &kept));
        queries = queries.index_add(0, &active, &Tensor::ones([a], (Kind::Int64, device)));
    }
    SquareResult {
        images: best,
        margin: best_margin,
        queries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_halves_at_the_papers_points() {
        assert_eq!(p_at(0.8, 0, 10_000), 0.8);
        assert_eq!(p_at(0.8, 11, 10_000), 0.4);
        assert_eq!(p_at(0.8, 9000, 10_000), 0.8 / 512.0);
        // Rescaled: query 100 of 1000 is query 1000 of 10,000.
        assert_eq!(p_at(0.8, 100, 1000), 0.8 / 16.0);
        assert_eq!(side_for(0.8), 25);
        assert_eq!(side_for(1e-6), 1);
    }
}
