//! The grouped models stage of `make models`: `trainer train-set --only-stale`
//! retrains only the models make would rebuild, and a model retrained alone gets
//! the weights it got inside the stack; `make -n` shows one trainer process per
//! group of sets, and needs no cargo with NO_BUILD=1.
//!
//! Needs the prepared MNIST (`make test` makes it), as tests/train.rs does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use nullclass::dataset::Mnist;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A temporary artifacts root holding the prepared MNIST with its first 500 test
/// images only: clean scoring would dominate these short runs otherwise.
fn artifacts_root() -> tempfile::TempDir {
    let mnist = std::env::var_os("NULLCLASS_MNIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("artifacts/data/mnist.safetensors"));
    assert!(
        mnist.exists(),
        "prepared MNIST missing at {}: run `make test`",
        mnist.display()
    );
    let mut data = Mnist::load(&mnist).unwrap();
    data.test_images = data.test_images.narrow(0, 0, 500);
    data.test_labels = data.test_labels.narrow(0, 0, 500);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    data.save(&dir.path().join("data/mnist.safetensors"))
        .unwrap();
    dir
}

const VARIANTS: [&str; 3] = ["base", "u", "usm"];

/// `train-set --only-stale` of set 2 in float32 on one CPU thread, the
/// convolutions as make runs them (`--convs auto`: per model on the CPU).
fn train_stale(root: &Path, variants: &str, stamp: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["train-set", "--artifacts", root.to_str().unwrap()])
        .args(["--device", "cpu", "--threads", "1", "--seed", "2"])
        .args(["--variants", variants, "--epochs", "2", "--steps", "20"])
        .args(["--batch", "8", "--val-limit", "50", "--only-stale"])
        .args(["--depends-on", stamp.to_str().unwrap()])
        .output()
        .unwrap()
}

fn succeeded(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "train-set failed: {stderr}");
    stderr
}

/// Every file of the models folder: its bytes and modification time.
fn snapshot(models: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    std::fs::read_dir(models)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            let bytes = std::fs::read(e.path()).unwrap();
            (name, (bytes, e.metadata().unwrap().modified().unwrap()))
        })
        .collect()
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn a_deleted_model_is_retrained_alone_to_the_weights_of_the_stack() {
    let root = artifacts_root();
    let stamp = root.path().join("train.txt");
    std::fs::write(&stamp, "settings").unwrap();
    let list = VARIANTS.join(",");
    let first = succeeded(&train_stale(root.path(), &list, &stamp));
    assert!(first.contains("3 of 3 models to train"), "{first}");
    let models = root.path().join("seed-02/models");
    let stacked = snapshot(&models);
    assert_eq!(stacked.len(), 4 * VARIANTS.len());

    for ext in ["safetensors", "last.safetensors", "history.csv", "json"] {
        std::fs::remove_file(models.join(format!("u.{ext}"))).unwrap();
    }
    let second = succeeded(&train_stale(root.path(), &list, &stamp));
    assert!(second.contains("1 of 3 models to train"), "{second}");
    assert!(second.contains("training seed-02/u:"), "{second}");
    let alone = snapshot(&models);
    assert_eq!(
        alone.keys().collect::<Vec<_>>(),
        stacked.keys().collect::<Vec<_>>()
    );
    for (name, (bytes, mtime)) in &stacked {
        let (new_bytes, new_mtime) = &alone[name];
        if !name.starts_with("u.") {
            assert!(
                bytes == new_bytes && mtime == new_mtime,
                "{name} was rewritten"
            );
        } else if name.ends_with(".safetensors") {
            // Float32 on one thread: the stacked step sums each model's numbers in
            // the same order as a stack of one, so the weights match bit for bit.
            assert!(
                bytes == new_bytes,
                "{name}: retrained alone, the checkpoint differs from the stack's"
            );
        }
    }
    let (a, b) = (json(&stacked["u.json"].0), json(&alone["u.json"].0));
    assert_eq!(a["checkpoint_sha256"], b["checkpoint_sha256"]);
    assert_eq!(a["best_epoch"], b["best_epoch"]);
    for (ha, hb) in a["history"]
        .as_array()
        .unwrap()
        .iter()
        .zip(b["history"].as_array().unwrap())
    {
        for key in ["train_loss", "train_accuracy", "val_loss", "val_accuracy"] {
            assert_eq!(ha[key], hb[key], "u: {key}");
        }
    }
    assert_eq!(
        (a["lockstep_models"].as_u64(), b["lockstep_models"].as_u64()),
        (Some(3), Some(1))
    );

    // Nothing stale: nothing trained, nothing touched.
    let third = succeeded(&train_stale(root.path(), &list, &stamp));
    assert!(third.contains("0 of 3 models to train"), "{third}");
    assert_eq!(snapshot(&models), alone);

    // A settings stamp newer than a model's JSON makes it stale, as in make.
    let later = alone["u.json"].1 + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&stamp)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let fourth = succeeded(&train_stale(root.path(), "u", &stamp));
    assert!(fourth.contains("1 of 1 models to train"), "{fourth}");
    assert!(fourth.contains("train.txt is newer than"), "{fourth}");
}

#[test]
fn only_stale_names_a_missing_depends_on_file() {
    let root = artifacts_root();
    let missing = root.path().join("no-such-stamp.txt");
    let out = train_stale(root.path(), "base", &missing);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--depends-on") && stderr.contains("no-such-stamp.txt"),
        "{stderr}"
    );
    assert!(!root.path().join("seed-02").exists());
    // --depends-on means nothing without --only-stale: refused, not ignored.
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["train-set", "--artifacts", root.path().to_str().unwrap()])
        .args(["--seed", "0", "--device", "cpu", "--depends-on"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!root.path().join("seed-00").exists());
}

