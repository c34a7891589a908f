//! `evaluator fgsm --variants base,m` scores just those models of a set, with the
//! numbers a full run gives them; a list without base first is refused.

#[path = "../../adversary-gen/tests/common/mod.rs"]
mod common;

use std::path::Path;

use nullclass::artifacts::SetDir;
use nullclass::npy;

const BIN: &str = env!("CARGO_BIN_EXE_evaluator");

fn csv_rows(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_subset_of_models_gets_the_rows_a_full_run_gives_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    common::fgsm_set0(root);
    let eval = SetDir::new(root, 0).eval_dir();
    common::run_ok(BIN, "fgsm", root, 0, &["--eps-step", "0.25"]);
    let full: Vec<Vec<String>> = ["clean.csv", "threshold.csv", "sweep.csv"]
        .iter()
        .map(|f| csv_rows(&eval, f))
        .collect();
    let full_pred = npy::read(&eval.join("threshold_predictions.npy")).unwrap();
    std::fs::remove_dir_all(&eval).unwrap();

    // m out of order in the list: rows follow the list, not Variant::ALL.
    common::run_ok(
        BIN,
        "fgsm",
        root,
        0,
        &["--eps-step", "0.25", "--variants", "base,m,u"],
    );
    for (i, f) in ["clean.csv", "threshold.csv", "sweep.csv"]
        .iter()
        .enumerate()
    {
        let rows = csv_rows(&eval, f);
        assert_eq!(rows[0], full[i][0], "{f} header");
        let of = |model: &str, rows: &[String]| -> Vec<String> {
            rows.iter()
                .filter(|r| r.split(',').next() == Some(model))
                .cloned()
                .collect()
        };
        for model in ["base", "m", "u"] {
            assert!(!of(model, &rows).is_empty(), "{f}: no {model} rows");
            assert_eq!(of(model, &rows), of(model, &full[i]), "{f}: {model}");
        }
        for model in ["s", "us", "um", "sm", "usm"] {
            assert!(
                of(model, &rows).is_empty(),
                "{f}: {model} was not asked for"
            );
        }
    }
    let pred = npy::read(&eval.join("threshold_predictions.npy")).unwrap();
    assert_eq!(pred.size()[0], 3);
    // Full order is base, u, s, m, ...: m is index 3 there, 1 here.
    assert!(pred.get(1).equal(&full_pred.get(3)));
    assert!(pred.get(2).equal(&full_pred.get(1)));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(eval.join("meta.json")).unwrap()).unwrap();
    assert_eq!(
        meta["config"]["variants"],
        serde_json::json!(["base", "m", "u"])
    );
}

#[test]
fn a_list_without_base_first_or_with_a_repeat_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    common::fgsm_set0(root);
    for (list, says) in [
        ("m,base", "must start with base"),
        ("base,m,m", "names m twice"),
        ("base,x", "unknown variant"),
    ] {
        let out = std::process::Command::new(BIN)
            .args(["fgsm", "--artifacts", root.to_str().unwrap(), "--seed", "0"])
            .args(["--device", "cpu", "--variants", list])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{list}: {err}");
    }
    assert!(!SetDir::new(root, 0).eval_dir().join("meta.json").exists());
}
