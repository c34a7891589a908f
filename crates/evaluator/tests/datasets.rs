//! One artifacts root, one data set: a model or an attack folder made from another
//! data set is refused with both names; and `evaluator corners` measures what it
//! says, checked against sums taken here pixel by pixel.

#[path = "../../adversary-gen/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

use nullclass::artifacts::SetDir;
use nullclass::dataset::{DataSet, Mnist};
use nullclass::npy;
use tch::{Device, Kind, Tensor};

const BIN: &str = env!("CARGO_BIN_EXE_evaluator");

fn evaluator(args: &[&str], root: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .args(["--artifacts", root.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const FGSM: [&str; 7] = ["fgsm", "--seed", "0", "--device", "cpu", "--threads", "1"];

#[test]
fn sources_made_from_another_data_set_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    common::fgsm_set0(root);
    // The same root, now holding "Fashion-MNIST": its FGSM folder was made from MNIST.
    std::fs::rename(DataSet::Mnist.file(root), DataSet::FashionMnist.file(root)).unwrap();
    let (ok, err) = evaluator(&FGSM, root);
    assert!(!ok, "{err}");
    assert!(
        err.contains("adversarial/fgsm/meta.json")
            && err.contains("made from MNIST")
            && err.contains("works on Fashion-MNIST"),
        "{err}"
    );
    assert!(!SetDir::new(root, 0).eval_dir().join("meta.json").exists());
}

#[test]
fn a_model_trained_on_another_data_set_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    common::fgsm_set0(root);
    let (ok, err) = evaluator(&FGSM, root);
    assert!(ok, "{err}");
    let json = root.join("seed-00/models/m.json");
    std::fs::write(&json, r#"{"variant": "m", "dataset": "fashion-mnist"}"#).unwrap();
    std::fs::remove_dir_all(SetDir::new(root, 0).eval_dir()).unwrap();
    let (ok, err) = evaluator(&FGSM, root);
    assert!(!ok, "{err}");
    assert!(
        err.contains("m.json")
            && err.contains("made from Fashion-MNIST")
            && err.contains("works on MNIST"),
        "{err}"
    );
}

/// The measures of `evaluator corners`, summed here one pixel at a time.
fn expected(pixels: &[f64], per_image: usize) -> (f64, f64) {
    let near = pixels.iter().filter(|&&p| p.min(1.0 - p) <= 0.1).count();
    let dists: Vec<f64> = pixels
        .chunks(per_image)
        .map(|img| {
            img.iter()
                .map(|&p| p.min(1.0 - p).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let mean = dists.iter().sum::<f64>() / dists.len() as f64;
    (near as f64 / pixels.len() as f64, mean)
}

fn values(t: &Tensor) -> Vec<f64> {
    let flat = t.to_kind(Kind::Double).reshape([-1]);
    Vec::<f64>::try_from(&flat).unwrap()
}

#[test]
fn corners_measures_each_group_as_defined() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    common::fgsm_set0(root);
    // A null dump of 4 images: two mixed (code 2) with known pixels, two others that
    // must not count (they would move every measure).
    let nulls = root.join("nulls");
    std::fs::create_dir_all(&nulls).unwrap();
    let mixed_a = Tensor::full([28, 28], 0.5, (Kind::Float, Device::Cpu));
    let mixed_b = Tensor::zeros([28, 28], (Kind::Float, Device::Cpu));
    let _ = mixed_b.narrow(0, 0, 14).fill_(0.05);
    let other = Tensor::full([28, 28], 0.3, (Kind::Float, Device::Cpu));
    let images = Tensor::stack(&[&other, &mixed_a, &other, &mixed_b], 0);
    npy::write(&nulls.join("nulls_images.npy"), &images).unwrap();
    npy::write(
        &nulls.join("nulls_types.npy"),
        &Tensor::from_slice(&[0i64, 2, 1, 2]),
    )
    .unwrap();
    std::fs::write(nulls.join("nulls_meta.json"), r#"{"dataset": "mnist"}"#).unwrap();

    let (ok, err) = evaluator(&["corners"], root);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(root.join("geometry/corners.csv")).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let row = |group: &str| -> (i64, f64, f64) {
        let r = rows
            .iter()
            .find(|r| r[0] == group)
            .unwrap_or_else(|| panic!("{group}: {text}"));
        (
            r[1].parse().unwrap(),
            r[2].parse().unwrap(),
            r[3].parse().unwrap(),
        )
    };

    // Mixed nulls: a = all 0.5 (none near, distance 28 * 0.5 = 14); b = half 0.05,
    // half 0 (all near, distance sqrt(392 * 0.0025) = 0.99).
    let (n, near, dist) = row("mixed nulls");
    assert_eq!(n, 2);
    assert!((near - 0.5).abs() < 1e-12, "{near}");
    assert!(
        (dist - (14.0 + (392.0f64 * 0.0025).sqrt()) / 2.0).abs() < 1e-6,
        "{dist}"
    );

    let data = Mnist::load(&DataSet::Mnist.file(root)).unwrap();
    for (group, split) in [
        ("clean train", data.train(Device::Cpu)),
        ("clean test", data.test(Device::Cpu)),
    ] {
        let (n, near, dist) = row(group);
        let (want_near, want_dist) = expected(&values(&split.images), 784);
        assert_eq!(n, split.len(), "{group}");
        assert!(
            (near - want_near).abs() < 1e-9,
            "{group}: {near} vs {want_near}"
        );
        assert!(
            (dist - want_dist).abs() < 1e-6,
            "{group}: {dist} vs {want_dist}"
        );
    }
    let adv = npy::read(&SetDir::new(root, 0).fgsm_dir().join("adv_images.npy")).unwrap();
    let (n, near, dist) = row("FGSM threshold images");
    let (want_near, want_dist) = expected(&values(&adv), 784);
    assert_eq!(n, 6);
    assert!((near - want_near).abs() < 1e-9 && (dist - want_dist).abs() < 1e-6);
}

#[test]
fn corners_without_mixed_nulls_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    common::fgsm_set0(root);
    let nulls = root.join("nulls");
    std::fs::create_dir_all(&nulls).unwrap();
    let images = Tensor::zeros([2, 28, 28], (Kind::Float, Device::Cpu));
    npy::write(&nulls.join("nulls_images.npy"), &images).unwrap();
    npy::write(
        &nulls.join("nulls_types.npy"),
        &Tensor::from_slice(&[0i64, 1]),
    )
    .unwrap();
    std::fs::write(nulls.join("nulls_meta.json"), "{}").unwrap();
    let (ok, err) = evaluator(&["corners"], root);
    assert!(!ok && err.contains("no mixed nulls"), "{err}");
    assert!(!root.join("geometry/corners.csv").exists());
}
