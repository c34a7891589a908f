//! The toy ramp task: generator properties, the grid probe on a model whose
//! decision regions are known by construction, a short null training run, and
//! the Keras-style Adam with its saved state.

use std::collections::HashMap;

use nullclass::ramp::{self, Adam, RampModel, DOWN, GRID, NOISE, NULL, UP};
use tch::nn::{ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Torch's global generator is shared by the tests of this binary, which run in
/// parallel: each test holds this lock so that its seeded draws are its own.
static GLOBAL_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn rows(t: &Tensor) -> Vec<[f64; 3]> {
    let v = Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap();
    v.chunks(3).map(|c| [c[0], c[1], c[2]]).collect()
}

fn ints(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.flatten(0, -1)).unwrap()
}

/// How far `x` lies from the prototype, per pixel, at worst.
fn distance(x: &[f64; 3], proto: &[f64; 3]) -> f64 {
    (0..3).map(|d| (x[d] - proto[d]).abs()).fold(0.0, f64::max)
}

#[test]
fn ramp_samples_lie_near_their_own_prototype() {
    let _rng = rng_lock();
    tch::manual_seed(1);
    let n = 20_000;
    let b = ramp::ramps(n, Device::Cpu);
    let images = rows(&b.images);
    let labels = ints(&b.labels);
    let offsets = ints(&b.offsets);
    let mut per_label = [0usize; 2];
    let mut per_offset = [0usize; 2];
    let mut worst = 0.0f64;
    let mut clipped_to_zero = 0usize;
    for ((x, &label), &offset) in images.iter().zip(&labels).zip(&offsets) {
        assert!(label == DOWN || label == UP, "label {label}");
        assert!(
            x.iter().all(|v| (0.0..=1.0).contains(v)),
            "{x:?} outside [0, 1]"
        );
        // Within 0.05 (float slack) of a prototype of its own class at some position.
        let own = [0, 1]
            .iter()
            .map(|&o| distance(x, &ramp::prototype(label, o)))
            .fold(f64::MAX, f64::min);
        assert!(
            own <= NOISE + 1e-6,
            "{x:?} labelled {label} is {own} from its prototypes"
        );
        // ... and farther than that from every prototype of the other class.
        let other = 1 - label;
        for o in [0, 1] {
            assert!(
                distance(x, &ramp::prototype(other, o)) > NOISE,
                "{x:?} also fits class {other}"
            );
        }
        assert!(distance(x, &ramp::prototype(label, offset)) <= NOISE + 1e-6);
        worst = worst.max(distance(x, &ramp::prototype(label, offset)));
        let background = if offset == 0 { x[2] } else { x[0] };
        clipped_to_zero += usize::from(background == 0.0);
        per_label[label as usize] += 1;
        per_offset[offset as usize] += 1;
    }
    // The noise reaches its full width, and the background pixel is clipped about
    // half the time (noise below 0).
    assert!(worst > 0.049, "noise never came near 0.05: {worst}");
    let clip_share = clipped_to_zero as f64 / n as f64;
    assert!(
        (0.45..0.55).contains(&clip_share),
        "background clipped in {clip_share} of samples"
    );
    for count in per_label.iter().chain(&per_offset) {
        assert!(
            (*count as f64 / n as f64 - 0.5).abs() < 0.02,
            "{per_label:?} {per_offset:?}"
        );
    }
}

#[test]
fn prototypes_match_the_report() {
    let _rng = rng_lock();
    assert_eq!(ramp::prototype(DOWN, 0), [0.666, 0.333, 0.0]);
    assert_eq!(ramp::prototype(DOWN, 1), [0.0, 0.666, 0.333]);
    assert_eq!(ramp::prototype(UP, 0), [0.333, 0.666, 0.0]);
    assert_eq!(ramp::prototype(UP, 1), [0.0, 0.333, 0.666]);
}

