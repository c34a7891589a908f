//! What the report's integration tests share: a synthetic artifacts tree built by
//! hand (sets of 8 models with chosen scores), running the binary, and reading its
//! outputs back.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nullclass::npy;
use tch::{Device, Kind, Tensor};

pub const VARIANTS: [&str; 8] = ["base", "u", "s", "m", "us", "um", "sm", "usm"];
/// Adversarial images per synthetic set.
pub const N: i64 = 40;
pub const SWEEP_EPS: [f64; 3] = [0.0, 0.5, 1.0];

/// What differs between the synthetic sets.
pub struct Spec {
    /// Per model: correct, misclassified, unclassified of N at the threshold.
    pub threshold: [[u64; 3]; 8],
    /// Per model: clean accuracy and null rate, fractions.
    pub clean: [[f64; 2]; 8],
    pub eps_threshold: Vec<f32>,
}

pub fn spec(set: usize) -> Spec {
    let mut threshold = [[2, 2, 36]; 8];
    threshold[0] = [0, 40, 0];
    threshold[7] = [2, 0, 38];
    let mut clean = [[0.985, 0.004]; 8];
    if set == 0 {
        threshold[1] = [30, 8, 2];
        clean[0] = [0.99, 0.0];
        clean[7] = [0.98, 0.01];
    } else {
        threshold[1] = [32, 4, 4];
        threshold[7] = [4, 1, 35];
        clean[0] = [0.995, 0.0];
        clean[7] = [0.97, 0.02];
    }
    let eps_threshold = if set == 0 {
        [vec![0.12f32; 30], vec![0.5; 10]].concat()
    } else {
        [vec![0.22f32; 20], vec![0.32; 20]].concat()
    };
    Spec {
        threshold,
        clean,
        eps_threshold,
    }
}

pub fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A stand-in digit: a bright ring of radius growing with the label, on black.
pub fn digit_like(label: i64, noise: &Tensor) -> Tensor {
    let r = Tensor::arange(28, (Kind::Float, Device::Cpu)) - 13.5;
    let d = (r.unsqueeze(0).square() + r.unsqueeze(1).square()).sqrt();
    let ring = (-(d - (4.0 + label as f64)).square() / 2.0).exp();
    (ring + noise).clamp(0.0, 1.0)
}

