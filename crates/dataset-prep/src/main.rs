use clap::Parser;
#[derive(Parser, Debug)]
#[command(version, about)]
struct Config {}
fn main() -> anyhow::Result<()> {
    let _config = Config::parse();
    anyhow::bail!("dataset-prep is not implemented yet")
}
