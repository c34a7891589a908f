//! `report study --compare-with B`: the two data sets' studies side by side on one
//! page, report/comparison.html (and .md): clean accuracy and null rate, the
//! threshold scores (Figure 10), the sweep's misclassification, the pixel geometry,
//! and white-box misclassification at the radii that fit each data set. MNIST's
//! columns always come first and alone carry the published numbers. A study without
//! a stage gets a sentence saying so in that section, never a failed run.

use std::path::Path;

use anyhow::{Context, Result};
use nullclass::dataset::DataSet;
use nullclass::nulls::Variant;

use crate::aggregate::Aggregate;
use crate::canvas::{draw_png, Area};
use crate::charts;
use crate::corners::{self, Group};
use crate::data_set::{self, Words};
use crate::page::{Block, Page};
use crate::provenance::set_list;
use crate::published;
use crate::robust::same_eps;
use crate::robustness::Robustness;
use crate::sets::{self, Set, Skipped, OUTCOMES};
use crate::stats::{std_text, MeanStd};
use crate::strength;
use crate::tables::{num, write_text, Grid, Table};

/// The page, relative to the report folder.
pub const FILE: &str = "comparison.html";
const MARKDOWN: &str = "comparison.md";
const FIG_THRESHOLD: &str = "figures/compare_threshold_scores.png";
const FIG_SWEEP: &str = "figures/compare_sweep_misclassified.png";
const SWEEP_CSV: &str = "tables/comparison_sweep.csv";
const PANEL: (u32, u32) = (1300, 600);
/// Wide enough for the eight models' legend above each chart.
const SWEEP_PANEL_WIDTH: u32 = 950;

/// One data set's study as the comparison sees it.
pub struct Study<'a> {
    pub root: &'a Path,
    pub dataset: DataSet,
    pub sets: &'a [Set],
    pub skipped: &'a [Skipped],
}

impl<'a> Study<'a> {
    pub fn of_sets(
        root: &'a Path,
        dataset: DataSet,
        sets: &'a [Set],
        skipped: &'a [Skipped],
    ) -> Self {
        Self {
            root,
            dataset,
            sets,
            skipped,
        }
    }
}

/// A study with what the page shows of it.
struct Side<'a> {
    study: &'a Study<'a>,
    /// `None` when the study has no complete set.
    agg: Option<Aggregate>,
    corners: Result<Option<Vec<Group>>>,
}

impl Side<'_> {
    fn title(&self) -> &'static str {
        self.study.dataset.title()
    }

    /// Why the study has no numbers, for a section's sentence.
    fn no_sets(&self) -> String {
        let why: Vec<String> = self
            .study
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.name, s.reason))
            .collect();
        format!(
            "{}: no complete set under {}{}",
            self.title(),
            self.study.root.display(),
            if why.is_empty() {
                " (no seed-NN folder: the study has not run)".to_string()
            } else {
                format!(" ({})", why.join("; "))
            }
        )
    }
}

/// Writes the comparison of `this` study with the one under `other` (of data set
/// `other_ds`, checked by the caller) into `out`; returns the page's file name.
pub fn write(out: &Path, this: &Study, other: &Path, other_ds: DataSet) -> Result<String> {
    let found = sets::find(other).with_context(|| format!("--compare-with {}", other.display()))?;
    let (other_sets, other_skipped) = crate::study::same_sweep(found.sets, found.skipped);
    // The other study's sets must be of the data set its prepared data is.
    data_set::of_study(other, &other_sets)?;
    let that = Study::of_sets(other, other_ds, &other_sets, &other_skipped);
    let mut studies = [this, &that];
    studies.sort_by_key(|s| DataSet::ALL.iter().position(|d| *d == s.dataset));
    let sides: Vec<Side> = studies
        .iter()
        .map(|s| Side {
            study: s,
            agg: (!s.sets.is_empty()).then(|| Aggregate::of(s.sets)),
            corners: corners::read(s.root),
        })
        .collect();
    let page = page(out, &sides)?;
    write_text(&out.join(MARKDOWN), &page.markdown())?;
    // index.html links back to this page and is written after it, by the caller.
    for file in page.files().into_iter().filter(|f| f != "index.html") {
        anyhow::ensure!(
            out.join(&file).is_file(),
            "the comparison page links to {file}, which was not written"
        );
    }
    write_text(&out.join(FILE), &page.html())?;
    Ok(FILE.to_string())
}

