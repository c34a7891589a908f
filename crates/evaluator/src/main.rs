//! evaluator: scores a set's 8 models on clean and adversarial images.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let config = evaluator::Config::parse();
    let s = evaluator::run(&config)?;
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
