//! adversary-gen: FGSM adversarial sets from a set's baseline model (issue 3).
use clap::Parser;

/// Finds each test image's FGSM epsilon threshold against a set's baseline model.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Config {}

fn main() -> anyhow::Result<()> {
    let _config = Config::parse();
    anyhow::bail!("adversary-gen is not implemented yet")
}
