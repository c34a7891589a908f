//! The default budgets of `adversary-gen robust`, in one place: the tool's flags take
//! them as defaults, and the report calls a run weakened when it used less.
//!
//! Chosen with the budget ladder of `scripts/robust-budget.sh` (BENCHMARKS.md,
//! sessions 7 and 9 to 12): on 20 demo sources, with today's ensemble (the margin
//! from each image's best point last), PGD 200 steps, APGD 400 x 4 and Square 10,000
//! queries break the same images as the budgets below on all 24 model-radius rows;
//! with 2 APGD restarts instead of 3 they broke one more on usm 0.3 (an image only
//! another random start finds), and AutoAttack's 100 x 1 one fewer on base 0.1.
//! PGD keeps the report's 100 steps: it is the attack the study had before APGD and
//! Square, kept as it was so that its row still says what it said; the worst case
//! does not rest on it.

/// Images per set (the paper's FGSM study has as many).
pub const IMAGES: i64 = 1000;
/// PGD steps per run.
pub const PGD_STEPS: usize = 100;
/// PGD random starts per loss.
pub const PGD_RESTARTS: usize = 1;
/// APGD iterations per run (AutoAttack's `n_iter`; its standard version runs 100,
/// which left images unbroken here).
pub const APGD_N_ITER: usize = 200;
/// APGD random starts per loss (`n_restarts`; AutoAttack's standard 1).
pub const APGD_N_RESTARTS: usize = 3;
/// Output-diversified steps at each APGD start (ODI's N_ODI; 0 = AutoAttack's plain
/// uniform start).
pub const APGD_ODI_STEPS: usize = 0;
/// The untargeted losses of the APGD ensemble, by their names in meta.json's
/// `losses_apgd`: a run whose ensemble lacks one (an older adversary-gen's) is weaker
/// than today's, whatever its budgets.
// One line, for the Makefile's robust stamp (it reads these constants with sed).
#[rustfmt::skip]
pub const APGD_LOSSES: [&str; 6] = ["ce", "merged-ce", "summed-ce", "margin", "dlr", "margin-best"];
/// The targeted losses of the APGD ensemble, by the prefix of their names in
/// `losses_apgd` (`ce-target1` ...): a run with targets but without one of them is
/// weaker than today's.
pub const APGD_TARGETED_LOSSES: [&str; 2] = ["ce-target", "dlr-target"];
/// APGD-T's targeted runs (`n_target_classes`): every wrong digit.
pub const APGD_N_TARGET_CLASSES: usize = 9;
/// Square attack queries per image (`n_queries`; AutoAttack's standard 5000).
pub const SQUARE_N_QUERIES: usize = 5000;
