//! The page's section "Beyond the report": white-box attacks and a
//! confidence-rejection baseline, from the sets that have `make robust`'s outputs.
//! Writes its tables and figures and returns the blocks that show them; when no set
//! has any of the outputs the section is one line saying how to produce them.

use std::path::Path;

use anyhow::Result;
use nullclass::dataset::DataSet;

use crate::canvas::draw_png;
use crate::data_set::Words;
use crate::page::Block;
use crate::provenance::set_list;
use crate::robust::{MARGIN_FILE, REJECTION_FILE, ROBUST_FILE};
use crate::robust_charts::{self, FIG20_SIZE, FIG21_SIZE};
use crate::robust_tables::{self, CURVES_FILE};
use crate::robustness::{self, Robustness};
use crate::sets::Set;
use crate::strength;
use crate::tables::{write_text, Table};

pub const HEADING: &str =
    "Beyond the report: white-box attacks and a confidence-rejection baseline";

/// The page's one line when no set has any robustness output.
pub const NOT_RUN: &str = "The robustness attacks (PGD and FGSM made on each model itself, transfer attacks from the baseline, and a confidence-rejection baseline) were not run for any set: run `make robust` to add them.";

pub const FIG20_FILE: &str = "figures/fig20_adaptive_pgd.png";
pub const FIG21_FILE: &str = "figures/fig21_transfer_vs_adaptive.png";

pub struct Section {
    pub blocks: Vec<Block>,
    /// The tables written, for the page's file list.
    pub tables: Vec<Table>,
    /// Other files written (CSV only), with what they hold.
    pub links: Vec<(String, String)>,
    pub figures: usize,
    /// A line for the page's at-a-glance box, when there is a verdict.
    pub glance: Option<String>,
    /// For the log: each robustness file left out, with its set and why.
    pub problems: Vec<String>,
}

