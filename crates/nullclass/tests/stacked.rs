//! The fast path's building blocks against the slow path's: the stacked network
//! against K separate MnistCnn (float64, 1e-10), the stacked batch generator
//! against the null definitions of method-notes.md (brute force on a tiny pool),
//! the independence of each model's stream from the rest of the stack, and the
//! checkpoint format.

use std::collections::HashMap;

use nullclass::dataset::Split;
use nullclass::model::LoadedModel;
use nullclass::nulls::{NullConfig, NullType, Variant};
use nullclass::stacked::batches::StackBatches;
use nullclass::stacked::net::{save_model, Convs, StackedCnn};
use nullclass::streams::{keep_mask, Purpose};
use tch::{Device, Kind, Tensor};

const CPU: Device = Device::Cpu;

fn variants(names: &[&str]) -> Vec<Variant> {
    names.iter().map(|n| n.parse().unwrap()).collect()
}

fn vars(m: &LoadedModel) -> HashMap<String, Tensor> {
    m.vs.variables()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn stacked_forward_and_backward_equal_separate_models_in_f64() {
    let (k, batch) = (3i64, 5i64);
    let models: Vec<LoadedModel> = (0..k)
        .map(|i| {
            tch::manual_seed(10 + i);
            let mut m = LoadedModel::fresh(CPU);
            m.vs.double();
            m
        })
        .collect();
    tch::manual_seed(20);
    let x = Tensor::rand([k, batch, 1, 28, 28], (Kind::Double, CPU));
    let keys = Tensor::from_slice(&[1i64, 2, 3]);
    let keep1 = keep_mask(&keys, Purpose::Dropout1, batch * 9216, 0.25, Kind::Double);
    let keep2 = keep_mask(&keys, Purpose::Dropout2, batch * 128, 0.5, Kind::Double);
    // A loss whose gradient reaches every logit with a different weight.
    let weights = Tensor::randn([k, batch, 11], (Kind::Double, CPU));

    let mut separate = Vec::new();
    for (i, m) in models.iter().enumerate() {
        let i = i as i64;
        let masks = (keep1.get(i), keep2.get(i));
        let logits = m.net.forward_masked(&x.get(i), Some((&masks.0, &masks.1)));
        (&logits * weights.get(i)).sum(Kind::Double).backward();
        separate.push(logits.detach());
    }
    for conv1 in [Convs::Grouped, Convs::Im2col, Convs::PerModel] {
        let stack =
            StackedCnn::from_models(&models.iter().map(vars).collect::<Vec<_>>(), CPU, conv1)
                .unwrap();
        let logits = stack.forward(&x, Some((&keep1, &keep2)));
        assert_eq!(logits.size(), [k, batch, 11]);
        (&logits * &weights).sum(Kind::Double).backward();
        let grads: HashMap<String, Tensor> = stack
            .vs
            .variables()
            .into_iter()
            .map(|(n, v)| (n, v.grad()))
            .collect();
        for (i, m) in models.iter().enumerate() {
            let d = max_diff(&logits.get(i as i64), &separate[i]);
            assert!(d < 1e-10, "{conv1}: model {i} logits differ by {d}");
            for (name, v) in vars(m) {
                let mut g = grads[&name].get(i as i64);
                if name.starts_with("fc") && name.ends_with(".weight") {
                    // The stack holds dense weights transposed, [K,in,out].
                    g = g.tr();
                }
                let scale = v.grad().abs().max().double_value(&[]).max(1e-3);
                let d = max_diff(&g, &v.grad()) / scale;
                assert!(
                    d < 1e-10,
                    "{conv1}: model {i} gradient of {name} differs by {d} (relative)"
                );
            }
        }
        // Without masks it is the inference forward of each model.
        let plain = stack.forward(&x, None);
        for (i, m) in models.iter().enumerate() {
            let d = max_diff(&plain.get(i as i64), &m.logits(&x.get(i as i64)));
            assert!(
                d < 1e-10,
                "{conv1}: inference logits of model {i} differ by {d}"
            );
        }
    }
}

#[test]
fn checkpoint_slices_are_byte_identical_to_a_single_models_save() {
    let dir = tempfile::tempdir().unwrap();
    let models: Vec<LoadedModel> = (0..2)
        .map(|i| {
            tch::manual_seed(30 + i);
            LoadedModel::fresh(CPU)
        })
        .collect();
    let stack = StackedCnn::from_models(
        &models.iter().map(vars).collect::<Vec<_>>(),
        CPU,
        Convs::Grouped,
    )
    .unwrap();
    for (i, m) in models.iter().enumerate() {
        let single = dir.path().join(format!("single{i}.safetensors"));
        let sliced = dir.path().join(format!("sliced{i}.safetensors"));
        m.vs.save(&single).unwrap();
        save_model(&stack.model_tensors(i as i64), &sliced).unwrap();
        assert!(
            std::fs::read(&single).unwrap() == std::fs::read(&sliced).unwrap(),
            "model {i}"
        );
        LoadedModel::load(&sliced, CPU).unwrap();
    }
}

/// `n` random images with labels cycling through `classes` labels.
fn pool(n: i64, classes: i64) -> Split {
    tch::manual_seed(1);
    Split {
        images: Tensor::rand([n, 1, 28, 28], (Kind::Float, CPU)),
        labels: Tensor::arange(n, (Kind::Int64, CPU)).remainder(classes),
    }
}

fn tiles_sorted(img: &Tensor, tile: i64) -> Vec<Vec<f32>> {
    let per = 28 / tile;
    let t = img
        .view([per, tile, per, tile])
        .permute([0, 2, 1, 3])
        .reshape([per * per, tile * tile]);
    let mut rows: Vec<Vec<f32>> = (0..per * per)
        .map(|i| Vec::<f32>::try_from(t.get(i)).unwrap())
        .collect();
    rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rows
}

fn is_mean_of_two_labels(p: &Split, img: &Tensor) -> bool {
    let n = p.len();
    let labels = Vec::<i64>::try_from(&p.labels).unwrap();
    (0..n).any(|i| {
        (0..n).any(|j| {
            labels[i as usize] != labels[j as usize]
                && max_diff(&((p.images.get(i) + p.images.get(j)) * 0.5), img) < 1e-6
        })
    })
}

#[test]
fn every_slot_follows_its_definition() {
    let p = pool(12, 3);
    let names = ["base", "u", "s", "m", "usm"];
    let config = NullConfig {
        null_prob: 0.5,
        tile_sizes: vec![1, 2, 4, 7, 14],
    };
    let maker = StackBatches::new(&p, &variants(&names), &[1, 2, 3, 4, 5], &config, 8).unwrap();
    let mut seen = 0;
    for step in 0..6 {
        let b = maker.train_batch(&maker.step_keys(step));
        assert_eq!(b.images.size(), [5, 8, 1, 28, 28]);
        for (k, name) in names.iter().enumerate() {
            let v: Variant = name.parse().unwrap();
            let codes = Vec::<i64>::try_from(b.null_types.get(k as i64)).unwrap();
            let labels = Vec::<i64>::try_from(b.labels.get(k as i64)).unwrap();
            for (slot, (&code, &label)) in codes.iter().zip(&labels).enumerate() {
                let img = b.images.get(k as i64).get(slot as i64).view([28, 28]);
                assert_eq!(code >= 0, label == 10, "{name}: label 10 for nulls only");
                if code < 0 {
                    let hit = (0..p.len()).any(|i| {
                        p.images.get(i).view([28, 28]).equal(&img)
                            && p.labels.int64_value(&[i]) == label
                    });
                    assert!(
                        hit,
                        "{name}: digit slot {slot} is no pool image with its label"
                    );
                    continue;
                }
                seen += 1;
                let t = [NullType::Uniform, NullType::Shuffled, NullType::Mixed][code as usize];
                assert!(v.null_types().contains(&t), "{name}: disabled type {t:?}");
                match t {
                    NullType::Uniform => {
                        assert!(
                            img.min().double_value(&[]) >= 0.0 && img.max().double_value(&[]) < 1.0
                        );
                        assert!(!(0..p.len()).any(|i| p.images.get(i).view([28, 28]).equal(&img)));
                    }
                    NullType::Mixed => {
                        assert!(is_mean_of_two_labels(&p, &img), "{name}: bad mixed null")
                    }
                    NullType::Shuffled => {
                        let found = [14, 7, 4, 2, 1].into_iter().any(|t| {
                            let got = tiles_sorted(&img, t);
                            (0..p.len())
                                .any(|i| tiles_sorted(&p.images.get(i).view([28, 28]), t) == got)
                        });
                        assert!(
                            found,
                            "{name}: shuffled null is no tile permutation of a pool image"
                        );
                    }
                }
            }
        }
    }
    assert!(seen > 20, "too few nulls checked: {seen}");
}

#[test]
fn one_tile_size_and_permutation_per_batch() {
    // A pool of one image (twice, two labels): every shuffled null of a batch must
    // then come out the same.
    let mut p = pool(1, 1);
    p.images = p.images.repeat([2, 1, 1, 1]);
    p.labels = Tensor::from_slice(&[0i64, 1]);
    let config = NullConfig {
        null_prob: 1.0,
        ..Default::default()
    };
    let maker = StackBatches::new(&p, &variants(&["s", "s"]), &[7, 8], &config, 2).unwrap();
    let mut differ = 0;
    for step in 0..5 {
        let b = maker.train_batch(&maker.step_keys(step));
        for k in 0..2 {
            let x = b.images.get(k);
            assert!(
                x.get(0).equal(&x.get(1)),
                "step {step}: a batch mixes permutations"
            );
        }
        if !b.images.get(0).get(0).equal(&b.images.get(1).get(0)) {
            differ += 1;
        }
    }
    assert!(
        differ > 0,
        "two models drew the same permutations at every step"
    );
}

#[test]
fn null_fraction_types_and_distinct_digits() {
    let p = pool(2000, 10);
    let names = Variant::ALL;
    let seeds: Vec<i64> = (0..8).collect();
    let maker =
        StackBatches::new(&p, &variants(&names), &seeds, &NullConfig::default(), 32).unwrap();
    let steps = 200;
    let mut counts = vec![[0i64; 4]; 8];
    for step in 0..steps {
        let b = maker.train_batch(&maker.step_keys(step));
        let codes = Vec::<i64>::try_from(b.null_types.view([-1])).unwrap();
        for (i, c) in codes.iter().enumerate() {
            counts[i / 32][(*c + 1) as usize] += 1;
        }
        if step < 20 {
            let flat = b.images.view([8, 32, -1]);
            for k in 0..8 {
                let digits: Vec<i64> = (0..32)
                    .filter(|&s| codes[(k * 32 + s) as usize] < 0)
                    .collect();
                for (a, &i) in digits.iter().enumerate() {
                    for &j in &digits[a + 1..] {
                        assert!(
                            !flat.get(k).get(i).equal(&flat.get(k).get(j)),
                            "{}: repeated digit",
                            names[k as usize]
                        );
                    }
                }
            }
        }
    }
    for (k, name) in names.iter().enumerate() {
        let v: Variant = name.parse().unwrap();
        let nulls: i64 = counts[k][1..].iter().sum();
        let frac = nulls as f64 / (steps as i64 * 32) as f64;
        if v.is_baseline() {
            assert_eq!(nulls, 0);
            continue;
        }
        assert!((frac - 0.5).abs() < 0.025, "{name}: null fraction {frac}");
        for t in [NullType::Uniform, NullType::Shuffled, NullType::Mixed] {
            let c = counts[k][(t.code() + 1) as usize] as f64;
            if v.null_types().contains(&t) {
                let expect = nulls as f64 / v.null_types().len() as f64;
                assert!(
                    (c - expect).abs() < 0.1 * expect,
                    "{name}: {t:?} {c} vs {expect}"
                );
            } else {
                assert_eq!(c, 0.0, "{name}: disabled {t:?}");
            }
        }
    }
    // A pool barely larger than the batch takes the exact ranked draw.
    let small = pool(40, 10);
    let maker = StackBatches::new(
        &small,
        &variants(&["base"]),
        &[3],
        &NullConfig::default(),
        32,
    )
    .unwrap();
    for step in 0..10 {
        let b = maker.train_batch(&maker.step_keys(step));
        let (uniq, _, _) = b.images.view([32, -1]).unique_dim(0, false, false, false);
        assert_eq!(uniq.size()[0], 32, "a 32-of-40 draw repeated an image");
    }
}

#[test]
fn a_models_stream_does_not_depend_on_its_stack() {
    let p = pool(500, 10);
    let config = NullConfig::default();
    let all = variants(&Variant::ALL);
    let seeds: Vec<i64> = (100..108).collect();
    let stack = StackBatches::new(&p, &all, &seeds, &config, 16).unwrap();
    for k in [0usize, 4, 7] {
        let alone = StackBatches::new(&p, &all[k..=k], &seeds[k..=k], &config, 16).unwrap();
        for step in [0u64, 1, 999] {
            let (ks, ka) = (stack.step_keys(step), alone.step_keys(step));
            let (bs, ba) = (stack.train_batch(&ks), alone.train_batch(&ka));
            assert!(
                bs.images.get(k as i64).equal(&ba.images.get(0)),
                "{}: images differ",
                all[k]
            );
            assert!(bs.labels.get(k as i64).equal(&ba.labels.get(0)));
            let ms = keep_mask(&ks, Purpose::Dropout1, 16 * 9216, 0.25, Kind::Float);
            let ma = keep_mask(&ka, Purpose::Dropout1, 16 * 9216, 0.25, Kind::Float);
            assert!(
                ms.get(k as i64).equal(&ma.get(0)),
                "{}: masks differ",
                all[k]
            );
        }
        // The validation set too, whatever chunks it is generated in.
        let whole = stack.sequential(0, stack.sequential_batches());
        assert_eq!(whole.labels.size(), [8, 500]);
        let part = alone.sequential(3, 30);
        let n = part.labels.size()[1];
        assert_eq!(n, 500 - 3 * 16, "the last chunk stops at the pool's end");
        assert!(whole
            .images
            .get(k as i64)
            .narrow(0, 48, n)
            .equal(&part.images.get(0)));
        assert!(whole
            .labels
            .get(k as i64)
            .narrow(0, 48, n)
            .equal(&part.labels.get(0)));
    }
    // A last chunk of one short batch, for every model.
    let tail = stack.sequential(31, 4);
    assert_eq!(tail.labels.size(), [8, 500 - 31 * 16]);
    assert!(tail
        .images
        .get(5)
        .equal(&stack.sequential(0, 32).images.get(5).narrow(0, 496, 4)));
    // Digits of the sequential set are the pool in order.
    let seq = stack.sequential(0, 2);
    let base = seq.labels.get(0);
    assert!(
        base.equal(&p.labels.narrow(0, 0, 32)),
        "the baseline's set is the pool itself"
    );
}
