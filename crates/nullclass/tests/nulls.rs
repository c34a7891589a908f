//! Variants, and what `trainer nulls` relies on in the one null generator
//! (`stacked::batches`, whose definitions tests/stacked.rs checks by brute force):
//! a null-only batch holds the very nulls of a training batch, its tile sizes are
//! the ones its shuffled nulls were cut with, and a pool mixed nulls cannot use is
//! refused with a clear error.

use nullclass::dataset::Split;
use nullclass::nulls::{NullConfig, NullType, Variant};
use nullclass::stacked::batches::StackBatches;
use tch::{Device, Kind, Tensor};

/// `n` random "images" with labels cycling through `classes` labels.
fn pool(n: i64, classes: i64) -> Split {
    tch::manual_seed(1);
    Split {
        images: Tensor::rand([n, 1, 28, 28], (Kind::Float, Device::Cpu)),
        labels: Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(classes),
    }
}

fn variant(name: &str) -> Variant {
    name.parse().unwrap()
}

fn config(null_prob: f64) -> NullConfig {
    NullConfig {
        null_prob,
        ..Default::default()
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
fn variant_names_roundtrip_and_reject_unknown() {
    for name in Variant::ALL {
        assert_eq!(variant(name).name(), name);
    }
    assert!("x".parse::<Variant>().is_err());
    assert!("mu".parse::<Variant>().is_err());
}

#[test]
fn null_only_batches_hold_the_nulls_of_the_training_batches() {
    let p = pool(300, 10);
    let v = [variant("usm")];
    let train = StackBatches::new(&p, &v, &[42], &config(0.5), 32).unwrap();
    let dump = StackBatches::new(&p, &v, &[42], &config(1.0), 32).unwrap();
    let mut nulls = 0;
    for step in 0..8 {
        let t = train.train_batch(&train.step_keys(step));
        let d = dump.train_batch(&dump.step_keys(step));
        let codes = Vec::<i64>::try_from(t.null_types.get(0)).unwrap();
        let dumped = Vec::<i64>::try_from(d.null_types.get(0)).unwrap();
        assert!(
            dumped.iter().all(|&c| c >= 0),
            "a null-only batch held a digit"
        );
        for (slot, &c) in codes.iter().enumerate() {
            if c < 0 {
                continue;
            }
            nulls += 1;
            assert_eq!(c, dumped[slot], "step {step} slot {slot}: other null type");
            let s = slot as i64;
            assert!(
                t.images.get(0).get(s).equal(&d.images.get(0).get(s)),
                "step {step} slot {slot}: the dump's null is not the one trained on"
            );
        }
    }
    assert!(nulls > 60, "only {nulls} nulls compared");
}

#[test]
fn tile_sizes_are_those_the_shuffled_nulls_were_cut_with() {
    let p = pool(20, 10);
    let tiles = vec![2, 7, 14];
    let config = NullConfig {
        null_prob: 1.0,
        tile_sizes: tiles.clone(),
    };
    let b = StackBatches::new(&p, &[variant("s")], &[5], &config, 4).unwrap();
    let mut seen = Vec::new();
    for step in 0..12 {
        let keys = b.step_keys(step);
        let batch = b.train_batch(&keys);
        let tile = b.tile_sizes(&keys).int64_value(&[0]);
        assert!(tiles.contains(&tile), "tile size {tile}");
        seen.push(tile);
        for slot in 0..4 {
            let img = batch.images.get(0).get(slot).view([28, 28]);
            let is_perm = |t: i64| {
                let got = tiles_sorted(&img, t);
                (0..p.len()).any(|i| tiles_sorted(&p.images.get(i).view([28, 28]), t) == got)
            };
            assert!(is_perm(tile), "step {step}: not a tile-{tile} shuffle");
            // A random shuffle of small tiles is no shuffle of larger ones.
            for &larger in tiles.iter().filter(|&&t| t > tile) {
                assert!(
                    !is_perm(larger),
                    "step {step}: reported tile {tile}, but it is a tile-{larger} shuffle"
                );
            }
        }
    }
    seen.sort();
    seen.dedup();
    assert!(seen.len() > 1, "one tile size in 12 batches: {seen:?}");
}

#[test]
fn mixed_nulls_on_a_one_label_pool_are_refused() {
    let p = pool(50, 1);
    for name in ["m", "um", "usm"] {
        let err = StackBatches::new(&p, &[variant(name)], &[1], &config(1.0), 8)
            .err()
            .unwrap_or_else(|| panic!("{name}: a one-label pool was accepted"));
        assert!(
            err.to_string()
                .contains("mixed nulls need images of at least two labels"),
            "{name}: {err}"
        );
    }
    // Without mixed nulls one label is enough.
    let b = StackBatches::new(&p, &[variant("us")], &[1], &config(1.0), 8).unwrap();
    let codes = Vec::<i64>::try_from(b.train_batch(&b.step_keys(0)).null_types.get(0)).unwrap();
    assert!(codes
        .iter()
        .all(|&c| c == NullType::Uniform.code() || c == NullType::Shuffled.code()));
}