fn page(out: &Path, sides: &[Side]) -> Result<Page> {
    let names: Vec<&str> = sides.iter().map(Side::title).collect();
    let mut blocks = vec![Block::Text(format!(
        "The null-class study on {}, side by side. Each column is over all complete sets of its study's root, every mean and std over sets (population std, ddof 0; n/a for one set). The report's published numbers are of MNIST: they appear beside MNIST's columns only.",
        names.join(" and ")
    ))];
    // Each side's settings, and a warning where one is weaker than the paper's: the
    // columns then show what those settings give, not what the method does.
    let weak: Vec<(String, Vec<String>)> = sides
        .iter()
        .filter(|s| !s.study.sets.is_empty())
        .map(|s| (s.title().to_string(), strength::study(s.study.sets)))
        .collect();
    let settings = weak.iter().map(|(title, w)| {
        let value = if w.is_empty() {
            "the paper's training and FGSM study; the robust stage, where it ran, at adversary-gen's defaults".to_string()
        } else {
            format!("weaker than the paper's: {}", w.join("; "))
        };
        (format!("{title} settings"), value)
    });
    blocks.push(Block::KeyValues(
        sides
            .iter()
            .map(|s| {
                let used: Vec<String> = s.study.sets.iter().map(|x| x.name.clone()).collect();
                let skipped = if s.study.skipped.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; skipped: {}",
                        s.study
                            .skipped
                            .iter()
                            .map(|x| format!("{} ({})", x.name, x.reason))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                };
                (
                    format!("{} sets used", s.title()),
                    format!(
                        "{} set(s){}{} from {}{skipped}",
                        used.len(),
                        if used.is_empty() { "" } else { ": " },
                        set_list(&used),
                        s.study.root.display()
                    ),
                )
            })
            .chain(settings)
            .collect(),
    ));
    let weak_sides: Vec<&str> = weak
        .iter()
        .filter(|(_, w)| !w.is_empty())
        .map(|(t, _)| t.as_str())
        .collect();
    if !weak_sides.is_empty() {
        blocks.push(Block::Warning(vec![format!(
            "Weakened settings on {}: the columns of {} show what its settings give, not what the null-class defense does; no conclusion on whether it carries over follows from them.",
            weak_sides.join(" and "),
            if weak_sides.len() > 1 { "each study" } else { "that study" }
        )]));
    }
    let missing: Vec<Block> = sides
        .iter()
        .filter(|s| s.agg.is_none())
        .map(|s| Block::Warning(vec![s.no_sets()]))
        .collect();
    blocks.extend(missing.iter().cloned());

    let tables_dir = out.join("tables");
    let scored: Vec<(&Side, &Aggregate)> = sides
        .iter()
        .filter_map(|s| s.agg.as_ref().map(|a| (s, a)))
        .collect();

    blocks.push(Block::Heading("Clean test set".into()));
    let t = clean_table(sides);
    t.write(&tables_dir)?;
    blocks.push(t.block("Clean test accuracy and the share of clean test images the model sends to null, mean ± std over sets. The published baseline is the report's mean; of the null models it says only \"about 99 %\"."));

    blocks.push(Block::Heading(
        "Scores at the epsilon threshold (Figure 10)".into(),
    ));
    let t = threshold_table(sides);
    t.write(&tables_dir)?;
    blocks.push(t.block("Percent of each study's own FGSM threshold images (the smallest step that flips its baseline), mean ± std over sets: correct / misclassified / null. The defense carries over where the mixed-null models' misclassified share stays low on both data sets."));
    let height = PANEL.1 * scored.len() as u32;
    draw_png(&out.join(FIG_THRESHOLD), (PANEL.0, height), |a| {
        for ((side, agg), area) in scored.iter().zip(a.split_evenly((scored.len(), 1))) {
            let title = format!(
                "{}: scores at the epsilon threshold, mean ± std over {} set(s)",
                side.title(),
                agg.set_names.len()
            );
            charts::threshold_bars(&area, &title, agg, side.study.dataset)?;
        }
        Ok(())
    })?;
    blocks.push(Block::Figure {
        file: FIG_THRESHOLD.into(),
        title: format!("Threshold scores, {}", names.join(" and ")),
        caption: "One panel per data set; crosses mark the published means, on MNIST only.".into(),
    });

    blocks.push(Block::Heading("Across a range of epsilon".into()));
    draw_png(
        &out.join(FIG_SWEEP),
        (SWEEP_PANEL_WIDTH * scored.len() as u32, PANEL.1),
        |a| sweep_panels(a, &scored),
    )?;
    write_text(&out.join(SWEEP_CSV), &sweep_csv(&scored).to_csv())?;
    blocks.push(Block::Figure {
        file: FIG_SWEEP.into(),
        title: "Misclassified perturbed images against epsilon, every model".into(),
        caption: "Median over sets of each model's misclassified share of its study's FGSM images scaled to each epsilon of the sweep, one chart per data set.".into(),
    });
    blocks.push(Block::Links(vec![(
        SWEEP_CSV.into(),
        "the curves: per data set, model and epsilon, the 25 %, median and 75 % over sets of the misclassified share".into(),
    )]));

    blocks.push(Block::Heading(
        "Pixel geometry: near-binary pixels and hypercube corners".into(),
    ));
    let mut notes: Vec<String> = Vec::new();
    for s in sides {
        match &s.corners {
            Ok(Some(_)) => {}
            Ok(None) => notes.push(format!(
                "{}: no {} (run `evaluator corners --artifacts {}`).",
                s.title(),
                corners::FILE,
                s.study.root.display()
            )),
            Err(e) => notes.push(format!("{}: left out: {e:#}.", s.title())),
        }
    }
    if sides.iter().any(|s| matches!(s.corners, Ok(Some(_)))) {
        let t = corners_table(sides);
        t.write(&tables_dir)?;
        blocks.push(t.block(&format!(
            "Whether the report's explanation (\"nearly binary\" images near the hypercube's corners) holds for each data set. {}",
            corners::DEFINITIONS
        )));
    }
    if !notes.is_empty() {
        blocks.push(Block::Text(notes.join(" ")));
    }

    blocks.push(Block::Heading(
        "White-box attacks at the radii that fit each data set".into(),
    ));
    match robust_table(sides) {
        (Some(t), notes) => {
            t.write(&tables_dir)?;
            blocks.push(t.block("Misclassified percent (a class other than the label), mean ± std over the sets with `make robust`'s outputs, under the pointwise worst case over every attack where all those sets have it, else adaptive PGD (named in each column). MNIST at epsilon 0.1, 0.2 and 0.3; Fashion-MNIST at 0.1 and 0.2 only (0.3 is too large for it: it can turn one class into another outright). The report publishes no white-box numbers."));
            if !notes.is_empty() {
                blocks.push(Block::Text(notes.join(" ")));
            }
        }
        (None, notes) => blocks.push(Block::Text(notes.join(" "))),
    }

    blocks.push(Block::Heading("Files".into()));
    blocks.push(Block::Links(vec![
        ("index.html".into(), "this study's own report".into()),
        (MARKDOWN.into(), "this page as Markdown".into()),
    ]));
    Ok(Page {
        title: format!("Null-class defense: {} side by side", names.join(" and ")),
        blocks,
    })
}

