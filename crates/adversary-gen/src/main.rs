//! adversary-gen: adversarial sets from a set's models.

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "adversary-gen", version)]
/// Adversarial images for sets of models (artifacts/seed-NN).
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A stage's flags for one set, and how many consecutive sets to run in this process.
#[derive(Args)]
struct Sets<C: Args> {
    #[command(flatten)]
    config: C,
    /// Run sets --seed, --seed + 1, ..., --seed + N - 1 in this one process (the
    /// device and the data are set up once); each set's files are the same as
    /// from its own run.
    #[arg(long, default_value_t = 1, value_parser = nullclass::flag_ranges::int::<u64>(1..=1000))]
    sets: u64,
}

#[derive(Subcommand)]
enum Command {
    /// The report's attack: FGSM at each image's epsilon threshold against the
    /// baseline (writes SET/adversarial/fgsm/).
    Fgsm(Sets<adversary_gen::Config>),
    /// Beyond the report: PGD transferred from the baseline, adaptive PGD and
    /// margin-loss FGSM on every model (writes SET/adversarial/robust/).
    Robust(Sets<adversary_gen::robust::Config>),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Fgsm(s) => adversary_gen::run_sets(&s.config, s.sets, report),
        Command::Robust(s) => adversary_gen::robust_sets(&s.config, s.sets, |dir| {
            eprintln!("adversary-gen: wrote {}", dir.display())
        }),
    }
}

fn report(s: &adversary_gen::Summary) {
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
}