#[test]
fn null_batches_mix_uniform_noise_at_the_asked_rate() {
    let _rng = rng_lock();
    tch::manual_seed(2);
    let n = 20_000;
    let b = ramp::batch(n, 0.5, Device::Cpu);
    let images = rows(&b.images);
    let labels = ints(&b.labels);
    let offsets = ints(&b.offsets);
    let nulls: Vec<&[f64; 3]> = images
        .iter()
        .zip(&labels)
        .filter(|(_, &l)| l == NULL)
        .map(|(x, _)| x)
        .collect();
    let share = nulls.len() as f64 / n as f64;
    assert!((share - 0.5).abs() < 0.02, "null share {share}");
    // Uniform over the cube: mean 0.5 and variance 1/12 per pixel.
    for d in 0..3 {
        let mean = nulls.iter().map(|x| x[d]).sum::<f64>() / nulls.len() as f64;
        let var = nulls.iter().map(|x| (x[d] - mean).powi(2)).sum::<f64>() / nulls.len() as f64;
        assert!(
            (mean - 0.5).abs() < 0.02 && (var - 1.0 / 12.0).abs() < 0.01,
            "pixel {d}: {mean} {var}"
        );
    }
    for ((x, &l), &o) in images.iter().zip(&labels).zip(&offsets) {
        if l == NULL {
            assert_eq!(o, -1);
        } else {
            assert!(distance(x, &ramp::prototype(l, o)) <= NOISE + 1e-6);
        }
    }
    let base = ramp::batch(1000, 0.0, Device::Cpu);
    assert!(
        ints(&base.labels).iter().all(|&l| l != NULL),
        "baseline batches hold no nulls"
    );
}

#[test]
fn grid_points_are_in_c_order() {
    let _rng = rng_lock();
    let g = rows(&ramp::grid_points(GRID, Device::Cpu));
    assert_eq!(g.len(), (GRID * GRID * GRID) as usize);
    let n = GRID as usize;
    let (i, j, k) = (3, 17, 40);
    let x = g[(i * n + j) * n + k];
    let want = [i, j, k].map(|v| v as f64 / GRID as f64);
    assert!(distance(&x, &want) < 1e-6, "{x:?} vs {want:?}");
    assert_eq!(g[0], [0.0, 0.0, 0.0]);
    assert!(
        g.iter().flatten().all(|&v| (0.0..1.0).contains(&v)),
        "grid leaves [0, 1)"
    );
}

/// A model wired by hand: the convolutions pass each pixel through unchanged (so
/// after the stride-1 pool the features are max(x0, x1) and max(x1, x2)), and the
/// dense layers give logits down = 10 (max(x0, x1) - 0.75), up = 10 (max(x1, x2) -
/// 0.55), null = 0. The unequal thresholds make the regions change under any swap
/// of grid axes.
fn hand_built_model() -> RampModel {
    let m = RampModel::fresh(Device::Cpu);
    let mut p: HashMap<String, Tensor> = HashMap::new();
    let zeros = |shape: &[i64]| Tensor::zeros(shape, (Kind::Float, Device::Cpu));
    let conv1 = zeros(&[8, 1, 2]);
    let _ = conv1.get(0).get(0).get(0).fill_(1.0);
    let conv2 = zeros(&[16, 8, 2]);
    let _ = conv2.get(0).get(0).get(0).fill_(1.0);
    // Flattened channel-major: index 0 and 1 are channel 0 at the two pooled positions.
    let fc1 = zeros(&[32, 32]);
    let _ = fc1.get(0).get(0).fill_(1.0);
    let _ = fc1.get(1).get(1).fill_(1.0);
    let fc2 = zeros(&[3, 32]);
    let _ = fc2.get(0).get(0).fill_(10.0);
    let _ = fc2.get(1).get(1).fill_(10.0);
    let fc2_bias = Tensor::from_slice(&[-7.5f32, -5.5, 0.0]);
    p.insert("conv1.weight".into(), conv1);
    p.insert("conv1.bias".into(), zeros(&[8]));
    p.insert("conv2.weight".into(), conv2);
    p.insert("conv2.bias".into(), zeros(&[16]));
    p.insert("fc1.weight".into(), fc1);
    p.insert("fc1.bias".into(), zeros(&[32]));
    p.insert("fc2.weight".into(), fc2);
    p.insert("fc2.bias".into(), fc2_bias);
    m.set_parameters(&p).unwrap();
    m
}

