//! report: the figures and tables of the study. `toy` draws the ramp figures of
//! the report's section 2; `study` aggregates the sets of one data set's study
//! (issue 4), MNIST's or Fashion-MNIST's, and sets the two side by side (issue 13).

mod aggregate;
mod arrays;
mod canvas;
mod charts;
mod comparison;
mod corners;
mod csv_rows;
mod data_set;
mod fonts;
mod mosaics;
mod page;
mod provenance;
mod published;
mod robust;
mod robust_charts;
mod robust_section;
mod robust_tables;
mod robustness;
mod sets;
mod stats;
mod strength;
mod study;
mod tables;
mod toy;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(version, about = "Figures and tables of the null-class study")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Figures 1-4 of the toy ramp study, from `trainer ramp`'s outputs.
    Toy(toy::Config),
    /// Tables, figures and one HTML page aggregated over every set of a study.
    Study(study::Config),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Toy(config) => toy::run(&config),
        Command::Study(config) => study::run(&config),
    }
}
