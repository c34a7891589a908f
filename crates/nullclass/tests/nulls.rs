//! Null generators against their definitions in method-notes.md, checked by brute
//! force on a tiny pool of random "images" so that no generator internals are trusted.

use nullclass::dataset::Split;
use nullclass::nulls::{self, BatchMaker, NullConfig, NullType, Variant};
use tch::{Device, Kind, Tensor};

/// A pool of `n` random images with labels cycling 0..10.
fn pool(n: i64) -> Split {
    tch::manual_seed(1);
    Split {
        images: Tensor::rand([n, 1, 28, 28], (Kind::Float, Device::Cpu)),
        labels: Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(10),
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

#[test]
fn uniform_values_in_unit_interval_with_mean_half() {
    tch::manual_seed(2);
    let u = nulls::uniform(200, Device::Cpu);
    assert_eq!(u.size(), [200, 1, 28, 28]);
    assert!(u.min().double_value(&[]) >= 0.0 && u.max().double_value(&[]) < 1.0);
    let mean = u.mean(Kind::Double).double_value(&[]);
    assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
}

#[test]
fn every_mixed_sample_is_the_mean_of_two_different_label_images() {
    let p = pool(20);
    tch::manual_seed(3);
    let m = nulls::mixed(&p, 50);
    let labels = Vec::<i64>::try_from(&p.labels).unwrap();
    for k in 0..50 {
        let sample = m.get(k);
        let found = (0..20).any(|i| {
            (0..20).any(|j| {
                labels[i as usize] != labels[j as usize]
                    && ((p.images.get(i) + p.images.get(j)) * 0.5 - &sample)
                        .abs()
                        .max()
                        .double_value(&[])
                        < 1e-6
            })
        });
        assert!(
            found,
            "mixed sample {k} is not the mean of two different-label images"
        );
    }
}

#[test]
fn mixed_never_pairs_same_labels_even_with_two_classes() {
    // With two classes half of all first draws collide: the redraw loop must run.
    let mut p = pool(6);
    p.labels = Tensor::from_slice(&[0i64, 0, 0, 1, 1, 1]);
    tch::manual_seed(4);
    let m = nulls::mixed(&p, 100);
    for k in 0..100 {
        let s = m.get(k);
        let ok = (0..3).any(|i| {
            (3..6).any(|j| {
                ((p.images.get(i) + p.images.get(j)) * 0.5 - &s)
                    .abs()
                    .max()
                    .double_value(&[])
                    < 1e-6
            })
        });
        assert!(ok, "sample {k} mixes two images of one label");
    }
}

#[test]
fn every_shuffled_sample_is_a_tile_permutation_of_one_image() {
    let p = pool(8);
    for tile in [1, 2, 4, 7, 14] {
        tch::manual_seed(5 + tile);
        let s = nulls::shuffled(&p, 6, tile);
        for k in 0..6 {
            let got = tiles_sorted(&s.get(k), tile);
            let found = (0..8).any(|i| tiles_sorted(&p.images.get(i), tile) == got);
            assert!(
                found,
                "tile {tile}: sample {k} is not a tile permutation of a pool image"
            );
        }
        if tile > 1 && tile < 28 {
            // Not the identity on every sample: the permutation really moves tiles.
            let same = (0..6).all(|k| (0..8).any(|i| s.get(k).equal(&p.images.get(i))));
            assert!(!same, "tile {tile}: no sample was shuffled");
        }
    }
}

#[test]
fn shuffled_batches_share_one_tile_size_and_permutation() {
    // Two copies of one image in a batch must come out identically shuffled.
    let mut p = pool(1);
    p.images = p.images.repeat([2, 1, 1, 1]);
    p.labels = Tensor::from_slice(&[0i64, 1]);
    let v: Variant = "s".parse().unwrap();
    let maker = BatchMaker::new(
        &p,
        &v,
        NullConfig {
            null_prob: 1.0,
            ..Default::default()
        },
    );
    for seed in 0..5 {
        tch::manual_seed(seed);
        let b = maker.batch_from(&Tensor::from_slice(&[0i64, 1, 0, 1]));
        for k in 1..4 {
            assert!(
                b.images.get(k).equal(&b.images.get(0)),
                "seed {seed}: slot {k} shuffled differently"
            );
        }
    }
}

#[test]
fn null_fraction_types_and_labels() {
    let p = pool(100);
    for name in Variant::ALL {
        let v: Variant = name.parse().unwrap();
        let maker = BatchMaker::new(&p, &v, NullConfig::default());
        tch::manual_seed(6);
        let mut nulls = 0i64;
        let mut seen = [0i64; 3];
        let batches = 300;
        for _ in 0..batches {
            let b = maker.random_batch(32);
            let codes = Vec::<i64>::try_from(&b.null_types).unwrap();
            let labels = Vec::<i64>::try_from(&b.labels).unwrap();
            for (c, l) in codes.iter().zip(&labels) {
                assert_eq!(
                    *c >= 0,
                    *l == 10,
                    "{name}: a null's label must be 10 and only a null's"
                );
                if *c >= 0 {
                    nulls += 1;
                    seen[*c as usize] += 1;
                }
            }
        }
        let frac = nulls as f64 / (batches * 32) as f64;
        if v.is_baseline() {
            assert_eq!(nulls, 0, "the baseline never sees nulls");
            continue;
        }
        assert!((frac - 0.5).abs() < 0.02, "{name}: null fraction {frac}");
        for t in [NullType::Uniform, NullType::Shuffled, NullType::Mixed] {
            let count = seen[t.code() as usize];
            if v.null_types().contains(&t) {
                let expect = nulls as f64 / v.null_types().len() as f64;
                assert!(
                    (count as f64 - expect).abs() < 0.1 * expect,
                    "{name}: {t:?} seen {count}, expected ~{expect}"
                );
            } else {
                assert_eq!(count, 0, "{name}: disabled type {t:?} appeared");
            }
        }
    }
}

#[test]
fn digit_slots_are_distinct_within_a_batch() {
    let p = pool(40);
    let v: Variant = "base".parse().unwrap();
    let maker = BatchMaker::new(&p, &v, NullConfig::default());
    tch::manual_seed(7);
    for _ in 0..20 {
        let b = maker.random_batch(32);
        let flat = b.images.view([32, -1]);
        for i in 0..32 {
            for j in (i + 1)..32 {
                assert!(
                    !flat.get(i).equal(&flat.get(j)),
                    "an image was drawn twice in one batch"
                );
            }
        }
    }
}

#[test]
fn variant_names_roundtrip_and_reject_unknown() {
    for name in Variant::ALL {
        assert_eq!(name.parse::<Variant>().unwrap().name(), name);
    }
    assert!("x".parse::<Variant>().is_err());
    assert!("mu".parse::<Variant>().is_err());
}
