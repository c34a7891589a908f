//! adversary-gen: adversarial sets from a set's models.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "adversary-gen", version)]
/// Adversarial images for one set of models (artifacts/seed-NN).
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The report's attack: FGSM at each image's epsilon threshold against the
    /// baseline (writes SET/adversarial/fgsm/).
    Fgsm(adversary_gen::Config),
    /// Beyond the report: PGD transferred from the baseline, adaptive PGD and
    /// margin-loss FGSM on every model (writes SET/adversarial/robust/).
    Robust(adversary_gen::robust::Config),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Fgsm(config) => fgsm(&config),
        Command::Robust(config) => {
            let dir = adversary_gen::robust::run(&config)?;
            eprintln!("adversary-gen: wrote {}", dir.display());
            Ok(())
        }
    }
}

fn fgsm(config: &adversary_gen::Config) -> anyhow::Result<()> {
    let s = adversary_gen::run(config)?;
    let c = s.counts;
    eprintln!(
        "adversary-gen: wrote {} ({} acquired from {} test images: {} misclassified skipped, {} never flipped); \
         threshold median {:.3}, {:.1}% below 0.4; {:.1} s",
        s.out_dir.display(),
        c.acquired,
        c.walked,
        c.skipped_wrong,
        c.discarded_no_flip,
        s.threshold.median,
        100.0 * s.threshold.share_below_0_4,
        s.wall_seconds
    );
    Ok(())
}
