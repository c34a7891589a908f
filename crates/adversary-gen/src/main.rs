//! adversary-gen: FGSM adversarial sets from a set's baseline model.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let config = adversary_gen::Config::parse();
    let s = adversary_gen::run(&config)?;
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
