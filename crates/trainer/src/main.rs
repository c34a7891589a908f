//! trainer: trains one model of one set (the baseline or a null-class variant), and
//! dumps null samples for inspection.

mod bench_convs;
mod nulls_dump;
mod ramp;
mod train;
mod train_set;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(version, about = "Trains the models of the null-class study")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train one model of one set (paper settings by default).
    Train(train::Config),
    /// Train the models of a set (or of several sets) in lockstep as one wide network.
    TrainSet(train_set::Config),
    /// Write generated null samples to .npy, with their types.
    Nulls(nulls_dump::Config),
    /// Train the toy ramp model of section 2 and probe its decision spaces.
    Ramp(ramp::Config),
    /// Time the stacked network's convolution methods (grouped, im2col, per-model).
    BenchConvs(bench_convs::Config),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Train(config) => train::run(&config),
        Command::TrainSet(config) => train_set::run(&config),
        Command::Nulls(config) => nulls_dump::run(&config),
        Command::Ramp(config) => ramp::run(&config),
        Command::BenchConvs(config) => bench_convs::run(&config),
    }
}