pub fn build(out: &Path, sets: &[Set], ds: DataSet) -> Result<Section> {
    let (class, items) = (ds.class(), ds.items());
    let r = Robustness::of(sets);
    let mut section = Section {
        blocks: Vec::new(),
        tables: Vec::new(),
        links: Vec::new(),
        figures: 0,
        glance: None,
        problems: r
            .problems
            .iter()
            .map(|(set, why)| format!("{set}: {why}"))
            .collect(),
    };
    if !r.any() {
        section.blocks.push(Block::Text(NOT_RUN.into()));
        return Ok(section);
    }
    let blocks = &mut section.blocks;
    blocks.push(Block::Heading(HEADING.into()));
    blocks.push(Block::Text(format!(
        "The report attacks the null models with FGSM images made on the baseline (a transfer attack). Here the same models face fgsm-transfer and pgd-transfer (made on the baseline) and pgd-adaptive and fgsm-adaptive (made on each model itself: white-box). Each rejection baseline reject-X (X a null model) is the baseline with a confidence threshold tau chosen so that it rejects as many clean test {items} as X sends to null; its rejections count as unclassified. Misclassified means a {class} other than the label: the attacker's success."
    )));
    let with: Vec<String> = sets
        .iter()
        .filter(|s| !r.without.contains(&s.name))
        .map(|s| s.name.clone())
        .collect();
    let mut coverage = format!(
        "Robustness outputs found for {} of {} set(s): {}.",
        with.len(),
        sets.len(),
        set_list(&with)
    );
    if !r.without.is_empty() {
        coverage += &format!(
            " Sets without them ({}) are in the main report only (run `make robust` for them).",
            set_list(&r.without)
        );
    }
    blocks.push(Block::Text(coverage));
    if !r.problems.is_empty() {
        blocks.push(Block::Warning(
            r.problems
                .iter()
                .map(|(set, why)| {
                    format!("Set {set}: a robustness file was left out of this section (the set stays in the main report): {why}")
                })
                .collect(),
        ));
    }

    let tables_dir = out.join("tables");
    if r.attack_sets.is_empty() {
        blocks.push(Block::Text(format!(
            "No set has a usable {ROBUST_FILE} with its {REJECTION_FILE}: no robustness table, Figures 20 and 21 or white-box verdict."
        )));
    } else {
        let (good, headline, mut lines) = robustness::verdict(&r);
        // Weakened attacks or short-trained models give no verdict (see `strength`).
        let weak = [strength::training(sets), strength::robust(sets)].concat();
        let headline = strength::headline(headline, &weak);
        let good = good && weak.is_empty();
        if !weak.is_empty() {
            lines.insert(
                0,
                format!(
                    "Weaker than the defaults: {}. Rerun with them (make robust) for a verdict.",
                    weak.join("; ")
                ),
            );
        }
        section.glance = Some(format!(
            "White-box check (section \"Beyond the report\"): {headline}"
        ));
        blocks.push(Block::Verdict {
            good,
            headline,
            lines,
        });
        let table = robust_tables::robustness(&r);
        table.write(&tables_dir)?;
        blocks.push(table.block(&format!(
            "Misclassified = a {class} other than the label; null and rejected images are not misclassified. The clean null rate is what the defense costs on clean {items}; for reject-X it is the clean rejection rate, matched to X's clean null rate. Compare each null model with the baseline and with its reject-X under worst-case (per image, the worst outcome over every attack: misclassified if any attack's image is, else null if any is): only a gap that survives there is robustness. apgd is Auto-PGD (Croce & Hein 2020) with cross-entropy, merged cross-entropy (the label's logit replaced by max(label, null)), summed cross-entropy (the label's probability replaced by label + null), the null-aware margin and DLR, at each strongest wrong {class} the targeted cross-entropy and APGD-T's targeted DLR, and last the margin again from each image's best point so far; square is the black-box Square attack (Andriushchenko et al. 2020) on the null-aware margin, the check on gradient masking. n/a: no set has that epsilon; \"(k sets)\": a mean over fewer sets than the row's."
        )));
        section.tables.push(table);
        write_text(&out.join(CURVES_FILE), &robust_tables::curves(&r).to_csv())?;
        section.links.push((
            CURVES_FILE.into(),
            "every attack, model and epsilon of the robustness outputs: outcomes over sets, and Figure 20's 25 %, median and 75 %".into(),
        ));

        if let Some(table) = robust_tables::robust_error(&r) {
            table.write(&tables_dir)?;
            blocks.push(table.block(&format!(
                "Robust error with rejection (Sheikholeslami et al. 2021; Tramer 2022), a different definition from the misclassification above: a source counts as an error if the model misclassifies or rejects it clean, or if the worst case over every attack at that radius is accepted as a wrong {class}. Rejection is the null class for the null models (rule \"null\"), a top probability below tau for the rejection baselines (\"p<tau\"; reject-99 keeps 99 % of the correctly classified clean test images, the common operating point), nothing for the baseline (\"none\"). The sources are test images the baseline classifies correctly, so the baseline's clean error on them is 0 by selection; ε 0 is the clean error alone."
            )));
            section.tables.push(table);
        }
        let attack = r.verdict_attack();
        if r.eps(attack).is_empty() {
            blocks.push(Block::Text(format!(
                "Figure 20 was not drawn: no set has {attack} rows."
            )));
        } else {
            draw_png(&out.join(FIG20_FILE), FIG20_SIZE, |a| {
                robust_charts::fig20(a, &r)
            })?;
            section.figures += 1;
            blocks.push(Block::Figure {
                file: FIG20_FILE.into(),
                title: format!("Figure 20: misclassification against epsilon under {attack}"),
                caption: "A null model whose misclassification under attacks made on itself approaches the baseline's gives no robustness: its advantage under transfer attacks came from the attack not knowing it. On the right, a rejection baseline whose dashed curve sits as low as its null model's means the null class buys no more than rejecting unconfident inputs.".into(),
            });
        }
        match r.bar_eps() {
            Some(eps) => {
                draw_png(&out.join(FIG21_FILE), FIG21_SIZE, |a| {
                    robust_charts::fig21(a, &r, eps)
                })?;
                section.figures += 1;
                blocks.push(Block::Figure {
                    file: FIG21_FILE.into(),
                    title: format!("Figure 21: transfer vs adaptive attacks at epsilon {eps}"),
                    caption: "Blue bars are attacks made on the baseline, red is PGD made on the model itself: a red bar far above the blue ones means the model's low misclassification under transfer came from the attack, not from the model. Each null model stands beside its rejection baseline.".into(),
                });
            }
            None => blocks.push(Block::Text(
                "Figure 21 was not drawn: no set has fgsm-transfer, pgd-transfer or pgd-adaptive rows.".into(),
            )),
        }
    }

    if let Some(line) = gradient_check(sets) {
        section.blocks.push(Block::Text(line));
    }
    if r.margin_sets.is_empty() {
        section.blocks.push(Block::Text(format!(
            "No set has a usable {MARGIN_FILE}: no FGSM-margin table."
        )));
    } else {
        let table = robust_tables::fgsm_margin(&r);
        table.write(&tables_dir)?;
        section.blocks.push(table.block(
            "FGSM with a margin loss, searched for the smallest flipping epsilon on each model itself (the report's Figure 9 search, made white-box). A null model whose found and below-0.4 shares approach the baseline's is as easy to fool with one signed-gradient step once the attack knows it. The median is over the images found (\"(k sets)\": some sets found none).",
        ));
        section.tables.push(table);
    }
    Ok(section)
}

/// One line for the gradient-masking check: images whose input gradient was exactly
/// zero at some step, summed over sets and radii per attack, with the models that had
/// any. A saturated softmax gives such zeros, and then a gradient attack that fails
/// proves nothing about robustness.
fn gradient_check(sets: &[Set]) -> Option<String> {
    let rows: Vec<_> = sets
        .iter()
        .filter_map(|s| s.robust.gradients.as_ref())
        .flatten()
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut attacks: Vec<&str> = Vec::new();
    for r in &rows {
        if !attacks.contains(&r.attack.as_str()) {
            attacks.push(&r.attack);
        }
    }
    let parts: Vec<String> = attacks
        .iter()
        .map(|a| {
            let of: Vec<_> = rows.iter().filter(|r| r.attack == *a).collect();
            let zero: u64 = of.iter().map(|r| r.zero_gradient).sum();
            let total: u64 = of.iter().map(|r| r.n).sum();
            let mut models: Vec<&str> = of
                .iter()
                .filter(|r| r.zero_gradient > 0)
                .map(|r| r.model.as_str())
                .collect();
            models.dedup();
            if models.is_empty() {
                format!("{a}: 0 of {total}")
            } else {
                format!("{a}: {zero} of {total} (models {})", models.join(", "))
            }
        })
        .collect();
    Some(format!(
        "Gradient-masking check: attacked images whose input gradient was exactly zero at some step (a saturated softmax hides the direction from a gradient attack, so an attack that fails there proves nothing), summed over radii and sets: {}.",
        parts.join("; ")
    ))
}