/// What `trainer nulls` writes for Figure 5: 40 nulls, types cycling uniform,
/// shuffled, mixed, the shuffled ones at tile sizes 2, 4, 7 and 14.
pub fn make_nulls(root: &Path) {
    let dir = root.join("nulls");
    let n = 40i64;
    let types: Vec<i64> = (0..n).map(|i| i % 3).collect();
    let tiles: Vec<i64> = (0..n)
        .map(|i| {
            if i % 3 == 1 {
                [2, 4, 7, 14][(i as usize / 3) % 4]
            } else {
                0
            }
        })
        .collect();
    tch::manual_seed(5);
    npy::write(
        &dir.join("nulls_images.npy"),
        &Tensor::rand([n, 28, 28], (Kind::Float, Device::Cpu)),
    )
    .unwrap();
    npy::write(&dir.join("nulls_types.npy"), &Tensor::from_slice(&types)).unwrap();
    npy::write(&dir.join("nulls_tiles.npy"), &Tensor::from_slice(&tiles)).unwrap();
    write(&dir.join("nulls_meta.json"), r#"{"torch_seed": 7}"#);
}

pub fn make_set(root: &Path, set: usize) -> PathBuf {
    let s = spec(set);
    let dir = root.join(format!("seed-{set:02}"));
    for (k, v) in VARIANTS.iter().enumerate() {
        let json = serde_json::json!({
            "variant": v, "seed": set, "torch_seed": 7,
            "config": {"epochs": 2, "steps": 100, "batch": 32, "lr": 0.001, "null_prob": 0.5,
                        "text_tiles": false, "validation": "test", "holdout": 10000,
                        "validation_nulls": "fresh", "tf32": "on"},
            "device": "cpu", "threads": 2,
            "versions": {"nullclass": "0.1.0", "tch": "0.24.0"},
            "history": [{"epoch": 1}, {"epoch": 2}],
            "best_epoch": 2, "clean_test_accuracy": s.clean[k][0], "clean_null_rate": s.clean[k][1],
            "wall_seconds": 12.5, "ms_per_step": 30.0
        });
        write(&dir.join(format!("models/{v}.json")), &json.to_string());
    }
    tch::manual_seed(set as i64);

    let mut clean = String::from("model,n,accuracy,null_rate\n");
    let mut threshold = String::from("model,n,correct,misclassified,unclassified\n");
    let mut sweep = String::from("model,eps,n,correct,misclassified,unclassified\n");
    for (k, v) in VARIANTS.iter().enumerate() {
        clean += &format!("{v},10000,{},{}\n", s.clean[k][0], s.clean[k][1]);
        let t = s.threshold[k];
        threshold += &format!("{v},{N},{},{},{}\n", t[0], t[1], t[2]);
        for (e, eps) in SWEEP_EPS.iter().enumerate() {
            // Correct falls with epsilon; the rest splits by model and set.
            let correct = [40, 20 + 2 * set as u64, 4][e];
            let mis = (40 - correct) * (8 - k as u64) / 8;
            sweep += &format!("{v},{eps},{N},{correct},{mis},{}\n", 40 - correct - mis);
        }
    }
    write(&dir.join("eval/clean.csv"), &clean);
    write(&dir.join("eval/threshold.csv"), &threshold);
    write(&dir.join("eval/sweep.csv"), &sweep);
    write(
        &dir.join("eval/meta.json"),
        r#"{"device": "cpu", "version": "0.1.0", "wall_seconds": 2.0}"#,
    );

    let labels: Vec<i64> = (0..N).map(|i| i % 10).collect();
    let mut predictions = Vec::new();
    for k in 0..8i64 {
        for (i, &l) in labels.iter().enumerate() {
            let class = match (i as i64 + k) % 3 {
                0 if k > 0 => l,
                1 if k > 0 => 10,
                _ => (l + 1) % 10,
            };
            predictions.extend([class as f32, 0.4 + 0.01 * i as f32]);
        }
    }
    npy::write(
        &dir.join("eval/threshold_predictions.npy"),
        &Tensor::from_slice(&predictions).view([8, N, 2]),
    )
    .unwrap();

    // The baseline on the 1.5 x images (Figure 8): wrong and confident.
    let base_1_5: Vec<f32> = labels
        .iter()
        .enumerate()
        .flat_map(|(i, &l)| [((l + 2) % 10) as f32, 0.9 + 0.001 * i as f32])
        .collect();
    npy::write(
        &dir.join("eval/base_x1.5_predictions.npy"),
        &Tensor::from_slice(&base_1_5).view([N, 2]),
    )
    .unwrap();

    let fgsm = dir.join("adversarial/fgsm");
    fs::create_dir_all(&fgsm).unwrap();
    let noise = Tensor::rand([N, 28, 28], (Kind::Float, Device::Cpu)) * 0.3;
    let sources = Tensor::stack(
        &labels
            .iter()
            .enumerate()
            .map(|(i, &l)| digit_like(l, &(noise.get(i as i64) * 0.0)))
            .collect::<Vec<_>>(),
        0,
    );
    let adv = Tensor::stack(
        &labels
            .iter()
            .enumerate()
            .map(|(i, &l)| digit_like(l, &noise.get(i as i64)))
            .collect::<Vec<_>>(),
        0,
    );
    npy::write(&fgsm.join("source_images.npy"), &sources).unwrap();
    npy::write(&fgsm.join("labels.npy"), &Tensor::from_slice(&labels)).unwrap();
    npy::write(
        &fgsm.join("test_indices.npy"),
        &Tensor::arange(N, (Kind::Int64, Device::Cpu)),
    )
    .unwrap();
    npy::write(
        &fgsm.join("eps_threshold.npy"),
        &Tensor::from_slice(&s.eps_threshold),
    )
    .unwrap();
    npy::write(&fgsm.join("adv_images.npy"), &adv).unwrap();
    npy::write(
        &fgsm.join("adv_images_x1.5.npy"),
        &(adv * 1.2).clamp(0.0, 1.0),
    )
    .unwrap();
    write(
        &fgsm.join("meta.json"),
        r#"{"device": "cpu", "version": "0.1.0", "wall_seconds": 3.0}"#,
    );
    dir
}

pub fn report(root: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_report"))
        .args(["study", "--artifacts", root.to_str().unwrap()])
        .output()
        .unwrap()
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Rows of a CSV as (first cell, the row's cells by column name).
pub fn csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

pub fn row<'a>(
    rows: &'a [std::collections::HashMap<String, String>],
    key: &str,
    value: &str,
) -> &'a std::collections::HashMap<String, String> {
    rows.iter()
        .find(|r| r[key] == value)
        .unwrap_or_else(|| panic!("no row {key} = {value}"))
}

pub fn close(cell: &str, expected: f64) {
    let v: f64 = cell
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {cell:?}"));
    assert!((v - expected).abs() < 5e-4, "{v} != {expected}");
}

pub fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(fs::File::open(path).unwrap());
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (info.width, info.height)
}

