//! For the multi-set tests of adversary-gen and of the evaluator (which includes this
//! file by path): two synthetic sets sharing one data file, the tool binaries run
//! once per set or once for both, and folder snapshots compared byte for byte.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use adversary_gen::synthetic;

/// Sets `first` and `first + 1` under `root`, with `test` test images labelled for
/// the first set's baseline (the second set's baseline gets some of them right too).
pub fn two_sets(root: &Path, first: u64, test: i64) {
    synthetic::write_set(root, first, test, 7).unwrap();
    synthetic::write_models(root, first + 1).unwrap();
}

/// Runs `binary stage --artifacts root --seed seed --device cpu --threads 1 extra...`
/// and returns its output after checking that it succeeded.
pub fn run_ok(binary: &str, stage: &str, root: &Path, seed: u64, extra: &[&str]) -> Output {
    let seed = seed.to_string();
    let out = Command::new(binary)
        .args([
            stage,
            "--artifacts",
            root.to_str().unwrap(),
            "--seed",
            &seed,
        ])
        .args(["--device", "cpu", "--threads", "1"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{binary} {stage} --seed {seed} {extra:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// How many `device:` lines a run printed (one per process, however many sets).
pub fn device_lines(out: &Output) -> usize {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(": device: "))
        .count()
}

/// Every file under `dir` (relative path -> bytes).
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                files.insert(name, fs::read(&path).unwrap());
            }
        }
    }
    assert!(!files.is_empty(), "nothing under {}", dir.display());
    files
}

/// Removes every `*seconds` field (wall and stage timings), at any depth.
fn without_timings(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|k, _| !k.ends_with("seconds"));
            map.values_mut().for_each(without_timings);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(without_timings),
        _ => {}
    }
}

/// The same file names, every non-JSON file byte-identical, every JSON file equal
/// once its timings are removed.
pub fn assert_same_files(
    what: &str,
    expected: &BTreeMap<String, Vec<u8>>,
    got: &BTreeMap<String, Vec<u8>>,
) {
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(got), names(expected), "{what}: different files");
    for (name, bytes) in expected {
        let other = &got[name];
        if name.ends_with(".json") {
            let parse = |b: &[u8]| {
                let mut v: serde_json::Value = serde_json::from_slice(b).unwrap();
                without_timings(&mut v);
                v
            };
            assert_eq!(parse(other), parse(bytes), "{what}: {name} differs");
        } else {
            assert!(other == bytes, "{what}: {name} differs");
        }
    }
}

/// A synthetic set 0 (60 test images) with its FGSM folder of 6 images, made in
/// process: what the evaluator's data-set and --variants tests score.
pub fn fgsm_set0(root: &Path) {
    synthetic::write_set(root, 0, 60, 7).unwrap();
    let root = root.to_str().unwrap();
    let args = [
        "adversary-gen",
        "--artifacts",
        root,
        "--seed",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--n",
        "6",
        "--batch",
        "16",
    ];
    let config = <adversary_gen::Config as clap::Parser>::parse_from(args);
    adversary_gen::run_sets(&config, 1, |_| {}).unwrap();
}