fn sweep_panels(a: &Area, scored: &[(&Side, &Aggregate)]) -> Result<()> {
    for ((side, agg), area) in scored.iter().zip(a.split_evenly((1, scored.len()))) {
        let title = format!(
            "{}: median over {} set(s)",
            side.title(),
            agg.set_names.len()
        );
        charts::misclassified_curves(&area, &title, agg)?;
    }
    Ok(())
}

fn sweep_csv(scored: &[(&Side, &Aggregate)]) -> Grid {
    let mut csv = Grid::new(&["dataset", "model", "eps", "p25", "median", "p75"]);
    for (side, agg) in scored {
        for (m, name) in Variant::ALL.iter().enumerate() {
            for (eps, b) in agg.sweep_eps.iter().zip(&agg.sweep[m][1]) {
                csv.rows.push(vec![
                    side.study.dataset.name().to_string(),
                    name.to_string(),
                    format!("{eps:.4}"),
                    num(b.0),
                    num(b.1),
                    num(b.2),
                ]);
            }
        }
    }
    csv
}

/// Mean ± std as (CSV cells, display text); n/a without numbers.
fn cells(m: Option<&MeanStd>, decimals: usize) -> ([String; 2], String) {
    match m {
        Some(m) if m.n > 0 => ([num(m.mean), std_text(m.std, 4)], m.text(decimals)),
        _ => (["n/a".into(), "n/a".into()], "n/a".into()),
    }
}

