//! The evaluator binary on a tiny synthetic set: the CSVs' shapes, every count
//! checked against a recount from this test's own forward pass, the .npy through numpy, and bad input.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use adversary_gen::synthetic;
use clap::Parser;
use nullclass::artifacts::SetDir;
use nullclass::dataset::DataSet;
use nullclass::dataset::Mnist;
use nullclass::model::LoadedModel;
use nullclass::npy;
use nullclass::nulls::Variant;
use tch::{Device, Kind, Tensor};

fn evaluate(root: &Path, seed: u64, extra: &[&str]) -> Output {
    let seed = seed.to_string();
    Command::new(env!("CARGO_BIN_EXE_evaluator"))
        .args([
            "fgsm",
            "--artifacts",
            root.to_str().unwrap(),
            "--seed",
            &seed,
            "--device",
            "cpu",
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tiny set with its FGSM folder (N = `n`).
fn fixture(root: &Path, seed: u64, n: i64, extra: &[&str]) {
    synthetic::write_set(root, seed, 48, 7).unwrap();
    let (seed, n) = (seed.to_string(), n.to_string());
    let mut args = vec![
        "adversary-gen",
        "--artifacts",
        root.to_str().unwrap(),
        "--seed",
        &seed,
    ];
    args.extend(["--n", &n, "--batch", "16", "--device", "cpu"]);
    args.extend(extra);
    adversary_gen::run(&adversary_gen::Config::parse_from(args)).unwrap();
}

/// Rows of a CSV after checking its header.
fn rows(path: &Path, header: &str) -> Vec<Vec<String>> {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(header), "{}", path.display());
    lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn int(s: &str) -> i64 {
    s.parse().unwrap()
}

/// [correct, misclassified, unclassified] of predicted classes against labels, one
/// image at a time.
fn recount(classes: &[i64], labels: &[i64]) -> [i64; 3] {
    assert_eq!(classes.len(), labels.len());
    let mut counts = [0; 3];
    for (&c, &l) in classes.iter().zip(labels) {
        assert!((0..=9).contains(&l), "label {l}");
        let outcome = match c {
            _ if c == l => 0,
            10 => 2,
            0..=9 => 1,
            _ => panic!("class {c} out of range"),
        };
        counts[outcome] += 1;
    }
    counts
}

fn numpy_python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let candidates = [
        std::env::var_os("NULLCLASS_PYTHON").map(PathBuf::from),
        Some(venv),
        Some("python3".into()),
    ];
    candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", "import numpy"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

#[test]
fn scores_a_tiny_set() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 10;
    fixture(tmp.path(), 4, n, &["--save-sweep", "--eps-step", "0.1"]);
    let out = evaluate(tmp.path(), 4, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let set = SetDir::new(tmp.path(), 4);
    let eval = set.eval_dir();
    let names: Vec<String> = Variant::ALL.iter().map(|s| s.to_string()).collect();

    // Independent recount of the clean scores.
    let test = Mnist::load(&DataSet::Mnist.file(tmp.path()))
        .unwrap()
        .test(Device::Cpu);
    let clean = rows(&eval.join("clean.csv"), "model,n,accuracy,null_rate");
    assert_eq!(
        clean.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        names
    );
    for (row, v) in clean.iter().zip(Variant::all()) {
        let m = LoadedModel::load(&set.model(&v), Device::Cpu).unwrap();
        let pred = m.predict(&test.images, 7);
        let correct = pred
            .eq_tensor(&test.labels)
            .sum(Kind::Int64)
            .int64_value(&[]);
        let null = pred.eq(10).sum(Kind::Int64).int64_value(&[]);
        assert_eq!(int(&row[1]), 48);
        assert_eq!(
            row[2].parse::<f64>().unwrap(),
            correct as f64 / 48.0,
            "{row:?}"
        );
        assert_eq!(
            row[3].parse::<f64>().unwrap(),
            null as f64 / 48.0,
            "{row:?}"
        );
    }

    let thr = rows(
        &eval.join("threshold.csv"),
        "model,n,correct,misclassified,unclassified",
    );
    assert_eq!(thr.iter().map(|r| r[0].clone()).collect::<Vec<_>>(), names);
    assert_eq!(
        int(&thr[0][2]),
        0,
        "the baseline gets a threshold image right"
    );

    // An independent recount: each model run here on the threshold images, and its
    // classes counted image by image against the labels; the saved predictions must
    // be this forward pass's classes and top probabilities.
    let fgsm_dir = set.fgsm_dir();
    let adv_images = npy::read(&fgsm_dir.join("adv_images.npy")).unwrap();
    let labels: Vec<i64> =
        Vec::try_from(&npy::read(&fgsm_dir.join("labels.npy")).unwrap()).unwrap();
    let pred = npy::read(&eval.join("threshold_predictions.npy")).unwrap();
    assert_eq!((pred.kind(), pred.size()), (Kind::Float, vec![8, n, 2]));
    let models: Vec<LoadedModel> = Variant::all()
        .iter()
        .map(|v| LoadedModel::load(&set.model(v), Device::Cpu).unwrap())
        .collect();
    for (i, (r, m)) in thr.iter().zip(&models).enumerate() {
        let logits = m.logits(&adv_images);
        let class: Vec<i64> = Vec::try_from(&logits.argmax(1, false)).unwrap();
        let top: Vec<f64> = Vec::try_from(
            &logits
                .to_kind(Kind::Double)
                .softmax(1, Kind::Double)
                .amax(1, false),
        )
        .unwrap();
        let saved = pred.get(i as i64);
        let saved_class: Vec<f32> = Vec::try_from(&saved.select(1, 0)).unwrap();
        let saved_prob: Vec<f32> = Vec::try_from(&saved.select(1, 1)).unwrap();
        assert_eq!(int(&r[1]), n);
        assert_eq!(
            recount(&class, &labels),
            [2, 3, 4].map(|c| int(&r[c])),
            "{r:?}"
        );
        for k in 0..n as usize {
            assert_eq!(saved_class[k], class[k] as f32, "{} image {k}", r[0]);
            assert!(
                (f64::from(saved_prob[k]) - top[k]).abs() < 1e-5,
                "{} image {k}: saved probability {} vs {}",
                r[0],
                saved_prob[k],
                top[k]
            );
        }
    }

    let sweep = rows(
        &eval.join("sweep.csv"),
        "model,eps,n,correct,misclassified,unclassified",
    );
    assert_eq!(sweep.len(), 8 * 51);
    // Each row recounted from this test's own forward pass on clip(source + eps * sign).
    let sources = npy::read(&fgsm_dir.join("source_images.npy")).unwrap();
    let signs = npy::read(&fgsm_dir.join("signed_grads.npy")).unwrap();
    for (row, r) in sweep.iter().enumerate() {
        let m = &models[row / 51];
        assert_eq!(r[0], names[row / 51]);
        let eps: f32 = r[1].parse().unwrap();
        let images = nullclass::fgsm::perturb_all(&sources, &signs, eps);
        let class: Vec<i64> = Vec::try_from(&m.logits(&images).argmax(1, false)).unwrap();
        assert_eq!(int(&r[2]), n);
        assert_eq!(
            recount(&class, &labels),
            [3, 4, 5].map(|c| int(&r[c])),
            "{r:?}"
        );
    }
    assert_eq!(
        sweep[0][..4],
        ["base", "0.0", &n.to_string(), &n.to_string()]
    );
    assert_eq!(sweep[15][1], "0.3");
    assert_eq!(sweep[50][1], "1.0");
    assert_eq!(sweep[51][0], "u");

    let meta: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(eval.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["n"], n);
    assert_eq!(
        meta["baseline_threshold"]["misclassified"]
            .as_i64()
            .unwrap()
            + meta["baseline_threshold"]["unclassified"].as_i64().unwrap(),
        n
    );

    // Scoring the saved sweep images (0, 0.1, ..., 1) gives the rows of the rebuilt
    // grid at those epsilons.
    let tenths: Vec<Vec<String>> = sweep
        .iter()
        .filter(|r| (r[1].parse::<f64>().unwrap() * 10.0).fract() == 0.0)
        .cloned()
        .collect();
    assert_eq!(tenths.len(), 8 * 11);
    let out = evaluate(tmp.path(), 4, &["--use-saved-sweep"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let saved = rows(
        &eval.join("sweep.csv"),
        "model,eps,n,correct,misclassified,unclassified",
    );
    assert_eq!(saved, tenths);

    match numpy_python() {
        None => eprintln!("note: no Python with numpy found; skipping the numpy.load check"),
        Some(py) => {
            let script =
                "import sys, numpy as np; a = np.load(sys.argv[1]); print(a.dtype, list(a.shape))";
            let path = eval.join("threshold_predictions.npy");
            let o = Command::new(py)
                .args(["-c", script, path.to_str().unwrap()])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&o.stdout).trim(),
                format!("float32 [8, {n}, 2]")
            );
        }
    }
}

#[test]
fn bad_input_names_the_file_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    fixture(tmp.path(), 6, 4, &[]);
    let set = SetDir::new(tmp.path(), 6);
    let eval = set.eval_dir();
    let fails_naming = |what: &str| {
        let out = evaluate(tmp.path(), 6, &["--eps-step", "0.5"]);
        let err = stderr(&out);
        assert!(!out.status.success(), "succeeded: {err}");
        assert!(err.contains(what), "error does not name {what}: {err}");
        assert!(!eval.exists(), "output written");
    };

    let [um, sm] = [5, 6].map(|i| set.model(&Variant::all()[i]));
    let (um_bytes, sm_bytes) = (fs::read(&um).unwrap(), fs::read(&sm).unwrap());
    fs::remove_file(&um).unwrap();
    fs::remove_file(&sm).unwrap();
    fails_naming("6 of the 8 models asked for");
    fails_naming("um.safetensors");
    fails_naming("sm.safetensors");
    fs::write(&sm, &sm_bytes).unwrap();

    fs::write(&um, &um_bytes[..1000]).unwrap();
    fails_naming(&um.display().to_string());

    let mut tensors = Tensor::read_safetensors(&sm).unwrap();
    tensors[0].1 = tensors[0].1.narrow(0, 0, 1).copy();
    let named: Vec<(String, Tensor)> = tensors;
    Tensor::write_safetensors(&named, &um).unwrap();
    fails_naming("has shape");
    fs::write(&um, &um_bytes).unwrap();

    // The adversarial folder must come from this baseline and be intact.
    let base = set.model(&Variant::all()[0]);
    let base_bytes = fs::read(&base).unwrap();
    fs::write(&base, &um_bytes).unwrap();
    fails_naming("rerun adversary-gen");
    fs::write(&base, &base_bytes).unwrap();

    let labels = set.fgsm_dir().join("labels.npy");
    let good = fs::read(&labels).unwrap();
    fs::write(&labels, &good[..good.len() - 8]).unwrap();
    fails_naming("labels.npy");
    fs::write(&labels, &good).unwrap();

    let adv = set.fgsm_dir().join("adv_images.npy");
    let t = npy::read(&adv).unwrap();
    npy::write(&adv, &(t + 0.001).clamp(0.0, 1.0)).unwrap();
    fails_naming("adv_images.npy");

    // Images the baseline still gets right are not threshold images.
    let dir = set.fgsm_dir();
    let (src, signs) = (
        npy::read(&dir.join("source_images.npy")).unwrap(),
        npy::read(&dir.join("signed_grads.npy")).unwrap(),
    );
    let tiny = Tensor::full([4], 1e-6, (Kind::Float, Device::Cpu));
    npy::write(&dir.join("eps_threshold.npy"), &tiny).unwrap();
    npy::write(&adv, &nullclass::fgsm::perturb(&src, &signs, &tiny)).unwrap();
    fails_naming("does not fit this model");

    fs::remove_dir_all(set.fgsm_dir()).unwrap();
    fails_naming("run adversary-gen first");
}
