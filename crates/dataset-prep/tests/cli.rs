//! The real binary: a broken input gives a non-zero exit, an error on stderr that
//! names the file, and no output file.

use std::fs;
use std::process::Command;

use dataset_prep::idx::build;
use nullclass::dataset::DataSet;

#[test]
fn broken_input_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let mnist = tmp.path().join("mnist");
    let out = tmp.path().join("artifacts");
    fs::create_dir(&mnist).unwrap();
    // Header-valid but far too short for the 60,000 images it announces; the other
    // files are absent, and the image file must be the one reported.
    let header_only = build::images(&[], 60_000, 28, 28);
    fs::write(mnist.join("train-images-idx3-ubyte"), &header_only).unwrap();
    fs::write(
        mnist.join("train-labels-idx1-ubyte"),
        build::labels(&[1, 2]),
    )
    .unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_dataset-prep"))
        .arg("--mnist-dir")
        .arg(&mnist)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "exit status {:?}, stderr {stderr}",
        output.status
    );
    let file = mnist.join("train-images-idx3-ubyte").display().to_string();
    assert!(
        stderr.contains(&file) && stderr.contains("truncated"),
        "{stderr}"
    );
    assert!(!DataSet::Mnist.file(&out).exists());
    assert!(!DataSet::Mnist.manifest(&out).exists());
}

#[test]
fn missing_folder_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("artifacts");
    let output = Command::new(env!("CARGO_BIN_EXE_dataset-prep"))
        .arg("--mnist-dir")
        .arg(tmp.path().join("nowhere"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("nowhere") && stderr.contains("fetch-mnist.sh"),
        "{stderr}"
    );
    assert!(!out.exists());
}
