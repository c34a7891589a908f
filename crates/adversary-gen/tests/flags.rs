//! Every numeric flag of `adversary-gen`'s commands, out of range, on the real binary:
//! a clean error naming the flag, never a panic (the walk: tests/support/flag_walk.rs).

#[path = "../../../tests/support/flag_walk.rs"]
mod flag_walk;

use flag_walk::{names, subcommands, Flag, Walk, CHUNK, SEED, SETS, THREADS};

const BIN: &str = env!("CARGO_BIN_EXE_adversary-gen");

const N: Flag = Flag {
    name: "--n",
    bad: &["0", "-1", "10001"],
    good: "10000",
};
/// A perturbation size in pixel units, above 0 and at most 1.
const fn radius(name: &'static str) -> Flag {
    Flag {
        name,
        bad: &["0", "-0.1", "1.5", "inf"],
        good: "0.5",
    }
}

#[test]
fn every_numeric_flag_rejects_values_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("empty").display().to_string();
    assert_eq!(subcommands(BIN), names(&["fgsm", "robust"]));
    let required = vec![("--seed", "0".to_string()), ("--artifacts", root)];

    Walk {
        bin: BIN,
        sub: Some("fgsm"),
        required: required.clone(),
        numeric: &[
            SEED,
            SETS,
            N,
            Flag {
                name: "--batch",
                bad: &["0", "-1"],
                good: "1",
            },
            CHUNK,
            radius("--min-eps"),
            radius("--max-eps"),
            Flag {
                name: "--points",
                bad: &["2", "0", "-1", "1001"],
                good: "3",
            },
            Flag {
                name: "--tolerance",
                bad: &["0", "1e-7", "2", "-1"],
                good: "1e-6",
            },
            radius("--eps-step"),
            Flag {
                name: "--eps-max",
                bad: &["-0.1", "1.1", "inf"],
                good: "0",
            },
            THREADS,
        ],
        other: &["--artifacts", "--device", "--tf32"],
    }
    .check();

    Walk {
        bin: BIN,
        sub: Some("robust"),
        required,
        numeric: &[
            SEED,
            SETS,
            N,
            radius("--eps-step"),
            radius("--eps-max"),
            radius("--step"),
            Flag {
                name: "--steps",
                bad: &["0", "-1", "1000001"],
                good: "1",
            },
            Flag {
                name: "--restarts",
                bad: &["0", "-1", "10001"],
                good: "2",
            },
            Flag {
                name: "--apgd-n-iter",
                bad: &["0", "-1", "100001"],
                good: "10",
            },
            Flag {
                name: "--apgd-n-restarts",
                bad: &["0", "-1", "1001"],
                good: "2",
            },
            Flag {
                name: "--apgd-odi-steps",
                bad: &["-1", "101"],
                good: "2",
            },
            Flag {
                name: "--apgd-n-target-classes",
                bad: &["-1", "10"],
                good: "0",
            },
            Flag {
                name: "--square-n-queries",
                bad: &["-1", "1000001"],
                good: "0",
            },
            radius("--square-p-init"),
            radius("--max-eps"),
            CHUNK,
            THREADS,
        ],
        other: &["--artifacts", "--device", "--tf32"],
    }
    .check();
}
