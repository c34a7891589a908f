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

fn prep(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_dataset-prep"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn fashion_mnist_files_get_the_same_checks_under_their_own_name() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("fm");
    let out = tmp.path().join("artifacts");
    fs::create_dir(&src).unwrap();
    fs::write(
        src.join("train-images-idx3-ubyte"),
        build::images(&[], 60_000, 28, 28),
    )
    .unwrap();
    fs::write(src.join("train-labels-idx1-ubyte"), build::labels(&[1])).unwrap();
    let (code, stderr) = prep(&[
        "--dataset".as_ref(),
        "fashion-mnist".as_ref(),
        "--source-dir".as_ref(),
        src.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("train-images-idx3-ubyte")
            && stderr.contains("not a valid Fashion-MNIST image file")
            && stderr.contains("truncated"),
        "{stderr}"
    );
    assert!(!DataSet::FashionMnist.file(&out).exists());

    // A missing folder points at the Fashion-MNIST fetch script.
    let (code, stderr) = prep(&[
        "--dataset".as_ref(),
        "fashion-mnist".as_ref(),
        "--source-dir".as_ref(),
        tmp.path().join("nowhere").as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("missing Fashion-MNIST file") && stderr.contains("fetch-fashion-mnist.sh"),
        "{stderr}"
    );
}

#[test]
fn a_root_that_holds_mnist_does_not_take_fashion_mnist_too() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("artifacts");
    fs::create_dir_all(out.join("data")).unwrap();
    fs::write(DataSet::Mnist.manifest(&out), "{}").unwrap();
    let (code, stderr) = prep(&[
        "--dataset".as_ref(),
        "fashion-mnist".as_ref(),
        "--source-dir".as_ref(),
        tmp.path().as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("already holds MNIST") && stderr.contains("mnist.json"),
        "{stderr}"
    );
    assert!(!DataSet::FashionMnist.file(&out).exists());
}

#[test]
fn an_unknown_data_set_is_a_clear_error() {
    let (code, stderr) = prep(&["--dataset".as_ref(), "cifar".as_ref()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--dataset") && stderr.contains("cifar"),
        "{stderr}"
    );
}
