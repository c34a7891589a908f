//! report: tables and figures aggregated over sets (issue 4).
use clap::Parser;

/// Aggregates every set's scores into tables, figures and one HTML page.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Config {}

fn main() -> anyhow::Result<()> {
    let _config = Config::parse();
    anyhow::bail!("report is not implemented yet")
}
