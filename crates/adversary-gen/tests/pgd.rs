//! PGD and the attack losses: a case whose answer is known by construction, the ball
//! and pixel-range constraints, and monotonicity in steps and restarts.

use adversary_gen::losses::{succeeded, Loss};
use adversary_gen::pgd::{self, PgdConfig};
use adversary_gen::synthetic;
use nullclass::model::LoadedModel;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

fn all(t: &Tensor) -> bool {
    t.all().int64_value(&[]) != 0
}

/// Two pixels decide everything: `a` (pixel 0) raises the null logit, `b` (pixel 1)
/// raises digit 1; the label 0 logit is 0 and the other digits are far below.
/// From a = b = 0.3, pushing both up (what the sign of the cross-entropy gradient
/// does: both partial derivatives are positive) lands in the null class; only
/// lowering `a` while raising `b` reaches digit 1.
#[derive(Debug)]
struct NullTrap;

impl ModuleT for NullTrap {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let flat = xs.flatten(1, -1);
        let (a, b) = (flat.select(1, 0), flat.select(1, 1));
        let zero = a.zeros_like();
        let far = a.zeros_like() - 100.0;
        let mut cols = vec![zero, b.g_mul_scalar(10.0) - 5.0];
        cols.extend((2..10).map(|_| far.shallow_clone()));
        cols.push(a.g_mul_scalar(10.0) - 2.0);
        Tensor::stack(&cols, 1)
    }
}

fn trap_images() -> Tensor {
    let x = Tensor::zeros([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let flat = x.view([4, -1]);
    let _ = flat.narrow(1, 0, 2).fill_(0.3);
    x
}

fn config(eps: f32, steps: usize, restarts: usize) -> PgdConfig {
    PgdConfig {
        eps,
        step: 0.01,
        steps,
        restarts,
        random_start: true,
        seed: 11,
    }
}

#[test]
fn margin_loss_reaches_the_digit_that_cross_entropy_misses() {
    let x = trap_images();
    let y = Tensor::zeros([4], (Kind::Int64, Device::Cpu));
    let ids = Tensor::arange(4, (Kind::Int64, Device::Cpu));
    let cfg = config(0.3, 60, 1);
    let ce = pgd::attack(&NullTrap, &x, &y, &ids, &[Loss::CrossEntropy], &cfg);
    let pred = NullTrap.forward_t(&ce.images, false).argmax(1, false);
    assert!(
        all(&pred.eq(10)),
        "cross-entropy PGD should end in the null class, got {pred:?}"
    );
    assert_eq!(ce.successes(), 0);

    let margin = pgd::attack(&NullTrap, &x, &y, &ids, &[Loss::Margin], &cfg);
    let logits = NullTrap.forward_t(&margin.images, false);
    assert!(all(&logits.argmax(1, false).eq(1)), "{logits:?}");
    assert!(all(&succeeded(&logits, &y)));
    assert_eq!(margin.successes(), 4);
    // The targeted run at digit 1 (offset 1) gets there as well.
    let targeted = pgd::attack(
        &NullTrap,
        &x,
        &y,
        &ids,
        &[Loss::Targeted { offset: 1 }],
        &cfg,
    );
    assert_eq!(targeted.successes(), 4);
}

fn hashed_case() -> (LoadedModel, Tensor, Tensor, Tensor) {
    let model = synthetic::hashed_model(4242);
    let x = synthetic::blob_images(24, 9).to_kind(Kind::Float) / 255.0;
    let x = x.view([24, 1, 28, 28]);
    let y = model.predict(&x, 64);
    let ids = Tensor::arange(24, (Kind::Int64, Device::Cpu)) * 7;
    (model, x, y, ids)
}

#[test]
fn pgd_stays_in_the_ball_and_the_pixel_range() {
    let (model, x, y, ids) = hashed_case();
    for eps in [0.05f32, 0.3] {
        let r = pgd::attack(
            &model.net,
            &x,
            &y,
            &ids,
            &pgd::adaptive_losses(true),
            &config(eps, 8, 2),
        );
        let d = (&r.images - &x).abs().max().double_value(&[]);
        assert!(d <= f64::from(eps) + 1e-6, "left the ball: {d} > {eps}");
        assert!(r.images.min().double_value(&[]) >= 0.0);
        assert!(r.images.max().double_value(&[]) <= 1.0);
        assert_eq!(r.images.size(), x.size());
    }
}

/// Images broken by the weaker attack (fewer steps, or fewer restarts, same seed).
fn broken(steps: usize, restarts: usize, losses: &[Loss]) -> Vec<bool> {
    let (model, x, y, ids) = hashed_case();
    let r = pgd::attack(
        &model.net,
        &x,
        &y,
        &ids,
        losses,
        &config(0.02, steps, restarts),
    );
    Vec::try_from(r.margin.gt(0.0)).unwrap()
}

#[test]
fn more_steps_or_restarts_never_weaken_the_attack() {
    let losses = pgd::adaptive_losses(true);
    let cases = [((2, 1), (10, 1)), ((5, 1), (5, 4)), ((2, 1), (10, 3))];
    let mut strictly_stronger = false;
    for ((s1, r1), (s2, r2)) in cases {
        let weak = broken(s1, r1, &losses);
        let strong = broken(s2, r2, &losses);
        for (i, (w, s)) in weak.iter().zip(&strong).enumerate() {
            assert!(
                !w || *s,
                "image {i} broken with {s1} steps x {r1} restarts but not with {s2} x {r2}"
            );
        }
        let count = |v: &[bool]| v.iter().filter(|&&b| b).count();
        strictly_stronger |= count(&strong) > count(&weak);
        // The case must not be trivial: some images survive the weak attack.
        assert!(count(&weak) < weak.len(), "eps too large for this check");
    }
    assert!(
        strictly_stronger,
        "no case where more effort broke more images: the check cannot fail"
    );
}

#[test]
fn start_noise_is_uniform_and_depends_on_image_and_restart() {
    let ids = Tensor::from_slice(&[0i64, 1, 9999]);
    let a = pgd::start_noise(&ids, 3, 0, 784);
    let b = pgd::start_noise(&ids, 3, 1, 784);
    assert!(a.min().double_value(&[]) >= -1.0 && a.max().double_value(&[]) < 1.0);
    assert!(a.mean(Kind::Float).double_value(&[]).abs() < 0.05);
    assert!(!a.get(0).equal(&a.get(1)));
    assert!(!a.equal(&b));
    // Batch-independent: image 9999 alone gets the same start.
    let alone = pgd::start_noise(&Tensor::from_slice(&[9999i64]), 3, 0, 784);
    assert!(alone.get(0).equal(&a.get(2)));
}