#[test]
fn grid_probe_labels_known_regions() {
    let _rng = rng_lock();
    let m = hand_built_model();
    let labels = m.probe_grid(GRID);
    assert_eq!(labels.size(), [GRID, GRID, GRID]);
    assert_eq!(labels.kind(), Kind::Int64);
    let got = ints(&labels);
    let n = GRID as usize;
    let mut checked = 0;
    let mut per_class = [0usize; 3];
    for i in 0..n {
        for j in 0..n {
            for k in 0..n {
                let [x0, x1, x2] = [i, j, k].map(|v| v as f64 / GRID as f64);
                let logits = [10.0 * (x0.max(x1) - 0.75), 10.0 * (x1.max(x2) - 0.55), 0.0];
                let mut sorted = logits;
                sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
                if sorted[0] - sorted[1] < 1e-3 {
                    continue; // a tie: either answer is right
                }
                let want = (0..3)
                    .max_by(|&a, &b| logits[a].partial_cmp(&logits[b]).unwrap())
                    .unwrap();
                assert_eq!(
                    got[(i * n + j) * n + k],
                    want as i64,
                    "grid point ({i}, {j}, {k})"
                );
                per_class[want] += 1;
                checked += 1;
            }
        }
    }
    assert!(
        checked > n * n * n * 9 / 10,
        "only {checked} points checked"
    );
    assert!(per_class.iter().all(|&c| c > 1000), "{per_class:?}");
    // The regions are asymmetric, so a probe with swapped axes would fail above;
    // check one point of each by hand too.
    let at = |i: usize, j: usize, k: usize| got[(i * n + j) * n + k];
    assert_eq!(at(40, 0, 0), DOWN); // x0 = 0.82: only the down feature is high
    assert_eq!(at(0, 0, 45), UP); // x2 = 0.92: only the up feature is high
    assert_eq!(at(10, 10, 10), NULL);
    let shares = ramp::class_shares(&labels);
    assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!((shares[NULL as usize] - per_class[2] as f64 / (n * n * n) as f64).abs() < 0.05);
}

#[test]
fn a_few_hundred_null_training_steps_run_and_learn() {
    let _rng = rng_lock();
    // One thread, as `trainer ramp` runs it: more only slow a model this small.
    tch::set_num_threads(1);
    tch::manual_seed(3);
    let m = RampModel::fresh(Device::Cpu);
    let mut opt = Adam::new(&m, 1e-3);
    let first = ramp::train_steps(&m, &mut opt, 50, 32, 0.5).unwrap();
    let later = ramp::train_steps(&m, &mut opt, 250, 32, 0.5).unwrap();
    assert!(first.loss.is_finite() && later.loss.is_finite());
    assert!(
        later.loss < first.loss,
        "loss did not fall: {} -> {}",
        first.loss,
        later.loss
    );
    // Three classes: chance is about 1/3.
    assert!(
        later.accuracy > 0.5,
        "accuracy {} after 300 steps",
        later.accuracy
    );
    let labels = m.probe_grid(GRID);
    let shares = ramp::class_shares(&labels);
    assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    m.vs.save(&path).unwrap();
    let back = RampModel::load(&path, Device::Cpu).unwrap();
    assert!(back.probe_grid(GRID).equal(&labels));
}

