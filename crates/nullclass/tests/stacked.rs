//! The fast path's building blocks against the slow path's: the stacked network
//! against K separate MnistCnn (float64, 1e-10), the stacked batch generator
//! against the null definitions of method-notes.md (brute force on a tiny pool),
//! the independence of each model's stream from the rest of the stack, and the
//! checkpoint format.

use std::collections::HashMap;

use nullclass::dataset::Split;
use nullclass::model::LoadedModel;
use nullclass::nulls::{NullConfig, NullType, Variant};
use nullclass::stacked::adam::{Adam, AdamConfig};
use nullclass::stacked::batches::StackBatches;
use nullclass::stacked::net::{save_model, Convs, Dropout, StackedCnn, DROP_HIDDEN, DROP_POOLED};
use nullclass::streams::{bits, keep_mask, Purpose};
use tch::nn::OptimizerConfig;
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
    let dropout = Dropout::draw(&keys, batch);
    // A loss whose gradient reaches every logit with a different weight.
    let weights = Tensor::randn([k, batch, 11], (Kind::Double, CPU));

    let mut separate = Vec::new();
    for (i, m) in models.iter().enumerate() {
        let i = i as i64;
        let masks = dropout.multipliers(i, Kind::Double);
        let logits = m.net.forward_masked(&x.get(i), Some((&masks.0, &masks.1)));
        (&logits * weights.get(i)).sum(Kind::Double).backward();
        separate.push(logits.detach());
    }
    for conv1 in [Convs::Grouped, Convs::Im2col, Convs::PerModel] {
        let stack =
            StackedCnn::from_models(&models.iter().map(vars).collect::<Vec<_>>(), CPU, conv1)
                .unwrap();
        let logits = stack.forward(&x, Some(&dropout));
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
            let ms = keep_mask(&ks, Purpose::Dropout1, 16 * 9216, 0.25);
            let ma = keep_mask(&ka, Purpose::Dropout1, 16 * 9216, 0.25);
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

/// The float keep masks the trainer used before its masks became booleans: each
/// element's b-bit field of the stream, kept (1/(1-p)) when at least p * 2^b.
fn float_mask_reference(keys: &Tensor, purpose: Purpose, n: i64, p: f64, kind: Kind) -> Tensor {
    let b = [1i64, 2, 4, 8]
        .into_iter()
        .find(|b| (p * (1 << b) as f64).fract() == 0.0)
        .unwrap();
    let per_word = 32 / b;
    let words = Vec::<i64>::try_from(bits(keys, purpose, (n + per_word - 1) / per_word).view([-1]))
        .unwrap();
    let g = keys.size()[0] as usize;
    let per_row = words.len() / g;
    let mut out = Vec::with_capacity(g * n as usize);
    for row in 0..g {
        for j in 0..n as usize {
            let w = words[row * per_row + j / per_word as usize];
            let field = (w >> (b as usize * (j % per_word as usize))) & ((1 << b) - 1);
            out.push(if field as f64 >= p * (1 << b) as f64 {
                1.0 / (1.0 - p)
            } else {
                0.0
            });
        }
    }
    Tensor::from_slice(&out).view([g as i64, n]).to_kind(kind)
}

#[test]
fn boolean_dropout_masks_give_the_old_float_masks_bits() {
    let keys = Tensor::from_slice(&[11i64, 12, 13]);
    let batch = 3;
    let d = Dropout::draw(&keys, batch);
    assert_eq!(d.pooled.kind(), Kind::Bool);
    for kind in [Kind::Float, Kind::Double] {
        let old1 = float_mask_reference(&keys, Purpose::Dropout1, batch * 9216, DROP_POOLED, kind);
        let old2 = float_mask_reference(&keys, Purpose::Dropout2, batch * 128, DROP_HIDDEN, kind);
        tch::manual_seed(5);
        let x1 = Tensor::rand([3, batch * 9216], (kind, CPU)) * 3.0;
        let x2 = Tensor::rand([3, batch * 128], (kind, CPU)) * 3.0;
        let (new1, new2) = (
            Dropout::apply(&x1, &d.pooled, DROP_POOLED),
            Dropout::apply(&x2, &d.hidden, DROP_HIDDEN),
        );
        assert!(
            new1.equal(&(&x1 * &old1)),
            "{kind:?}: pooled dropout differs"
        );
        assert!(
            new2.equal(&(&x2 * &old2)),
            "{kind:?}: hidden dropout differs"
        );
        for k in 0..3 {
            let (m1, m2) = d.multipliers(k, kind);
            assert!(
                m1.equal(&old1.get(k)) && m2.equal(&old2.get(k)),
                "{kind:?} model {k}"
            );
        }
    }
}

/// Parameters for the Adam tests: a stacked-sized mix of shapes.
fn adam_params(kind: Kind) -> Vec<Tensor> {
    tch::manual_seed(9);
    [vec![3, 32, 1, 3, 3], vec![3, 64], vec![3, 300, 7]]
        .into_iter()
        .map(|s| Tensor::randn(s.as_slice(), (kind, CPU)) * 0.1)
        .collect()
}

/// Runs `steps` Adam steps with libtorch's optimiser (tch::nn::Adam) and with
/// stacked::adam on the same start and gradients (grads of sum(p * g_t), times
/// `scale`); returns the largest relative difference of the parameters.
fn adam_gap(kind: Kind, steps: usize, scale: f64) -> f64 {
    let start = adam_params(kind);
    let mut vs = tch::nn::VarStore::new(CPU);
    vs.set_kind(kind);
    let theirs: Vec<Tensor> = start
        .iter()
        .enumerate()
        .map(|(i, p)| vs.root().var_copy(&format!("p{i}"), p))
        .collect();
    let mut opt = tch::nn::Adam::default().build(&vs, 1e-3).unwrap();
    let ours: Vec<Tensor> = start
        .iter()
        .map(|p| p.copy().set_requires_grad(true))
        .collect();
    let mut adam = Adam::new(
        ours.iter().map(Tensor::shallow_clone).collect(),
        AdamConfig::paper(1e-3),
        steps,
    )
    .unwrap();
    tch::manual_seed(10);
    for _ in 0..steps {
        let grads: Vec<Tensor> = start.iter().map(|p| p.randn_like() * scale).collect();
        let loss = |ps: &[Tensor]| {
            ps.iter()
                .zip(&grads)
                .map(|(p, g)| (p * g).sum(kind))
                .fold(Tensor::zeros([], (kind, CPU)), |a, b| a + b)
        };
        opt.backward_step(&loss(&theirs));
        adam.backward_step(&loss(&ours)).unwrap();
    }
    // Relative to how far the parameters moved, so that rounding of the start
    // values does not hide a wrong update.
    ours.iter()
        .zip(&theirs)
        .zip(&start)
        .map(|((a, b), s)| {
            let moved = (b - s).abs().max().double_value(&[]);
            (a - b).abs().max().double_value(&[]) / moved
        })
        .fold(0.0, f64::max)
}

#[test]
fn stacked_adam_equals_libtorchs_adam() {
    // Gradients of order 1 and of order 1e-9: at the second the bias-corrected
    // root of v is far below eps, so putting eps anywhere else (Keras adds it to
    // the raw root) would move the update by O(1), not by rounding.
    for scale in [1.0, 1e-9] {
        let gap = adam_gap(Kind::Double, 6, scale);
        assert!(
            gap < 1e-13,
            "float64, gradients x{scale}: relative gap {gap}"
        );
    }
    let gap = adam_gap(Kind::Float, 20, 1.0);
    assert!(gap < 1e-5, "float32: relative gap {gap}");
    // Steps beyond those it was built for are an error, not a panic.
    let p = vec![Tensor::zeros([2], (Kind::Double, CPU)).set_requires_grad(true)];
    let mut adam = Adam::new(p, AdamConfig::paper(1e-3), 1).unwrap();
    let g = [Tensor::ones([2], (Kind::Double, CPU))];
    adam.step(&g).unwrap();
    assert!(adam.step(&g).is_err());
}

#[test]
fn fresh_validation_moves_on_reproducibly_and_alone_as_in_a_stack() {
    let p = pool(100, 10);
    let config = NullConfig::default();
    let all = variants(&Variant::ALL);
    let seeds: Vec<i64> = (200..208).collect();
    let stack = StackBatches::new(&p, &all, &seeds, &config, 16).unwrap();
    // Two passes of the whole stack, in chunks of 3 batches.
    let passes = |maker: &StackBatches, chunk: i64| {
        let mut walk = maker.fresh_walk();
        (1..=3)
            .map(|_| {
                walk.next_pass();
                let parts: Vec<_> = (0..maker.sequential_batches())
                    .step_by(chunk as usize)
                    .map(|first| maker.fresh_sequential(first, chunk, &mut walk))
                    .collect();
                let cat = |f: fn(&nullclass::nulls::Batch) -> &Tensor| {
                    Tensor::cat(&parts.iter().map(f).collect::<Vec<_>>(), 1)
                };
                (
                    cat(|b| &b.images),
                    cat(|b| &b.labels),
                    cat(|b| &b.null_types),
                )
            })
            .collect::<Vec<_>>()
    };
    let first = passes(&stack, 3);
    // Whole batches: 7 of 16 for a pool of 100.
    assert_eq!(first[0].1.size(), [8, 112]);
    let again = passes(&stack, 2);
    for (a, b) in first.iter().zip(&again) {
        assert!(a.0.equal(&b.0) && a.1.equal(&b.1), "not reproducible");
    }
    for k in 0..8 {
        let name = &all[k as usize];
        // Fresh nulls each pass (the baseline has none).
        let (n1, n2) = (first[0].2.get(k), first[1].2.get(k));
        if !name.is_baseline() {
            assert!(!n1.equal(&n2), "{name}: the same nulls in passes 1 and 2");
        }
        // The digits walk on through the pool in order, across passes.
        let labels: Vec<i64> = (0..3)
            .flat_map(|e| Vec::<i64>::try_from(first[e].1.get(k)).unwrap())
            .collect();
        let images: Vec<Tensor> = (0..3).map(|e| first[e].0.get(k)).collect();
        let mut next = 0;
        for (slot, &label) in labels.iter().enumerate() {
            if label == 10 {
                continue;
            }
            let img = images[slot / 112].get((slot % 112) as i64);
            assert!(
                img.equal(&p.images.get(next)),
                "{name}: slot {slot} is not pool image {next}"
            );
            next = (next + 1) % 100;
        }
        // The window moved: pass 2 starts elsewhere than pass 1 (for the baseline
        // by the 12 slots of the last batch beyond the pool's 100 images).
        let starts: Vec<bool> = (0..2)
            .map(|e| {
                first[e + 1]
                    .0
                    .get(k)
                    .get(0)
                    .equal(&first[0].0.get(k).get(0))
            })
            .collect();
        assert!(starts.iter().any(|s| !s), "{name}: the window did not move");
        // Alone, the model sees the same passes.
        let alone = StackBatches::new(
            &p,
            &all[k as usize..=k as usize],
            &seeds[k as usize..=k as usize],
            &config,
            16,
        )
        .unwrap();
        for (e, (a, s)) in passes(&alone, 7).iter().zip(&first).enumerate() {
            assert!(
                a.0.get(0).equal(&s.0.get(k)) && a.1.get(0).equal(&s.1.get(k)),
                "{name}: pass {} differs alone",
                e + 1
            );
        }
    }
    // The fixed set is another one, the same every time.
    let fixed = stack.sequential(0, 7);
    assert!(fixed.images.equal(&stack.sequential(0, 7).images));
    assert!(!fixed
        .images
        .narrow(1, 0, 100)
        .equal(&first[0].0.narrow(1, 0, 100)));
}
