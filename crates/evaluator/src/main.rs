//! evaluator: scores a set's 8 models on clean and adversarial images.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "evaluator", version)]
/// Scores one set of models (artifacts/seed-NN) and writes SET/eval/.
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The report's scores: clean test set, FGSM threshold images, epsilon sweep.
    Fgsm(evaluator::Config),
    /// Beyond the report: transfer and adaptive attacks of `adversary-gen robust`, and
    /// the confidence-rejection baseline.
    Robust(evaluator::robust::Config),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Fgsm(config) => fgsm(&config),
        Command::Robust(config) => {
            let dir = evaluator::robust::run(&config)?;
            eprintln!("evaluator: wrote {}/robust.csv", dir.display());
            Ok(())
        }
    }
}

fn fgsm(config: &evaluator::Config) -> anyhow::Result<()> {
    let s = evaluator::run(config)?;
    eprintln!(
        "evaluator: wrote {} in {:.1} s",
        s.out_dir.display(),
        s.wall_seconds
    );
    for ((name, clean), (_, thr)) in s.clean.iter().zip(&s.threshold) {
        eprintln!(
            "  {name:>4}: clean accuracy {:.2}%, null {:.2}%; at threshold {} correct, {} misclassified, {} unclassified",
            100.0 * clean.accuracy(),
            100.0 * clean.null_rate(),
            thr.correct,
            thr.misclassified,
            thr.unclassified
        );
    }
    Ok(())
}
