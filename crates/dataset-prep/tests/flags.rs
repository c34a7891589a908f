//! `dataset-prep` has no numeric flag; this keeps it so, or makes a new one part of
//! the walk of tests/support/flag_walk.rs (its values out of range: a clean error).

#[path = "../../../tests/support/flag_walk.rs"]
mod flag_walk;

use flag_walk::{subcommands, Walk};

const BIN: &str = env!("CARGO_BIN_EXE_dataset-prep");

#[test]
fn every_numeric_flag_rejects_values_out_of_range() {
    assert!(subcommands(BIN).is_empty());
    Walk {
        bin: BIN,
        sub: None,
        required: vec![],
        numeric: &[],
        other: &["--dataset", "--source-dir", "--out"],
    }
    .check();
}
