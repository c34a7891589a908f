//! The trainer on real Fashion-MNIST: a short run learns, and its model records the
//! data set. Needs the prepared Fashion-MNIST (`make test` makes it where the files
//! can be had): `artifacts/fashion-mnist/data/fashion-mnist.safetensors` at the
//! workspace root; without it the test says so and passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use nullclass::dataset::DataSet;

fn prepared() -> Option<PathBuf> {
    let file = DataSet::FashionMnist
        .file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../artifacts/fashion-mnist"));
    if file.exists() {
        Some(file)
    } else {
        eprintln!(
            "skipped: no prepared Fashion-MNIST at {} (make test prepares it when scripts/fetch-fashion-mnist.sh can get the files)",
            file.display()
        );
        None
    }
}

#[test]
fn a_few_hundred_steps_on_fashion_mnist_reach_a_sane_accuracy() {
    let Some(file) = prepared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::os::unix::fs::symlink(
        std::fs::canonicalize(&file).unwrap(),
        DataSet::FashionMnist.file(root),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(["train", "--artifacts", root.to_str().unwrap()])
        .args(["--device", "cpu", "--threads", "1", "--seed", "0"])
        .args(["--variant", "m", "--epochs", "1", "--steps", "400"])
        .args(["--val-limit", "1000"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("seed-00/models/m.json")).unwrap())
            .unwrap();
    assert_eq!(json["dataset"], "fashion-mnist", "{json}");
    // Accuracy on the 10,000 test images, the model loaded from its checkpoint.
    let accuracy = json["clean_test_accuracy"].as_f64().unwrap();
    assert!(
        accuracy > 0.75,
        "clean accuracy {accuracy} after 400 steps of the mixed-null model"
    );
}
