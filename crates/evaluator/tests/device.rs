//! Loud device handling, seen from a real tool binary: the device line and its
//! reason on stderr, `--device cuda` failing with that reason, and the TF32 and
//! threads flags checked. A missing libtorch_cuda.so is simulated with
//! NULLCLASS_CUDA_LIB, which makes its path the only one tried.

use std::process::{Command, Output};

const MISSING: &str = "/nonexistent/libtorch_cuda.so";

/// `evaluator STAGE` on an empty artifacts folder: it resolves the device, then
/// fails on the missing data.
fn evaluator(stage: &str, cuda_lib: Option<&str>, extra: &[&str]) -> (Output, String) {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_evaluator"));
    cmd.args([stage, "--artifacts", tmp.path().to_str().unwrap()])
        .args(["--seed", "0"])
        .args(extra)
        .env_remove("NVIDIA_TF32_OVERRIDE");
    match cuda_lib {
        Some(path) => cmd.env("NULLCLASS_CUDA_LIB", path),
        None => cmd.env_remove("NULLCLASS_CUDA_LIB"),
    };
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

fn device_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(": device: "))
        .collect()
}

#[test]
fn auto_says_why_it_fell_back_to_the_cpu() {
    for stage in ["fgsm", "robust"] {
        let (out, err) = evaluator(stage, Some(MISSING), &[]);
        assert!(!out.status.success(), "no data, yet it succeeded");
        let lines = device_lines(&err);
        assert_eq!(lines.len(), 1, "{err}");
        let expected = format!(
            "evaluator: device: auto -> cpu: libtorch_cuda.so could not be loaded: {MISSING}: "
        );
        assert!(lines[0].starts_with(&expected), "{err}");
        // dlerror's own words, not a paraphrase.
        assert!(lines[0].contains("No such file or directory"), "{err}");
        assert!(
            lines[0].ends_with("; tf32 off (no effect on the CPU)"),
            "{err}"
        );
        assert!(err.contains("mnist.safetensors"), "{err}");
    }
}

#[test]
fn cuda_that_cannot_be_had_fails_with_the_reason() {
    for device in ["cuda", "cuda:1"] {
        let (out, err) = evaluator("fgsm", Some(MISSING), &["--device", device]);
        assert!(!out.status.success());
        let n = device.strip_prefix("cuda:").unwrap_or("0");
        let expected = format!(
            "--device cuda:{n} cannot be honoured: libtorch_cuda.so could not be loaded: {MISSING}: "
        );
        assert!(err.contains(&expected), "{err}");
        // It stops there, before reading any data.
        assert!(!err.contains("mnist.safetensors"), "{err}");
    }
}

#[test]
fn the_real_library_gives_a_device_or_a_reason() {
    // Whatever this machine has: a GPU (its line names it), or a stated reason.
    let (_, err) = evaluator("fgsm", None, &[]);
    let lines = device_lines(&err);
    assert_eq!(lines.len(), 1, "{err}");
    let line = lines[0];
    assert!(
        line.contains("auto -> cuda:0") || line.contains("auto -> cpu: "),
        "{line}"
    );
    let (out, err) = evaluator("fgsm", None, &["--device", "cuda:99"]);
    assert!(!out.status.success());
    assert!(
        err.contains("--device cuda:99 cannot be honoured: "),
        "{err}"
    );
}

#[test]
fn cpu_is_stated_and_flags_are_checked() {
    let (_, err) = evaluator("fgsm", Some(MISSING), &["--device", "cpu", "--tf32", "on"]);
    assert_eq!(
        device_lines(&err),
        ["evaluator: device: cpu -> cpu (asked for); tf32 on (no effect on the CPU)"],
        "{err}"
    );
    let (out, err) = evaluator("fgsm", None, &["--tf32", "maybe"]);
    assert!(!out.status.success());
    assert!(err.contains("unknown TF32 policy \"maybe\""), "{err}");
    let (out, err) = evaluator("robust", None, &["--device", "cpu", "--threads", "0"]);
    assert!(!out.status.success());
    assert!(err.contains("'0' for '--threads <THREADS>'"), "{err}");
}