fn clean_table(sides: &[Side]) -> Table {
    let mut csv = Grid::new(&["model"]);
    let mut display = Grid::new(&["model"]);
    for s in sides {
        let d = s.study.dataset;
        for q in ["accuracy", "null_rate"] {
            csv.header.extend([
                format!("{}_{q}_mean", d.name()),
                format!("{}_{q}_std", d.name()),
            ]);
        }
        display.header.extend([
            format!("{} accuracy (%)", d.title()),
            format!("{} null rate (%)", d.title()),
        ]);
        if d.published() {
            csv.header.push("mnist_published_accuracy".into());
            display.header.push("MNIST published accuracy (%)".into());
        }
    }
    for (m, name) in Variant::ALL.iter().enumerate() {
        let mut csv_row = vec![name.to_string()];
        let mut row = vec![name.to_string()];
        for s in sides {
            for q in 0..2 {
                let (c, d) = cells(s.agg.as_ref().map(|a| &a.clean[m][q]), 2);
                csv_row.extend(c);
                row.push(d);
            }
            if s.study.dataset.published() {
                let p = if m == 0 {
                    format!("{:.2}", published::BASE_CLEAN_ACCURACY)
                } else {
                    published::NULL_CLEAN_ACCURACY_TEXT.to_string()
                };
                csv_row.push(p.clone());
                row.push(p);
            }
        }
        csv.rows.push(csv_row);
        display.rows.push(row);
    }
    Table {
        stem: "comparison_clean",
        title: "Clean test accuracy and null rate per model".into(),
        csv,
        display,
    }
}

fn threshold_table(sides: &[Side]) -> Table {
    let mut csv = Grid::new(&["model"]);
    let mut display = Grid::new(&["model"]);
    for s in sides {
        let d = s.study.dataset;
        for o in OUTCOMES {
            csv.header.extend([
                format!("{}_{o}_mean", d.name()),
                format!("{}_{o}_std", d.name()),
            ]);
            display.header.push(format!("{} {o} (%)", d.title()));
        }
        if d.published() {
            for o in OUTCOMES {
                csv.header.push(format!("mnist_published_{o}_mean"));
            }
            display
                .header
                .push("MNIST published, correct / misclassified / unclassified (%)".into());
        }
    }
    for (m, name) in Variant::ALL.iter().enumerate() {
        let mut csv_row = vec![name.to_string()];
        let mut row = vec![name.to_string()];
        for s in sides {
            for o in 0..3 {
                let (c, d) = cells(s.agg.as_ref().map(|a| &a.threshold[m][o]), 1);
                csv_row.extend(c);
                row.push(d);
            }
            if s.study.dataset.published() {
                let p: Vec<f64> = (0..3)
                    .map(|o| published::threshold(name, o).map_or(f64::NAN, |p| p.0))
                    .collect();
                csv_row.extend(p.iter().map(|v| format!("{v:.1}")));
                row.push(format!("{:.1} / {:.1} / {:.1}", p[0], p[1], p[2]));
            }
        }
        csv.rows.push(csv_row);
        display.rows.push(row);
    }
    Table {
        stem: "comparison_threshold",
        title: "Scores at the epsilon threshold per model".into(),
        csv,
        display,
    }
}

