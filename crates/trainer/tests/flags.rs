//! Every numeric flag of `trainer`'s commands, out of range, on the real binary: a
//! clean error naming the flag, never a panic (the walk: tests/support/flag_walk.rs).

#[path = "../../../tests/support/flag_walk.rs"]
mod flag_walk;

use flag_walk::{names, subcommands, Flag, Walk, SEED, THREADS};

const BIN: &str = env!("CARGO_BIN_EXE_trainer");

const LR: Flag = Flag {
    name: "--lr",
    bad: &["0", "-0.001", "inf"],
    good: "0.01",
};
const NULL_PROB: Flag = Flag {
    name: "--null-prob",
    bad: &["-0.1", "1.5"],
    good: "1",
};

/// The flags `train` and `train-set` share.
const SETTINGS: [Flag; 9] = [
    Flag {
        name: "--epochs",
        bad: &["0", "-1", "100001"],
        good: "1",
    },
    Flag {
        name: "--steps",
        bad: &["0", "-1"],
        good: "5",
    },
    Flag {
        name: "--batch",
        bad: &["0", "-2", "60001"],
        good: "60000",
    },
    LR,
    NULL_PROB,
    Flag {
        name: "--holdout",
        bad: &["0", "-1", "60000"],
        good: "59999",
    },
    Flag {
        name: "--val-limit",
        bad: &["0", "-5"],
        good: "1",
    },
    THREADS,
    Flag {
        name: "--sync-every",
        bad: &["0", "-1", "1000001"],
        good: "50",
    },
];
const SETTINGS_OTHER: [&str; 6] = [
    "--artifacts",
    "--validation",
    "--device",
    "--precision",
    "--tf32",
    "--validation-nulls",
];

#[test]
fn every_numeric_flag_rejects_values_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("empty").display().to_string();
    let out = dir.path().join("out").display().to_string();
    assert_eq!(
        subcommands(BIN),
        names(&["bench-convs", "nulls", "ramp", "train", "train-set"])
    );

    let mut train = vec![SEED];
    train.extend(SETTINGS);
    let other: Vec<&str> = ["--variant"].into_iter().chain(SETTINGS_OTHER).collect();
    Walk {
        bin: BIN,
        sub: Some("train"),
        required: vec![
            ("--seed", "0".into()),
            ("--variant", "base".into()),
            ("--artifacts", root.clone()),
        ],
        numeric: &train,
        other: &other,
    }
    .check();

    let mut train_set = vec![
        SEED,
        Flag {
            name: "--sets",
            bad: &["0", "-1", "1001"],
            good: "2",
        },
    ];
    train_set.extend(SETTINGS);
    let other: Vec<&str> = ["--variants", "--convs", "--depends-on"]
        .into_iter()
        .chain(SETTINGS_OTHER)
        .collect();
    Walk {
        bin: BIN,
        sub: Some("train-set"),
        required: vec![("--seed", "0".into()), ("--artifacts", root.clone())],
        numeric: &train_set,
        other: &other,
    }
    .check();

    Walk {
        bin: BIN,
        sub: Some("nulls"),
        required: vec![("--out", out), ("--artifacts", root.clone())],
        numeric: &[
            Flag {
                name: "--count",
                bad: &["0", "-1", "10000001"],
                good: "1",
            },
            Flag {
                name: "--seed",
                bad: &["-1", "1000000001"],
                good: "5",
            },
            Flag {
                name: "--batch",
                bad: &["0", "-1", "10000001"],
                good: "32",
            },
            Flag {
                name: "--tile",
                bad: &["0", "3", "-1", "15"],
                good: "7",
            },
        ],
        other: &["--artifacts", "--types", "--out"],
    }
    .check();

    Walk {
        bin: BIN,
        sub: Some("ramp"),
        required: vec![("--variant", "base".into()), ("--artifacts", root.clone())],
        numeric: &[
            Flag {
                name: "--epochs",
                bad: &["0", "-1", "100001"],
                good: "1",
            },
            Flag {
                name: "--steps",
                bad: &["0", "-1"],
                good: "1",
            },
            Flag {
                name: "--batch",
                bad: &["0", "-1", "10000001"],
                good: "1",
            },
            LR,
            NULL_PROB,
            SEED,
            Flag {
                name: "--eval-samples",
                bad: &["0", "-1", "10000001"],
                good: "1",
            },
            Flag {
                name: "--grid",
                bad: &["0", "-1", "257"],
                good: "48",
            },
            THREADS,
        ],
        other: &[
            "--artifacts",
            "--variant",
            "--device",
            "--tf32",
            "--start",
            "--keep",
        ],
    }
    .check();

    Walk {
        bin: BIN,
        sub: Some("bench-convs"),
        required: vec![("--device", "cpu".into())],
        numeric: &[
            Flag {
                name: "--models",
                bad: &["0", "-1", "4097"],
                good: "1",
            },
            Flag {
                name: "--batch",
                bad: &["0", "-1", "10000001"],
                good: "1",
            },
            Flag {
                name: "--reps",
                bad: &["0", "-1", "10001"],
                good: "1",
            },
            Flag {
                name: "--max-gib",
                bad: &["0", "-1", "inf"],
                good: "0.5",
            },
            THREADS,
        ],
        other: &["--device", "--tf32"],
    }
    .check();
}
