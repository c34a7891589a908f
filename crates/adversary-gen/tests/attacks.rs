//! APGD and the Square attack: the ball and pixel-range constraints, monotonicity in
//! budget, APGD against a model where fixed-step PGD oscillates, and Square against a
//! model that gives no gradient.

use adversary_gen::apgd::{self, ApgdConfig, ApgdLoss};
use adversary_gen::losses::{margin, Loss};
use adversary_gen::pgd::{self, PgdConfig};
use adversary_gen::square::{self, SquareConfig};
use adversary_gen::synthetic;
use nullclass::fgsm::loss_gradient;
use nullclass::model::LoadedModel;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

fn hashed_case() -> (LoadedModel, Tensor, Tensor, Tensor) {
    tch::set_num_threads(1);
    let model = synthetic::hashed_model(4242);
    let x = synthetic::blob_images(24, 9).to_kind(Kind::Float) / 255.0;
    let x = x.view([24, 1, 28, 28]);
    let y = model.predict(&x, 64);
    let ids = Tensor::arange(24, (Kind::Int64, Device::Cpu)) * 7;
    (model, x, y, ids)
}

fn apgd_config(eps: f32, n_iter: usize, n_restarts: usize) -> ApgdConfig {
    ApgdConfig {
        eps,
        n_iter,
        n_restarts,
        odi_steps: 0,
        seed: 5,
    }
}

fn square_config(eps: f32, n_queries: usize) -> SquareConfig {
    SquareConfig {
        eps,
        n_queries,
        p_init: 0.8,
        seed: 5,
    }
}

fn check_ball(images: &Tensor, x: &Tensor, eps: f32) {
    let d = (images - x).abs().max().double_value(&[]);
    assert!(d <= f64::from(eps) + 1e-6, "left the ball: {d} > {eps}");
    assert!(images.min().double_value(&[]) >= 0.0);
    assert!(images.max().double_value(&[]) <= 1.0);
    assert_eq!(images.size(), x.size());
}

#[test]
fn apgd_and_square_stay_in_the_ball_and_the_pixel_range() {
    let (model, x, y, ids) = hashed_case();
    for (eps, odi_steps) in [(0.05f32, 0), (0.3, 0), (0.3, 2)] {
        let cfg = ApgdConfig {
            odi_steps,
            ..apgd_config(eps, 6, 1)
        };
        let r = apgd::attack(&model.net, &x, &y, &ids, &apgd::ensemble(2), &cfg);
        check_ball(&r.images, &x, eps);
        let m = margin(&model.net.forward_t(&r.images, false), &y);
        assert!(
            m.allclose(&r.margin, 1e-4, 1e-4, false),
            "kept margin is stale"
        );
        let s = square::attack(&model.net, &x, &y, &ids, &square_config(eps, 30));
        check_ball(&s.images, &x, eps);
        let m = margin(&model.net.forward_t(&s.images, false), &y);
        assert!(
            m.allclose(&s.margin, 1e-4, 1e-4, false),
            "kept margin is stale"
        );
        assert!(s.queries.max().int64_value(&[]) <= 30);
    }
}

fn broken(r: &Tensor) -> Vec<bool> {
    Vec::try_from(r.gt(0.0)).unwrap()
}

#[test]
fn more_apgd_restarts_or_targets_never_weaken_the_attack() {
    let (model, x, y, ids) = hashed_case();
    let run = |targets: usize, restarts: usize| {
        let r = apgd::attack(
            &model.net,
            &x,
            &y,
            &ids,
            &apgd::ensemble(targets),
            &apgd_config(0.01, 5, restarts),
        );
        broken(&r.margin)
    };
    let cases = [((0, 1), (3, 1)), ((0, 1), (0, 3)), ((3, 1), (9, 2))];
    let mut strictly = false;
    let mut counts = Vec::new();
    for ((t1, r1), (t2, r2)) in cases {
        let (weak, strong) = (run(t1, r1), run(t2, r2));
        for (i, (w, s)) in weak.iter().zip(&strong).enumerate() {
            assert!(
                !w || *s,
                "image {i} broken with {t1} targets x {r1} restarts but not {t2} x {r2}"
            );
        }
        let count = |v: &[bool]| v.iter().filter(|&&b| b).count();
        assert!(count(&weak) < weak.len(), "eps too large for this check");
        strictly |= count(&strong) > count(&weak);
        counts.push((count(&weak), count(&strong)));
    }
    assert!(
        strictly,
        "no case where more budget broke more images (broken, weak and strong: {counts:?})"
    );
}

/// Pixel 0 alone decides: digit 1's logit is `K (w^2 - (a - c)^2)`, positive only
/// within `w` of `c`; the label's logit is 0 and every other class far below. The
/// loss is a narrow peak: sign steps of a fixed size straddle it forever, landing
/// within `w` only for starts that happen to fall on the right grid.
#[derive(Debug)]
struct NarrowPeak;

const PEAK_C: f64 = 0.3537;
const PEAK_W: f64 = 0.0015;