/// The model's parameters by name, as f64 values.
fn params(m: &RampModel) -> Vec<(String, Vec<f64>)> {
    let mut v: Vec<(String, Vec<f64>)> =
        m.vs.variables()
            .into_iter()
            .map(|(n, t)| {
                let vals = Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap();
                (n, vals)
            })
            .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn max_param_diff(a: &RampModel, b: &RampModel) -> f64 {
    params(a)
        .iter()
        .zip(params(b))
        .flat_map(|((_, x), (_, y))| {
            x.iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .collect::<Vec<_>>()
        })
        .fold(0.0, f64::max)
}

/// A fixed loss without dropout, so two optimisers see the same gradients.
fn fixed_loss(m: &RampModel, x: &Tensor, y: &Tensor) -> Tensor {
    m.net.forward_t(x, false).cross_entropy_for_logits(y)
}

#[test]
fn adam_without_eps_is_torchs_adam() {
    let _rng = rng_lock();
    // With eps = 0 the Keras and PyTorch placements of eps coincide, so the update
    // rule itself is checked against libtorch's.
    tch::manual_seed(11);
    let x = Tensor::rand([64, 3], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(3, [64], (Kind::Int64, Device::Cpu));
    tch::manual_seed(12);
    let ours = RampModel::fresh(Device::Cpu);
    tch::manual_seed(12);
    let theirs = RampModel::fresh(Device::Cpu);
    assert_eq!(max_param_diff(&ours, &theirs), 0.0);
    let mut adam = Adam::new(&ours, 1e-2);
    adam.eps = 0.0;
    let mut torch = tch::nn::Adam {
        beta1: 0.9,
        beta2: 0.999,
        wd: 0.0,
        eps: 0.0,
        amsgrad: false,
    }
    .build(&theirs.vs, 1e-2)
    .unwrap();
    for _ in 0..20 {
        adam.backward_step(&fixed_loss(&ours, &x, &y));
        torch.backward_step(&fixed_loss(&theirs, &x, &y));
    }
    assert_eq!(adam.step, 20);
    let d = max_param_diff(&ours, &theirs);
    assert!(d < 1e-5, "parameters differ by {d} after 20 steps");
    assert!(
        params(&ours)[0].1 != params(&RampModel::fresh(Device::Cpu))[0].1,
        "nothing moved"
    );
}

#[test]
fn adam_adds_eps_to_the_uncorrected_root_of_v() {
    let _rng = rng_lock();
    // One step: m = (1 - b1) g, v = (1 - b2) g^2, so Keras moves each weight by
    // lr sqrt(1 - b2) g / (sqrt(1 - b2) |g| + eps); PyTorch's placement would give
    // lr g / (|g| + eps). A large eps tells them apart.
    tch::manual_seed(13);
    let x = Tensor::rand([16, 3], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(3, [16], (Kind::Int64, Device::Cpu));
    let m = RampModel::fresh(Device::Cpu);
    let before = params(&m);
    let (lr, eps) = (0.01, 0.05);
    let mut adam = Adam::new(&m, lr);
    adam.eps = eps;
    let loss = fixed_loss(&m, &x, &y);
    loss.backward();
    let grads: Vec<(String, Vec<f64>)> = {
        let mut g: Vec<(String, Vec<f64>)> = m
            .vs
            .variables()
            .into_iter()
            .map(|(n, t)| {
                (
                    n,
                    Vec::<f64>::try_from(t.grad().to_kind(Kind::Double).flatten(0, -1)).unwrap(),
                )
            })
            .collect();
        g.sort_by(|a, b| a.0.cmp(&b.0));
        g
    };
    adam.step();
    let after = params(&m);
    let root = (1.0f64 - 0.999).sqrt();
    let mut checked = 0;
    for ((b, a), g) in before.iter().zip(&after).zip(&grads) {
        for ((w0, w1), g) in b.1.iter().zip(&a.1).zip(&g.1) {
            let keras = lr * root * g / (root * g.abs() + eps);
            assert!(
                (w0 - w1 - keras).abs() < 1e-6,
                "{}: moved {} for gradient {g}, Keras' rule gives {keras}",
                b.0,
                w0 - w1
            );
            if g.abs() > 1e-3 {
                let torch = lr * g / (g.abs() + eps);
                assert!((keras - torch).abs() > 1e-5);
                checked += 1;
            }
        }
    }
    assert!(checked > 10, "too few weights with a gradient: {checked}");
}

#[test]
fn a_saved_state_continues_exactly_as_the_live_one() {
    let _rng = rng_lock();
    tch::set_num_threads(1);
    tch::manual_seed(21);
    let live = RampModel::fresh(Device::Cpu);
    let mut opt = Adam::new(&live, 1e-3);
    ramp::train_steps(&live, &mut opt, 30, 32, 0.0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.safetensors");
    opt.save_with_weights(&path).unwrap();
    let (loaded, mut loaded_opt) = Adam::load_with_weights(&path, 1e-3, Device::Cpu).unwrap();
    assert_eq!(loaded_opt.step, 30);
    assert_eq!(max_param_diff(&live, &loaded), 0.0);
    tch::manual_seed(22);
    ramp::train_steps(&live, &mut opt, 40, 32, 0.5).unwrap();
    tch::manual_seed(22);
    ramp::train_steps(&loaded, &mut loaded_opt, 40, 32, 0.5).unwrap();
    assert_eq!(
        max_param_diff(&live, &loaded),
        0.0,
        "the loaded state continued differently"
    );
    // A fresh optimiser on the same weights does not: the moments matter.
    let (fresh_start, _) = Adam::load_with_weights(&path, 1e-3, Device::Cpu).unwrap();
    let mut fresh = Adam::new(&fresh_start, 1e-3);
    tch::manual_seed(22);
    ramp::train_steps(&fresh_start, &mut fresh, 40, 32, 0.5).unwrap();
    assert!(max_param_diff(&live, &fresh_start) > 1e-6);

    // A state file missing a moment is refused, naming the file.
    let bad = dir.path().join("bad.safetensors");
    live.vs.save(&bad).unwrap();
    let err = Adam::load_with_weights(&bad, 1e-3, Device::Cpu)
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("bad.safetensors"), "{err:#}");
}