fn corners_table(sides: &[Side]) -> Table {
    let mut groups: Vec<String> = Vec::new();
    for s in sides {
        if let Ok(Some(gs)) = &s.corners {
            for g in gs {
                if !groups.contains(&g.group) {
                    groups.push(g.group.clone());
                }
            }
        }
    }
    let mut csv = Grid::new(&["group"]);
    let mut display = Grid::new(&["images"]);
    for s in sides {
        let d = s.study.dataset;
        csv.header.extend(
            [
                "images",
                "near_binary_pct",
                "mean_l2_to_corner",
                "std_l2_to_corner",
            ]
            .map(|h| format!("{}_{h}", d.name())),
        );
        display.header.extend([
            format!("{} pixels near 0 or 1 (%)", d.title()),
            format!("{} L2 to nearest corner", d.title()),
        ]);
    }
    for group in &groups {
        let mut csv_row = vec![group.clone()];
        let mut row = vec![group.clone()];
        for s in sides {
            let found = match &s.corners {
                Ok(Some(gs)) => gs.iter().find(|g| g.group == *group),
                _ => None,
            };
            match found {
                Some(g) => {
                    csv_row.extend([
                        g.images.to_string(),
                        num(100.0 * g.near_binary_share),
                        num(g.mean_l2_to_corner),
                        num(g.std_l2_to_corner),
                    ]);
                    row.extend([corners::share_text(g), corners::distance_text(g)]);
                }
                None => {
                    csv_row.extend(std::iter::repeat_n("n/a".to_string(), 4));
                    row.extend(["n/a".to_string(), "n/a".to_string()]);
                }
            }
        }
        csv.rows.push(csv_row);
        display.rows.push(row);
    }
    Table {
        stem: "comparison_corners",
        title: "Pixel geometry per group of images".into(),
        csv,
        display,
    }
}

/// The white-box table over the sides whose robust stage ran, with a sentence for
/// each side that has none; `None` when no side has one.
fn robust_table(sides: &[Side]) -> (Option<Table>, Vec<String>) {
    let mut notes = Vec::new();
    let ran: Vec<(&Side, Robustness)> = sides
        .iter()
        .filter_map(|s| {
            let r = Robustness::of(s.study.sets);
            if r.attack_sets.is_empty() {
                notes.push(format!(
                    "{}: the robust stage has not run (no set under {} has eval/robust.csv with its rejection.csv; run make robust there).",
                    s.title(),
                    s.study.root.display()
                ));
                None
            } else {
                Some((s, r))
            }
        })
        .collect();
    if ran.is_empty() {
        return (None, notes);
    }
    let mut csv = Grid::new(&["model"]);
    let mut display = Grid::new(&["model"]);
    for (s, r) in &ran {
        let d = s.study.dataset;
        let attack = r.verdict_attack();
        for eps in d.attack_radii() {
            csv.header.extend([
                format!("{}_{attack}_eps{eps}_mean", d.name()),
                format!("{}_{attack}_eps{eps}_std", d.name()),
            ]);
            display
                .header
                .push(format!("{} {attack} ε {eps} (%)", d.title()));
        }
        notes.push(format!(
            "{}: {} of {} set(s) with robustness outputs.",
            s.title(),
            r.attack_sets.len(),
            s.study.sets.len()
        ));
        for eps in d.attack_radii() {
            if !r.eps(attack).iter().any(|e| same_eps(*e, *eps)) {
                notes.push(format!(
                    "{}: no set has {attack} at epsilon {eps} (n/a).",
                    s.title()
                ));
            }
        }
    }
    for name in Variant::ALL {
        let mut csv_row = vec![name.to_string()];
        let mut row = vec![name.to_string()];
        for (s, r) in &ran {
            let attack = r.verdict_attack();
            for eps in s.study.dataset.attack_radii() {
                let m = r.misclassified(attack, name, *eps);
                let (c, d) = cells(Some(&m), 1);
                csv_row.extend(c);
                row.push(d);
            }
        }
        csv.rows.push(csv_row);
        display.rows.push(row);
    }
    let table = Table {
        stem: "comparison_robust",
        title: "Misclassified under white-box attack, per model and radius".into(),
        csv,
        display,
    };
    (Some(table), notes)
}