impl ModuleT for NarrowPeak {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let a = xs.flatten(1, -1).select(1, 0);
        let d = (&a - PEAK_C).square();
        let one = (d.neg() + PEAK_W * PEAK_W).g_mul_scalar(1e5);
        // Far below digit 1 anywhere in the ball, so that digit 1 is the best wrong one.
        let far = a.zeros_like() - 1e7;
        let mut cols = vec![a.zeros_like(), one];
        cols.extend((2..11).map(|_| far.shallow_clone()));
        Tensor::stack(&cols, 1)
    }
}

fn peak_case(b: i64) -> (Tensor, Tensor, Tensor) {
    let x = Tensor::zeros([b, 1, 28, 28], (Kind::Float, Device::Cpu));
    let _ = x.view([b, -1]).narrow(1, 0, 1).fill_(0.3);
    let y = Tensor::zeros([b], (Kind::Int64, Device::Cpu));
    (x, y, Tensor::arange(b, (Kind::Int64, Device::Cpu)) * 13)
}

#[test]
fn apgd_reaches_a_peak_that_fixed_step_pgd_oscillates_around() {
    let (x, y, ids) = peak_case(32);
    let pgd_cfg = PgdConfig {
        eps: 0.1,
        step: 0.01,
        steps: 100,
        restarts: 1,
        random_start: true,
        seed: 3,
    };
    let p = pgd::attack(&NarrowPeak, &x, &y, &ids, &[Loss::Margin], &pgd_cfg);
    let a = apgd::attack(
        &NarrowPeak,
        &x,
        &y,
        &ids,
        &[ApgdLoss::Plain(Loss::Margin)],
        &apgd_config(0.1, 100, 1),
    );
    assert_eq!(a.successes(), 32, "APGD should converge onto the peak");
    assert!(
        p.successes() < 24,
        "fixed-step PGD broke {} of 32: the peak is not narrow enough to test anything",
        p.successes()
    );
}

/// A model with no gradient (its logits read rounded pixels): the mean of the
/// top-left 8 x 8 patch raises digit 3, that of the bottom-right patch the null
/// class; from 0.3 everywhere, only raising the first patch and not the second wins.
#[derive(Debug)]
struct Staircase;

impl ModuleT for Staircase {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let q = (xs.g_mul_scalar(10.0)).round().g_mul_scalar(0.1);
        let patch = |r: i64, c: i64| {
            q.narrow(2, r, 8)
                .narrow(3, c, 8)
                .mean_dim(&[1i64, 2, 3][..], false, Kind::Float)
        };
        let three = (patch(0, 0) - 0.45).g_mul_scalar(20.0);
        let null = (patch(20, 20) - 0.45).g_mul_scalar(20.0);
        let zero = three.zeros_like();
        let far = zero.shallow_clone() - 100.0;
        let mut cols = vec![zero.shallow_clone()];
        cols.extend((1..3).map(|_| far.shallow_clone()));
        cols.push(three);
        cols.extend((4..10).map(|_| far.shallow_clone()));
        cols.push(null);
        Tensor::stack(&cols, 1)
    }
}

#[test]
fn square_finds_the_wrong_digit_without_gradients() {
    let b = 12;
    let x = Tensor::full([b, 1, 28, 28], 0.3, (Kind::Float, Device::Cpu));
    let y = Tensor::zeros([b], (Kind::Int64, Device::Cpu));
    let ids = Tensor::arange(b, (Kind::Int64, Device::Cpu));
    let (_, g) = loss_gradient(&Staircase, &x, |z| margin(z, &y));
    assert_eq!(
        g.abs().max().double_value(&[]),
        0.0,
        "the model leaks a gradient"
    );
    let pgd_cfg = PgdConfig {
        eps: 0.3,
        step: 0.01,
        steps: 20,
        restarts: 1,
        random_start: true,
        seed: 3,
    };
    let p = pgd::attack(&Staircase, &x, &y, &ids, &[Loss::Margin], &pgd_cfg);
    assert!(
        p.successes() < b,
        "PGD from random starts broke every image: the check needs no search"
    );
    let s = square::attack(&Staircase, &x, &y, &ids, &square_config(0.3, 1000));
    let pred = Staircase.forward_t(&s.images, false).argmax(1, false);
    assert!(pred.eq(3).all().int64_value(&[]) != 0, "{pred:?}");
    assert_eq!(s.successes(), b);
    assert!(s.queries.max().int64_value(&[]) < 1000);
}

/// A plateau for every loss of APGD: digit 3's logit `200 clamp(s - 0.45, 0, 0.05) - 5`
/// (`s` the image's mean pixel) is flat at the sources (0.3 everywhere) and at every
/// uniform start, and no other logit the losses read moves; only digit 5's logit, far
/// below all others, follows `s`. Starts that differ in pixels but not in output climb
/// nothing; an output-diversified start moves `s` by eps one way or the other, and
/// the way up (s = 0.6) puts digit 3 on top. The null models' version of this: every
/// uniform start at eps 0.3 is called null (BENCHMARKS.md, session 9).
#[derive(Debug)]
struct Plateau;

