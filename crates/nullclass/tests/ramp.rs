//! The toy ramp task: generator properties, the grid probe on a model whose
//! decision regions are known by construction, and a short null training run.

use std::collections::HashMap;

use nullclass::ramp::{self, RampModel, DOWN, GRID, NOISE, NULL, UP};
use tch::{Device, Kind, Tensor};

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
    assert_eq!(ramp::prototype(DOWN, 0), [0.666, 0.333, 0.0]);
    assert_eq!(ramp::prototype(DOWN, 1), [0.0, 0.666, 0.333]);
    assert_eq!(ramp::prototype(UP, 0), [0.333, 0.666, 0.0]);
    assert_eq!(ramp::prototype(UP, 1), [0.0, 0.333, 0.666]);
}

#[test]
fn null_batches_mix_uniform_noise_at_the_asked_rate() {
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
    // One thread, as `trainer ramp` runs it: more only slow a model this small.
    tch::set_num_threads(1);
    tch::manual_seed(3);
    let m = RampModel::fresh(Device::Cpu);
    let mut opt = ramp::adam(&m, 1e-3).unwrap();
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
