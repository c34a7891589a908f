//! The binary end to end on a tiny synthetic set: what it writes, that numpy reads it,
//! and that bad input fails with an error naming the file and writes nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use adversary_gen::synthetic;
use nullclass::artifacts::SetDir;
use nullclass::fgsm;
use nullclass::npy;
use nullclass::nulls::Variant;
use tch::{Device, Kind, Tensor};

fn run(root: &Path, seed: u64, extra: &[&str]) -> Output {
    run_command("fgsm", root, seed, extra)
}

fn run_command(command: &str, root: &Path, seed: u64, extra: &[&str]) -> Output {
    let seed = seed.to_string();
    Command::new(env!("CARGO_BIN_EXE_adversary-gen"))
        .args([
            command,
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

/// A Python with numpy: $NULLCLASS_PYTHON, the project's .venv, or python3.
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

/// `name dtype shape` for each file, as numpy.load sees it.
fn numpy_describe(python: &Path, dir: &Path, names: &[&str]) -> Vec<String> {
    let script = "import sys, numpy as np\n\
                  for n in sys.argv[2:]:\n    \
                  a = np.load(sys.argv[1] + '/' + n)\n    \
                  print(n, a.dtype, list(a.shape))";
    let out = Command::new(python)
        .args(["-c", script, dir.to_str().unwrap()])
        .args(names)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn read(dir: &Path, name: &str) -> Tensor {
    npy::read(&dir.join(name)).unwrap()
}

#[test]
fn writes_the_fgsm_folder() {
    let tmp = tempfile::tempdir().unwrap();
    synthetic::write_set(tmp.path(), 7, 64, 9).unwrap();
    let out = run(
        tmp.path(),
        7,
        &[
            "--n",
            "12",
            "--batch",
            "8",
            "--save-sweep",
            "--eps-step",
            "0.25",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = SetDir::new(tmp.path(), 7).fgsm_dir();

    let meta: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let c = &meta["counts"];
    assert_eq!(c["acquired"], 12);
    let walked = c["walked"].as_i64().unwrap();
    assert_eq!(
        12 + c["skipped_wrong"].as_i64().unwrap() + c["discarded_no_flip"].as_i64().unwrap(),
        walked
    );
    assert!(c["skipped_wrong"].as_i64().unwrap() >= 1, "{c}");
    assert_eq!(meta["last_test_index"].as_i64().unwrap(), walked - 1);
    let base = SetDir::new(tmp.path(), 7).model(&Variant::all()[0]);
    assert_eq!(
        meta["model_sha256"].as_str().unwrap(),
        nullclass::artifacts::sha256_file(&base).unwrap()
    );
    assert!(meta["wall_seconds"].as_f64().unwrap() > 0.0);

    let (src, signs, thr) = (
        read(&dir, "source_images.npy"),
        read(&dir, "signed_grads.npy"),
        read(&dir, "eps_threshold.npy"),
    );
    assert_eq!(src.size(), [12, 28, 28]);
    assert!(fgsm::perturb(&src, &signs, &thr).equal(&read(&dir, "adv_images.npy")));
    let scaled = (thr.to_kind(Kind::Double) * 1.5).to_kind(Kind::Float);
    assert!(fgsm::perturb(&src, &signs, &scaled).equal(&read(&dir, "adv_images_x1.5.npy")));
    let sweep = read(&dir, "sweep_images.npy");
    assert_eq!(sweep.size(), [5, 12, 28, 28]);
    let eps: Vec<f32> = Vec::try_from(&read(&dir, "sweep_eps.npy")).unwrap();
    assert_eq!(eps, [0.0, 0.25, 0.5, 0.75, 1.0]);
    assert!(sweep.get(0).equal(&src));
    assert!(sweep.get(3).equal(&fgsm::perturb_all(&src, &signs, 0.75)));
    let signs_ok = signs
        .abs()
        .eq(1.0)
        .logical_or(&signs.eq(0.0))
        .all()
        .int64_value(&[]);
    assert_eq!(signs_ok, 1);
    let in_range = src.ge(0.0).logical_and(&src.le(1.0)).all().int64_value(&[]);
    assert_eq!(in_range, 1);
    let leftovers: Vec<_> = fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["fgsm"], "staging folders left behind");

    match numpy_python() {
        None => eprintln!("note: no Python with numpy found; skipping the numpy.load check"),
        Some(py) => {
            let names = [
                "source_images.npy",
                "labels.npy",
                "test_indices.npy",
                "signed_grads.npy",
                "eps_threshold.npy",
                "adv_images.npy",
                "adv_images_x1.5.npy",
                "sweep_images.npy",
            ];
            let seen = numpy_describe(&py, &dir, &names);
            assert_eq!(
                seen,
                [
                    "source_images.npy float32 [12, 28, 28]",
                    "labels.npy int64 [12]",
                    "test_indices.npy int64 [12]",
                    "signed_grads.npy float32 [12, 28, 28]",
                    "eps_threshold.npy float32 [12]",
                    "adv_images.npy float32 [12, 28, 28]",
                    "adv_images_x1.5.npy float32 [12, 28, 28]",
                    "sweep_images.npy float32 [5, 12, 28, 28]",
                ]
            );
        }
    }

    // A failing rerun leaves the previous complete folder as it was.
    let before = fs::read(dir.join("meta.json")).unwrap();
    let out = run(tmp.path(), 7, &["--n", "64"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("could be acquired"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read(dir.join("meta.json")).unwrap(), before);
    assert_eq!(fs::read_dir(dir.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn bad_input_names_the_file_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    synthetic::write_set(tmp.path(), 2, 24, 5).unwrap();
    let set = SetDir::new(tmp.path(), 2);
    let base = set.model(&Variant::all()[0]);
    let base_name = base.display().to_string();
    let nothing_written = || assert!(!set.dir.join("adversarial").exists(), "output written");

    let out = run(tmp.path(), 2, &["--n", "10001"]);
    assert!(
        !out.status.success()
            && stderr(&out).contains("'--n <N>': 10001 is not a whole number from 1 to 10000"),
        "{}",
        stderr(&out)
    );
    let out = run(tmp.path(), 2, &["--n", "30"]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("30") && err.contains("mnist.safetensors"),
        "{err}"
    );
    nothing_written();
    let out = run(tmp.path(), 9, &[]);
    assert!(
        !out.status.success() && stderr(&out).contains("seed-09/models/base.safetensors"),
        "{}",
        stderr(&out)
    );

    let good = fs::read(&base).unwrap();
    fs::write(&base, b"not a checkpoint").unwrap();
    let out = run(tmp.path(), 2, &["--n", "4"]);
    assert!(
        !out.status.success() && stderr(&out).contains(&base_name),
        "{}",
        stderr(&out)
    );
    nothing_written();

    let w = Tensor::zeros([32, 1, 3, 3], (Kind::Float, Device::Cpu));
    Tensor::write_safetensors(&[("conv1.kernel", &w)], &base).unwrap();
    let out = run(tmp.path(), 2, &["--n", "4"]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains(&base_name) && err.contains("conv1.weight"),
        "{err}"
    );
    nothing_written();

    fs::write(&base, good).unwrap();
    fs::write(nullclass::dataset::DataSet::Mnist.file(tmp.path()), b"junk").unwrap();
    let out = run(tmp.path(), 2, &["--n", "4"]);
    assert!(
        !out.status.success() && stderr(&out).contains("mnist.safetensors"),
        "{}",
        stderr(&out)
    );
    nothing_written();
}

#[test]
fn writes_the_robust_folder_or_names_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    synthetic::write_set(tmp.path(), 4, 40, 6).unwrap();
    let set = SetDir::new(tmp.path(), 4);
    let small = [
        "--n",
        "6",
        "--steps",
        "3",
        "--apgd-n-iter",
        "10",
        "--apgd-n-restarts",
        "1",
        "--square-n-queries",
        "100",
        "--eps-step",
        "0.1",
        "--threads",
        "1",
    ];

    // A set with a model missing: the error names it, and nothing is written.
    let um = set.model(&Variant::all()[5]);
    let kept = fs::read(&um).unwrap();
    fs::remove_file(&um).unwrap();
    let out = run_command("robust", tmp.path(), 4, &small);
    assert!(
        !out.status.success() && stderr(&out).contains("seed-04/models/um.safetensors"),
        "{}",
        stderr(&out)
    );
    assert!(!set.dir.join("adversarial").exists(), "output written");
    fs::write(&um, kept).unwrap();

    let out = run_command("robust", tmp.path(), 4, &small);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = set.robust_dir();
    let meta: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    // 3 radii x (1 transfer PGD + 8 adaptive PGD + 8 APGD + 8 Square) attack runs, each
    // with its zero-gradient count.
    assert_eq!(meta["attacks"].as_array().unwrap().len(), 3 * (1 + 3 * 8));
    assert_eq!(meta["fgsm_margin"].as_array().unwrap().len(), 8);
    let src = read(&dir, "source_images.npy");
    let eps: Vec<f32> = Vec::try_from(&read(&dir, "eps.npy")).unwrap();
    assert_eq!(eps, [0.1, 0.2, 0.3]);
    for name in ["pgd_transfer.npy", "pgd_adaptive_usm.npy"] {
        let adv = read(&dir, name);
        assert_eq!(adv.size(), [3, 6, 28, 28]);
        for (k, &e) in eps.iter().enumerate() {
            let d = (adv.get(k as i64) - &src).abs().max().double_value(&[]);
            assert!(d <= f64::from(e) + 1e-6, "{name} eps {e}: moved {d}");
        }
    }
    match numpy_python() {
        None => eprintln!("note: no Python with numpy found; skipping the numpy.load check"),
        Some(py) => {
            let names = [
                "labels.npy",
                "eps.npy",
                "fgsm_transfer_signs.npy",
                "pgd_transfer.npy",
                "pgd_adaptive_base.npy",
                "fgsm_margin_signs_m.npy",
                "fgsm_margin_threshold_m.npy",
                "fgsm_margin_status_m.npy",
            ];
            assert_eq!(
                numpy_describe(&py, &dir, &names),
                [
                    "labels.npy int64 [6]",
                    "eps.npy float32 [3]",
                    "fgsm_transfer_signs.npy float32 [6, 28, 28]",
                    "pgd_transfer.npy float32 [3, 6, 28, 28]",
                    "pgd_adaptive_base.npy float32 [3, 6, 28, 28]",
                    "fgsm_margin_signs_m.npy float32 [6, 28, 28]",
                    "fgsm_margin_threshold_m.npy float32 [6]",
                    "fgsm_margin_status_m.npy int64 [6]",
                ]
            );
        }
    }
}
