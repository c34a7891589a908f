//! evaluator: scores a set's 8 models on clean and adversarial images (issue 3).
use clap::Parser;

/// Scores all 8 models of a set on the clean test set and its adversarial sets.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Config {}

fn main() -> anyhow::Result<()> {
    let _config = Config::parse();
    anyhow::bail!("evaluator is not implemented yet")
}