/// `make -n GOALS VARS` at the workspace root into a temporary ARTIFACTS, with
/// NO_BUILD=1 and a PATH that has no cargo: prebuilt tools, nothing to compile.
fn make_dry_run(goals: &[&str], vars: &[&str]) -> String {
    let artifacts = tempfile::tempdir().unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    let no_cargo: Vec<&str> = path
        .split(':')
        .filter(|dir| !Path::new(dir).join("cargo").exists())
        .collect();
    let out = Command::new("make")
        .current_dir(workspace())
        .env("PATH", no_cargo.join(":"))
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .args(["-n", "--no-print-directory"])
        .args(goals)
        .arg(format!("ARTIFACTS={}", artifacts.path().display()))
        .arg("NO_BUILD=1")
        .args(vars)
        .output()
        .expect("make runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "make -n {goals:?} {vars:?} failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("cargo"),
        "NO_BUILD=1 still builds:\n{stdout}"
    );
    stdout
}

/// The word after `flag` on a command line.
fn flag<'a>(line: &'a str, flag: &str) -> Option<&'a str> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.windows(2).find(|w| w[0] == flag).map(|w| w[1])
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn make_trains_each_group_of_sets_in_one_process() {
    let gpu = make_dry_run(&["all"], &["SEEDS=30", "DEVICE=cuda"]);
    let train_set = lines_with(&gpu, "trainer train-set");
    assert_eq!(train_set.len(), 1, "{gpu}");
    assert_eq!(flag(train_set[0], "--sets"), Some("30"), "{gpu}");
    assert!(train_set[0].contains(" --only-stale "), "{gpu}");
    assert!(lines_with(&gpu, "trainer train ").is_empty(), "{gpu}");
    for stage in ["adversary-gen fgsm", "evaluator fgsm"] {
        let runs = lines_with(&gpu, stage);
        assert_eq!(runs.len(), 1, "{stage}: {gpu}");
        assert_eq!(flag(runs[0], "--sets"), Some("30"), "{gpu}");
    }

    let cpu = make_dry_run(&["all"], &["SEEDS=2", "DEVICE=cpu"]);
    let train_set = lines_with(&cpu, "trainer train-set");
    assert_eq!(train_set.len(), 2, "{cpu}");
    for (set, line) in train_set.iter().enumerate() {
        let (seed, sets) = (flag(line, "--seed"), flag(line, "--sets"));
        assert_eq!((seed, sets), (Some(set.to_string().as_str()), Some("1")));
    }
    assert!(lines_with(&cpu, "trainer train ").is_empty(), "{cpu}");
    assert_eq!(lines_with(&cpu, "adversary-gen fgsm").len(), 2, "{cpu}");

    // Four GPUs: four groups of sets, one per GPU, for make -j4.
    let four = make_dry_run(
        &["models", "robust"],
        &["SEEDS=30", "DEVICE=cuda:all", "GPUS=4"],
    );
    for tool in [
        "trainer train-set",
        "adversary-gen robust",
        "evaluator robust",
    ] {
        let runs = lines_with(&four, tool);
        assert_eq!(runs.len(), 4, "{tool}: {four}");
        for (gpu, line) in runs.iter().enumerate() {
            let seed = (8 * gpu).to_string();
            let device = format!("cuda:{gpu}");
            assert_eq!(flag(line, "--seed"), Some(seed.as_str()), "{line}");
            assert_eq!(flag(line, "--device"), Some(device.as_str()), "{line}");
        }
    }
}

#[test]
fn the_robust_stamp_holds_the_default_budgets() {
    use nullclass::attack_budget as budget;
    let out = make_dry_run(&["robust"], &["SEEDS=1", "DEVICE=cpu"]);
    let stamp = lines_with(&out, ".settings/robust.txt")
        .into_iter()
        .find(|l| l.contains("defaults:"))
        .unwrap_or_else(|| panic!("no robust stamp line with the defaults:\n{out}"))
        .to_string();
    let defaults = [
        ("IMAGES", budget::IMAGES as usize),
        ("PGD_STEPS", budget::PGD_STEPS),
        ("PGD_RESTARTS", budget::PGD_RESTARTS),
        ("APGD_N_ITER", budget::APGD_N_ITER),
        ("APGD_N_RESTARTS", budget::APGD_N_RESTARTS),
        ("APGD_ODI_STEPS", budget::APGD_ODI_STEPS),
        ("APGD_N_TARGET_CLASSES", budget::APGD_N_TARGET_CLASSES),
        ("SQUARE_N_QUERIES", budget::SQUARE_N_QUERIES),
    ];
    let families = [
        ("APGD_LOSSES", budget::APGD_LOSSES.join(",")),
        (
            "APGD_TARGETED_LOSSES",
            budget::APGD_TARGETED_LOSSES.join(","),
        ),
    ];
    let words = defaults
        .into_iter()
        .map(|(name, value)| (name, value.to_string()))
        .chain(families);
    for (name, value) in words {
        let word = format!("{name}={value}");
        assert!(
            stamp
                .split_whitespace()
                .any(|w| w.trim_matches('\'') == word),
            "the robust stamp lacks {word}: {stamp}"
        );
    }
}