/// Every `src="..."` and `href="..."` of the page.
pub fn links(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            found.push(part.split('"').next().unwrap().to_string());
        }
    }
    found
}

/// Rewrites a set's recorded settings: its models trained `training` = (epochs,
/// steps), its FGSM run on `fgsm_n` images and, when asked, its robust attacks with
/// `robust` = (images, PGD steps, restarts).
pub fn set_strength(
    dir: &Path,
    training: (u64, u64),
    fgsm_n: u64,
    robust: Option<(u64, u64, u64)>,
) {
    for v in VARIANTS {
        let path = dir.join(format!("models/{v}.json"));
        let mut json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        json["config"]["epochs"] = training.0.into();
        json["config"]["steps"] = training.1.into();
        write(&path, &json.to_string());
    }
    write(
        &dir.join("adversarial/fgsm/meta.json"),
        &serde_json::json!({"device": "cpu", "version": "0.1.0", "wall_seconds": 3.0,
                            "config": {"n": fgsm_n}})
        .to_string(),
    );
    if let Some((n, steps, restarts)) = robust {
        write(
            &dir.join("adversarial/robust/meta.json"),
            &serde_json::json!({"config": {"n": n, "steps": steps, "restarts": restarts,
                                           "no_targeted": false, "no_random_start": false}})
            .to_string(),
        );
    }
}

/// `report study` with extra arguments after `--artifacts root`.
pub fn report_with(root: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_report"))
        .args(["study", "--artifacts", root.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

/// Marks `root` as holding the prepared data set `name` ("mnist", "fashion-mnist"):
/// its manifest, as dataset-prep writes beside the safetensors file.
pub fn prepare(root: &Path, name: &str) {
    write(
        &root.join(format!("data/{name}.json")),
        &serde_json::json!({"dataset": name}).to_string(),
    );
}

/// Records data set `name` in every JSON of the set in `dir`, as the tools do.
pub fn set_dataset(dir: &Path, name: &str) {
    let mut files: Vec<PathBuf> = VARIANTS
        .iter()
        .map(|v| dir.join(format!("models/{v}.json")))
        .collect();
    files.extend([
        dir.join("adversarial/fgsm/meta.json"),
        dir.join("eval/meta.json"),
    ]);
    for path in files {
        let mut json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        json["dataset"] = name.into();
        write(&path, &json.to_string());
    }
}

/// `evaluator corners`' CSV under `root`, from (group, images, share, mean, std) rows.
pub fn write_corners(root: &Path, rows: &[(&str, u64, f64, f64, f64)]) {
    let mut text =
        String::from("group,images,near_binary_share,mean_l2_to_corner,std_l2_to_corner\n");
    for (group, images, share, mean, std) in rows {
        text += &format!("{group},{images},{share},{mean},{std}\n");
    }
    write(&root.join("geometry/corners.csv"), &text);
}
