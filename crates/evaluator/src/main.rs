//! evaluator: scores a set's 8 models on clean and adversarial images.

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "evaluator", version)]
/// Scores sets of models (artifacts/seed-NN) and writes SET/eval/.
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A stage's flags for one set, and how many consecutive sets to run in this process.
#[derive(Args)]
struct Sets<C: Args> {
    #[command(flatten)]
    config: C,
    /// Score sets --seed, --seed + 1, ..., --seed + N - 1 in this one process (the
    /// device and the test set are set up once); each set's files are the same as
    /// from its own run.
    #[arg(long, default_value_t = 1, value_parser = nullclass::flag_ranges::int::<u64>(1..=1000))]
    sets: u64,
}

#[derive(Subcommand)]
enum Command {
    /// The report's scores: clean test set, FGSM threshold images, epsilon sweep.
    Fgsm(Sets<evaluator::Config>),
    /// Beyond the report: transfer and adaptive attacks of `adversary-gen robust`, and
    /// the confidence-rejection baseline.
    Robust(Sets<evaluator::robust::Config>),
    /// How near clean images, mixed nulls and FGSM threshold images lie to the
    /// corners of the pixel hypercube (the report's section 6), for the data set.
    Corners(evaluator::corners::Config),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Fgsm(s) => evaluator::run_sets(&s.config, s.sets, report),
        Command::Robust(s) => evaluator::robust_sets(&s.config, s.sets, |dir| {
            eprintln!("evaluator: wrote {}/robust.csv", dir.display())
        }),
        Command::Corners(c) => {
            for g in evaluator::corners::run(&c)? {
                eprintln!(
                    "  {}: {} images, {:.1}% of pixels within {} of 0 or 1, L2 to the nearest corner {:.2} (std {:.2})",
                    g.group,
                    g.images,
                    100.0 * g.near_binary_share,
                    evaluator::corners::NEAR,
                    g.mean_l2_to_corner,
                    g.std_l2_to_corner
                );
            }
            eprintln!(
                "evaluator: wrote {}/corners.csv",
                evaluator::corners::out_dir(&c.artifacts).display()
            );
            Ok(())
        }
    }
}

fn report(s: &evaluator::Summary) {
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
}