impl ModuleT for Plateau {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let s = xs.flatten(1, -1).mean_dim(&[1i64][..], false, Kind::Float);
        let label = s.zeros_like();
        let three = (&s - 0.45).clamp(0.0, 0.05).g_mul_scalar(200.0) - 5.0;
        let five = s.g_mul_scalar(10.0) - 1000.0;
        let rest = || label.shallow_clone() - 500.0;
        let mut cols = vec![label.shallow_clone(), rest(), rest(), three, rest(), five];
        cols.extend((6..10).map(|_| rest()));
        cols.push(label.shallow_clone() - 1.0);
        Tensor::stack(&cols, 1)
    }
}

#[test]
fn output_diversified_starts_leave_a_plateau_that_uniform_starts_cannot() {
    let b = 24;
    let x = Tensor::full([b, 1, 28, 28], 0.3, (Kind::Float, Device::Cpu));
    let y = Tensor::zeros([b], (Kind::Int64, Device::Cpu));
    let ids = Tensor::arange(b, (Kind::Int64, Device::Cpu)) * 11;
    let losses = apgd::ensemble(0);
    let run = |odi_steps: usize| {
        let cfg = ApgdConfig {
            odi_steps,
            ..apgd_config(0.3, 20, 3)
        };
        let r = apgd::attack(&Plateau, &x, &y, &ids, &losses, &cfg);
        check_ball(&r.images, &x, 0.3);
        r.successes()
    };
    assert_eq!(
        run(0),
        0,
        "uniform starts got off the plateau: it tests nothing"
    );
    let diversified = run(2);
    // 4 losses x 3 restarts, each direction up with chance 1/2: all 24 but by a fluke.
    assert!(diversified >= b - 1, "ODI broke {diversified} of {b}");
}

/// Two 14 x 14 patches, P1 top-left and P2 bottom-right, of mean `m1` and `m2`: a gate
/// `a = clamp((m1 - 0.35) / 0.25, 0, 1)`, digit 3's logit `a (2 m2 - 0.1) - 0.9`,
/// digit 7's `4 m1 - 3.6` (never on top), the label's 0 and null -5. From 0.3
/// everywhere (and every uniform start, whose patch means stay within 0.05 of 0.3), the
/// gate is shut: the margin (digit 3 against the label) is flat. The targeted
/// cross-entropy at digit 7 opens the gate (m1 to 0.6) and drags m2 down, so its runs
/// keep a best point at margin -0.4, from which the margin climbs m2 to a wrong digit
/// (m2 above 0.5); from a random start it climbs nothing.
#[derive(Debug)]
struct Gate;

impl ModuleT for Gate {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let mean = |r: i64| {
            xs.narrow(2, r, 14)
                .narrow(3, r, 14)
                .mean_dim(&[1i64, 2, 3][..], false, Kind::Float)
        };
        let (m1, m2) = (mean(0), mean(14));
        let a = ((&m1 - 0.35) / 0.25).clamp(0.0, 1.0);
        let three = a * (m2.g_mul_scalar(2.0) - 0.1) - 0.9;
        let seven = m1.g_mul_scalar(4.0) - 3.6;
        let label = three.zeros_like();
        let far = || label.shallow_clone() - 100.0;
        let mut cols = vec![
            label.shallow_clone(),
            far(),
            far(),
            three,
            far(),
            far(),
            far(),
        ];
        cols.extend([seven, far(), far(), label.shallow_clone() - 5.0]);
        Tensor::stack(&cols, 1)
    }
}

#[test]
fn the_margin_from_the_best_point_finishes_what_another_loss_started() {
    let b = 16;
    let x = Tensor::full([b, 1, 28, 28], 0.3, (Kind::Float, Device::Cpu));
    let y = Tensor::zeros([b], (Kind::Int64, Device::Cpu));
    let ids = Tensor::arange(b, (Kind::Int64, Device::Cpu)) * 5;
    // Digit 7 is the second-strongest wrong digit of the clean image (after 3).
    let opener = ApgdLoss::TargetedCrossEntropy { rank: 2 };
    let run = |losses: &[ApgdLoss]| {
        let r = apgd::attack(&Gate, &x, &y, &ids, losses, &apgd_config(0.3, 20, 2));
        check_ball(&r.images, &x, 0.3);
        r
    };
    let fresh = run(&[opener, ApgdLoss::Plain(Loss::Margin)]);
    assert_eq!(
        fresh.successes(),
        0,
        "the margin from random starts broke the gate: it tests nothing"
    );
    let best = fresh.margin.max().double_value(&[]);
    assert!(
        best > -0.45,
        "the opener did not open the gate (best margin {best})"
    );
    let from_best = run(&[opener, ApgdLoss::MarginFromBest]);
    assert_eq!(from_best.successes(), b, "{:?}", from_best.margin);
    let alone = run(&[ApgdLoss::MarginFromBest]);
    assert_eq!(alone.successes(), 0, "from the source, the gate is shut");
}
