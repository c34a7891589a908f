//! Every numeric flag of `evaluator`'s commands, out of range, on the real binary: a
//! clean error naming the flag, never a panic (the walk: tests/support/flag_walk.rs).

#[path = "../../../tests/support/flag_walk.rs"]
mod flag_walk;

use flag_walk::{names, subcommands, Flag, Walk, CHUNK, SEED, SETS, THREADS};

const BIN: &str = env!("CARGO_BIN_EXE_evaluator");

#[test]
fn every_numeric_flag_rejects_values_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("empty").display().to_string();
    assert_eq!(subcommands(BIN), names(&["fgsm", "robust", "corners"]));
    let required = vec![("--seed", "0".to_string()), ("--artifacts", root)];

    Walk {
        bin: BIN,
        sub: Some("fgsm"),
        required: required.clone(),
        numeric: &[
            SEED,
            SETS,
            CHUNK,
            Flag {
                name: "--eps-step",
                bad: &["0", "-0.02", "1.5", "inf"],
                good: "0.1",
            },
            Flag {
                name: "--eps-max",
                bad: &["-0.1", "1.1", "inf"],
                good: "0",
            },
            Flag {
                name: "--baseline-tolerance",
                bad: &["-0.1", "1.1"],
                good: "0",
            },
            THREADS,
        ],
        other: &["--artifacts", "--device", "--tf32", "--variants"],
    }
    .check();

    Walk {
        bin: BIN,
        sub: Some("robust"),
        required: required.clone(),
        numeric: &[SEED, SETS, CHUNK, THREADS],
        other: &["--artifacts", "--device", "--tf32"],
    }
    .check();

    Walk {
        bin: BIN,
        sub: Some("corners"),
        required: required[1..].to_vec(),
        numeric: &[],
        other: &["--artifacts"],
    }
    .check();
}
