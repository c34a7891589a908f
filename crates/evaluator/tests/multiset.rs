//! `evaluator fgsm|robust --sets 2` in one process writes, for each set, the files two
//! separate runs write.

#[path = "../../adversary-gen/tests/common/mod.rs"]
mod common;

use clap::Parser;
use nullclass::artifacts::SetDir;

const BIN: &str = env!("CARGO_BIN_EXE_evaluator");

/// Two sets with their FGSM and robust attack folders.
fn attacked(root: &std::path::Path) {
    common::two_sets(root, 5, 300);
    let root = root.to_str().unwrap();
    let cpu = ["--device", "cpu", "--threads", "1"];
    let mut args = vec!["adversary-gen", "--artifacts", root, "--seed", "5"];
    args.extend(cpu);
    args.extend(["--n", "6", "--batch", "16", "--save-sweep"]);
    adversary_gen::run_sets(&adversary_gen::Config::parse_from(&args), 2, |_| {}).unwrap();

    #[derive(Parser)]
    struct Robust {
        #[command(flatten)]
        config: adversary_gen::robust::Config,
    }
    let mut args = vec!["robust", "--artifacts", root, "--seed", "5"];
    args.extend(cpu);
    args.extend(["--n", "6", "--eps-step", "0.15", "--eps-max", "0.3"]);
    args.extend(["--step", "0.02", "--steps", "3"]);
    let robust = Robust::parse_from(&args).config;
    adversary_gen::robust_sets(&robust, 2, |_| {}).unwrap();
}

#[test]
fn two_sets_in_one_process_match_two_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    attacked(root);
    let stages: [(&str, &[&str]); 3] = [
        ("fgsm", &["--eps-step", "0.1"]),
        ("fgsm", &["--use-saved-sweep"]),
        ("robust", &["--chunk", "7"]),
    ];
    let eval = |seed| common::snapshot(&SetDir::new(root, seed).eval_dir());

    for (stage, extra) in stages {
        let (mut separate, mut together) = (Vec::new(), Vec::new());
        for seed in [5, 6] {
            common::run_ok(BIN, stage, root, seed, extra);
            separate.push(eval(seed));
            std::fs::remove_dir_all(SetDir::new(root, seed).eval_dir()).unwrap();
        }
        let what = format!("evaluator {stage} {extra:?}");
        // Otherwise a run that scored set 5 twice would pass.
        let first_csv = if stage == "fgsm" {
            "sweep.csv"
        } else {
            "robust.csv"
        };
        assert_ne!(separate[0][first_csv], separate[1][first_csv], "{what}");

        let mut args = vec!["--sets", "2"];
        args.extend(extra);
        let out = common::run_ok(BIN, stage, root, 5, &args);
        assert_eq!(common::device_lines(&out), 1, "{what}: one device line");
        for (i, seed) in [5, 6].into_iter().enumerate() {
            together.push(eval(seed));
            common::assert_same_files(&format!("{what}, set {seed}"), &separate[i], &together[i]);
        }
        std::fs::remove_dir_all(SetDir::new(root, 5).eval_dir()).unwrap();
        std::fs::remove_dir_all(SetDir::new(root, 6).eval_dir()).unwrap();

        let meta_name = if stage == "fgsm" {
            evaluator::META_FILE
        } else {
            evaluator::robust::META_FILE
        };
        let meta: serde_json::Value = serde_json::from_slice(&together[1][meta_name]).unwrap();
        assert_eq!(meta["set_seed"], 6, "{what}");
        assert_eq!(meta["config"]["tf32"], "off", "{what}");
    }
}
