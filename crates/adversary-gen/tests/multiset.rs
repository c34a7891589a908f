//! `--sets 2` in one process writes, for each set, the files two separate runs write.

mod common;

use std::collections::BTreeMap;

use nullclass::artifacts::SetDir;

const BIN: &str = env!("CARGO_BIN_EXE_adversary-gen");
const FGSM: &[&str] = &[
    "--n",
    "6",
    "--batch",
    "16",
    "--save-sweep",
    "--eps-step",
    "0.5",
];
const ROBUST: &[&str] = &[
    "--n",
    "6",
    "--eps-step",
    "0.15",
    "--eps-max",
    "0.3",
    "--step",
    "0.02",
    "--steps",
    "3",
    "--apgd-n-iter",
    "10",
    "--apgd-n-restarts",
    "2",
    "--square-n-queries",
    "100",
];

#[test]
fn two_sets_in_one_process_match_two_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    common::two_sets(root, 5, 300);
    let stages = [("fgsm", FGSM), ("robust", ROBUST)];
    let adversarial = |seed| {
        let set = SetDir::new(root, seed);
        common::snapshot(&set.dir.join("adversarial"))
    };

    for (stage, extra) in stages {
        for seed in [5, 6] {
            common::run_ok(BIN, stage, root, seed, extra);
        }
    }
    let separate: Vec<BTreeMap<String, Vec<u8>>> = [5, 6].map(adversarial).into();
    // Otherwise a run that wrote set 5's files for both would pass.
    assert_ne!(
        separate[0]["fgsm/eps_threshold.npy"],
        separate[1]["fgsm/eps_threshold.npy"]
    );
    assert_ne!(
        separate[0]["robust/pgd_transfer.npy"],
        separate[1]["robust/pgd_transfer.npy"]
    );
    // The runs replace the folders they write.
    std::fs::remove_dir_all(SetDir::new(root, 5).dir.join("adversarial")).unwrap();
    std::fs::remove_dir_all(SetDir::new(root, 6).dir.join("adversarial")).unwrap();

    for (stage, extra) in stages {
        let mut args = vec!["--sets", "2"];
        args.extend(extra);
        let out = common::run_ok(BIN, stage, root, 5, &args);
        assert_eq!(common::device_lines(&out), 1, "{stage}: one device line");
    }
    for (i, seed) in [5, 6].into_iter().enumerate() {
        common::assert_same_files(&format!("set {seed}"), &separate[i], &adversarial(seed));
    }

    let meta: serde_json::Value = serde_json::from_slice(&separate[1]["robust/meta.json"]).unwrap();
    assert_eq!(meta["set_seed"], 6);
    assert_eq!(meta["config"]["tf32"], "off");
}

#[test]
fn sets_must_not_run_past_the_largest_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["fgsm", "--artifacts", tmp.path().to_str().unwrap()])
        .args(["--seed", "999999999", "--device", "cpu", "--sets", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--seed 999999999 with --sets 3 runs past the largest seed"),
        "{err}"
    );
}
