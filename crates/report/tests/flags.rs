//! Every numeric flag of `report`'s commands, out of range, on the real binary: a
//! clean error naming the flag, never a panic (the walk: tests/support/flag_walk.rs).

#[path = "../../../tests/support/flag_walk.rs"]
mod flag_walk;

use flag_walk::{names, subcommands, Walk};

const BIN: &str = env!("CARGO_BIN_EXE_report");

#[test]
fn every_numeric_flag_rejects_values_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("empty").display().to_string();
    assert_eq!(subcommands(BIN), names(&["study", "toy"]));
    Walk {
        bin: BIN,
        sub: Some("toy"),
        required: vec![("--artifacts", root.clone())],
        numeric: &[],
        other: &["--artifacts"],
    }
    .check();
    Walk {
        bin: BIN,
        sub: Some("study"),
        required: vec![("--artifacts", root)],
        numeric: &[],
        other: &["--artifacts", "--compare-with"],
    }
    .check();
}
