//! `report study`: every table, figure and the page of one data set's study,
//! aggregated over the sets found under the artifacts root, and, with
//! `--compare-with`, the page that sets it beside the other data set's study.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use nullclass::dataset::DataSet;
use nullclass::nulls::Variant;

use crate::aggregate::Aggregate;
use crate::canvas::draw_png;
use crate::data_set::{self, Known, Words};
use crate::page::{Block, Page};
use crate::robust_section::{self, Section};
use crate::sets::{self, Set, Skipped, OUTCOMES};
use crate::tables::{self, write_text, Table};
use crate::{charts, comparison, corners, mosaics, provenance, published, strength};

#[derive(Args, Debug, Clone)]
pub struct Config {
    /// Artifacts root: reads seed-*/ (and nulls/, `trainer nulls`' output, for Figure 5),
    /// writes report/ (index.html, report.md, tables/, figures/).
    #[arg(long, default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// The other data set's study root (MNIST's beside Fashion-MNIST's, or the
    /// reverse): writes report/comparison.html with the two side by side, linked from
    /// index.html. It must hold the other data set's prepared data.
    #[arg(long)]
    pub compare_with: Option<PathBuf>,
}

/// Null models whose mean misclassification at the threshold decides the verdict:
/// those trained with mixed nulls, the defense the report's discussion credits.
const VERDICT_MODELS: [&str; 4] = ["m", "um", "sm", "usm"];
/// Their mean misclassified share must stay below this (published: 1.2 to 3.0 %).
const VERDICT_LIMIT: f64 = 10.0;

/// The paper's figure number and long description of each null model's example
/// figure (Figures 11-17 follow the paper's order, not `Variant::ALL`).
const EXAMPLE_FIGURES: [(u32, &str, &str); 7] = [
    (11, "u", "uniform-noise nulls"),
    (12, "s", "shuffled nulls"),
    (13, "us", "uniform and shuffled nulls"),
    (14, "m", "mixed nulls"),
    (15, "um", "uniform and mixed nulls"),
    (16, "sm", "shuffled and mixed nulls"),
    (17, "usm", "uniform, shuffled and mixed nulls"),
];

pub fn run(config: &Config) -> Result<()> {
    crate::fonts::register()?;
    let root = &config.artifacts;
    let found = sets::find(root)?;
    let (sets, skipped) = same_sweep(found.sets, found.skipped);
    for s in &skipped {
        eprintln!("report: skipping {}: {}", s.name, s.reason);
    }
    if sets.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .map(|s| format!("{}: {}", s.name, s.reason))
            .collect();
        if why.is_empty() {
            bail!(
                "no seed-NN folder under {}: run the study first",
                root.display()
            );
        }
        bail!(
            "no complete set under {}:\n  {}",
            root.display(),
            why.join("\n  ")
        );
    }
    let known = data_set::of_study(root, &sets)?;
    let ds = known.dataset;
    // Checked before anything is written: a wrong root is the user's slip, not a
    // reason to leave a half-made report.
    let other = match &config.compare_with {
        Some(b) => Some((b.clone(), data_set::of_other(b, ds)?)),
        None => None,
    };
    let agg = Aggregate::of(&sets);
    let out = root.join("report");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;

    let tables = [
        tables::clean(&agg, ds.published()),
        tables::threshold(&agg, ds.published()),
        tables::eps_threshold(&agg, ds.published()),
        tables::per_class(&sets, ds),
    ];
    for t in &tables {
        t.write(&out.join("tables"))?;
    }
    let geometry = corners_table(root);
    if let Err(e) = &geometry {
        eprintln!("report: left out the pixel geometry: {e:#}");
    }
    if let Ok(Some(t)) = &geometry {
        t.write(&out.join("tables"))?;
    }
    write_text(
        &out.join("tables/sweep_bands.csv"),
        &tables::sweep(&agg).to_csv(),
    )?;

    let figures = draw_figures(root, &out, &sets[0], &agg, ds)?;
    let robust = robust_section::build(&out, &sets, ds)?;
    for p in &robust.problems {
        eprintln!("report: left out of the robustness section: {p}");
    }
    let compared = match &other {
        Some((b, other_ds)) => {
            let this = comparison::Study::of_sets(root, ds, sets.as_slice(), &skipped);
            Some(comparison::write(&out, &this, b, *other_ds)?)
        }
        None => None,
    };
    let study = Study {
        root,
        known: &known,
        sets: &sets,
        skipped: &skipped,
        agg: &agg,
    };
    let page = page(
        &study,
        &tables,
        &geometry,
        &figures,
        &robust,
        compared.as_deref(),
    );
    write_text(&out.join("report.md"), &page.markdown())?;
    // The page must never point at a file this run did not leave in place.
    for file in page.files() {
        ensure!(
            out.join(&file).is_file(),
            "the page links to {file}, which was not written"
        );
    }
    let index = out.join("index.html");
    write_text(&index, &page.html())?;

    println!(
        "report: {} set(s) in the numbers, {} skipped; {} figures, {} tables",
        sets.len(),
        skipped.len(),
        figures.iter().filter(|f| f.drawn.is_none()).count() + robust.figures,
        tables.len()
            + 1
            + usize::from(matches!(geometry, Ok(Some(_))))
            + robust.tables.len()
            + robust.links.len()
    );
    if let Some(file) = &compared {
        println!("{}", out.join(file).display());
    }
    println!("{}", index.display());
    Ok(())
}

/// Sets swept over other epsilons than the first cannot share a median curve.
pub(crate) fn same_sweep(sets: Vec<Set>, mut skipped: Vec<Skipped>) -> (Vec<Set>, Vec<Skipped>) {
    let mut kept: Vec<Set> = Vec::new();
    for set in sets {
        let first = kept.first().map(|s| s.sweep_eps.clone());
        match first {
            Some(eps)
                if eps.len() != set.sweep_eps.len()
                    || eps
                        .iter()
                        .zip(&set.sweep_eps)
                        .any(|(a, b)| (a - b).abs() > 1e-9) =>
            {
                skipped.push(Skipped {
                    name: set.name.clone(),
                    reason: format!("eval/sweep.csv uses other epsilons than {}", kept[0].name),
                });
            }
            _ => kept.push(set),
        }
    }
    skipped.sort_by(|a, b| a.name.cmp(&b.name));
    (kept, skipped)
}

/// A figure of the page: where it is, what it shows, and why it is missing if it is.
struct Figure {
    file: String,
    title: String,
    caption: String,
    /// `None` once drawn; else the reason it could not be.
    drawn: Option<String>,
}

/// The MNIST text where the report's published numbers apply, else the other one.
fn pick(ds: DataSet, mnist: &str, other: &str) -> String {
    if ds.published() { mnist } else { other }.to_string()
}

fn draw_figures(
    root: &Path,
    out: &Path,
    shown: &Set,
    agg: &Aggregate,
    ds: DataSet,
) -> Result<Vec<Figure>> {
    let names = ds.class_names();
    let mut figures = Vec::new();
    let mut add = |file: &str, title: String, caption: String, drawn: Option<String>| {
        figures.push(Figure {
            file: format!("figures/{file}"),
            title,
            caption,
            drawn,
        });
    };
    let path = |file: &str| out.join("figures").join(file);

    let fig5 = mosaics::null_samples(&mosaics::nulls_dir(root)).and_then(|samples| {
        draw_png(&path("fig05_null_samples.png"), mosaics::FIG5_SIZE, |a| {
            mosaics::fig5(a, &samples, ds.items())
        })
    });
    add(
        "fig05_null_samples.png",
        "Figure 5: null samples".into(),
        pick(ds, "The three kinds of null the null models learn to reject, as `trainer nulls` drew them from the training generator: uniform noise, the mean of two digits with different labels, and a digit's tiles shuffled (one tile size per training batch, named under each sample).",
        "The three kinds of null the null models learn to reject, as `trainer nulls` drew them from the training generator: uniform noise, the mean of two images of different classes, and an image's tiles shuffled (one tile size per training batch, named under each sample)."),
        fig5.err().map(|e| format!("{e:#}")),
    );

    draw_png(&path("fig06_clean_accuracy.png"), charts::FIG6_SIZE, |a| {
        charts::fig6(a, agg, ds)
    })?;
    add(
        "fig06_clean_accuracy.png",
        "Figure 6: clean test accuracy".into(),
        pick(ds, "All models should sit near 99 %, null models slightly below the baseline (published baseline 99.23 %); null decisions on clean digits should be rare.",
        "A CNN of this size reaches about 91-93 % on Fashion-MNIST; null models should sit slightly below the baseline, and null decisions on clean images should be rare."),
        None,
    );

    let ex = &shown.examples;
    let k = ex.labels.len();
    let n = shown.eps_threshold.len();
    draw_png(
        &path("fig07_adversarial_threshold.png"),
        mosaics::GRID_SIZE,
        |a| {
            let title = format!(
                "Adversarial images at the epsilon threshold, baseline ({}, first {k} of {n})",
                shown.name
            );
            mosaics::examples(
                a,
                &title,
                &ex.at_threshold,
                &ex.labels,
                &ex.threshold_predictions[0],
                &names,
            )
        },
    )?;
    add(
        "fig07_adversarial_threshold.png",
        "Figure 7: adversarial images at the threshold, scored by the baseline".into(),
        pick(ds, "Every border should be red: each image is the smallest FGSM step that flips the baseline, so probabilities sit near 0.5 while the digits stay readable.",
        "Every border should be red: each image is the smallest FGSM step that flips the baseline, so probabilities sit near 0.5 while the images stay recognisable. Each image is titled with its label over the arrow and the prediction."),
        None,
    );
    draw_png(
        &path("fig08_adversarial_1.5x.png"),
        mosaics::GRID_SIZE,
        |a| {
            let title = format!(
                "The same images at 1.5 x the threshold epsilon, baseline ({})",
                shown.name
            );
            mosaics::examples(a, &title, &ex.at_1_5, &ex.labels, &ex.base_at_1_5, &names)
        },
    )?;
    add(
        "fig08_adversarial_1.5x.png",
        "Figure 8: the same images at 1.5 x the threshold, scored by the baseline".into(),
        "Slightly noisier images, still readable, yet the baseline is now confidently wrong: probabilities should often reach 0.9 or more.".into(),
        None,
    );

    draw_png(&path("fig09_eps_threshold.png"), charts::FIG9_SIZE, |a| {
        charts::fig9(a, agg, ds)
    })?;
    add(
        "fig09_eps_threshold.png",
        "Figure 9: distribution of the epsilon thresholds".into(),
        pick(ds, "The histogram should peak near 0.2 and the cumulative curve should pass 80 % of the images before epsilon 0.4 (the dashed lines are the published values).",
        "How far FGSM must step to flip the baseline on this data set; the report's published values are of MNIST and are not drawn here."),
        None,
    );
    draw_png(
        &path("fig10_threshold_scores.png"),
        charts::FIG10_SIZE,
        |a| charts::fig10(a, agg, ds),
    )?;
    add(
        "fig10_threshold_scores.png",
        "Figure 10: scores at the epsilon threshold".into(),
        pick(ds, "The defense works where red bars drop to near zero: the baseline misclassifies all threshold images, models trained with mixed nulls should mostly answer null (blue). Crosses mark the published means.",
        "The defense works where red bars drop to near zero: the baseline misclassifies all threshold images; if the defense carries over to this data set, models trained with mixed nulls mostly answer null (blue)."),
        None,
    );

    for (number, name, words) in EXAMPLE_FIGURES {
        let m = Variant::ALL.iter().position(|v| *v == name).unwrap_or(0);
        let file = format!("fig{number}_{name}.png");
        draw_png(&path(&file), mosaics::GRID_SIZE, |a| {
            let title = format!(
                "The images of Figure 7 scored by the {name} model ({words}, {})",
                shown.name
            );
            mosaics::examples(
                a,
                &title,
                &ex.at_threshold,
                &ex.labels,
                &ex.threshold_predictions[m],
                &names,
            )
        })?;
        add(
            &file,
            format!("Figure {number}: Figure 7's images scored by the {name} model ({words})"),
            "Green borders are correct, blue are null decisions, red are misclassifications: the more null types a model trained with, the fewer red borders.".into(),
            None,
        );
    }

    draw_png(&path("fig18_sweep.png"), charts::FIG18_SIZE, |a| {
        charts::fig18(a, agg)
    })?;
    add(
        "fig18_sweep.png",
        "Figure 18: scores across epsilon, every model".into(),
        pick(ds, "Red (misclassified) should rise quickly for base and u; models with mixed nulls should hold red near zero up to about 0.6, models with shuffled nulls from about 0.5 up, sm and usm everywhere.",
        "Red (misclassified) rises quickly for base and u where the defense fails; the report's MNIST study has models with mixed nulls hold red near zero up to about 0.6, and sm and usm everywhere."),
        None,
    );
    draw_png(&path("fig19_misclassified.png"), charts::FIG19_SIZE, |a| {
        charts::fig19(a, agg)
    })?;
    add(
        "fig19_misclassified.png",
        "Figure 19: misclassifications, baseline vs null models".into(),
        "The null models' curves should stay far below the baseline's; in the rightmost panel the best models (sm, usm) should make almost no misclassifications at any epsilon.".into(),
        None,
    );
    Ok(figures)
}

/// What the page is made from: one data set's study.
struct Study<'a> {
    root: &'a Path,
    known: &'a Known,
    sets: &'a [Set],
    skipped: &'a [Skipped],
    agg: &'a Aggregate,
}

/// The pixel-geometry table of `root`, `None` when `evaluator corners` did not run.
fn corners_table(root: &Path) -> Result<Option<Table>> {
    Ok(corners::read(root)?.map(|groups| {
        let (csv, display) = corners::grids(&groups);
        Table {
            stem: "corners",
            title: "Pixel geometry: how near the images lie to the corners of the pixel hypercube"
                .into(),
            csv,
            display,
        }
    }))
}

/// The at-a-glance verdict: did the models trained with mixed nulls stop the attack?
/// `white_box` is the robustness section's verdict, when it has one: the report's
/// attack does not know the null models, so its verdict alone could mislead. The
/// published numbers are quoted for MNIST only.
fn verdict(agg: &Aggregate, sets: &[Set], ds: DataSet, white_box: Option<&str>) -> Block {
    let paper = ds.published();
    let index = |name: &str| Variant::ALL.iter().position(|v| *v == name).unwrap_or(0);
    let mis = |name: &str| agg.threshold[index(name)][1];
    let good = VERDICT_MODELS.iter().all(|m| mis(m).mean < VERDICT_LIMIT);
    let headline = if good {
        "The null-class defense worked in this run.".to_string()
    } else {
        "The null-class defense did NOT work in this run.".to_string()
    };
    let best = Variant::ALL[1..]
        .iter()
        .min_by(|a, b| mis(a).mean.total_cmp(&mis(b).mean))
        .copied()
        .unwrap_or("usm");
    let b = &agg.threshold[index(best)];
    // " (published x)" beside a number on MNIST, nothing on another data set.
    let beside = |text: String| {
        if paper {
            format!(" (published {text})")
        } else {
            String::new()
        }
    };
    let pub_text = |name: &str, o: usize| {
        beside(
            published::threshold(name, o)
                .map_or("n/a".into(), |p| format!("{:.1} ± {:.1} %", p.0, p.1)),
        )
    };
    let clean = &agg.clean;
    // Medians, the null models' statistic in the published Figure 6.
    let (lo, hi) = clean[1..]
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| {
            (lo.min(c[0].median), hi.max(c[0].median))
        });
    let published_mis: Vec<f64> = VERDICT_MODELS
        .iter()
        .filter_map(|m| published::threshold(m, 1))
        .map(|p| p.0)
        .collect();
    let mut lines = vec![
        format!(
            "Rule: the models trained with mixed nulls ({}) each misclassify under {VERDICT_LIMIT:.0} % of the epsilon-threshold images on average; they misclassify {}{}.",
            VERDICT_MODELS.join(", "),
            VERDICT_MODELS.iter().map(|m| format!("{m} {:.1} %", mis(m).mean)).collect::<Vec<_>>().join(", "),
            beside(format!(
                "{:.1} to {:.1} %",
                published_mis.iter().copied().fold(f64::INFINITY, f64::min),
                published_mis.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            )),
        ),
        format!(
            "Baseline misclassifies {} of the threshold images, measured{}; best null model {best}: misclassified {}{}, unclassified {}{}.",
            mis("base").text(1) + " %",
            if paper { " (the published 100 % is not a measurement: its code hard-codes the baseline row as \"100 % misclassified by definition\")" } else { "" },
            b[1].text(1) + " %",
            pub_text(best, 1),
            b[2].text(1) + " %",
            pub_text(best, 2)
        ),
    ];
    if paper {
        let within = agg.within();
        let total = within.len() * 3;
        let matched = within.iter().flatten().filter(|w| **w).count();
        let misses: Vec<String> = Variant::ALL
            .iter()
            .zip(&within)
            .flat_map(|(name, w)| {
                (0..3)
                    .filter(|&o| !w[o])
                    .map(move |o| format!("{name} {}", OUTCOMES[o]))
            })
            .collect();
        lines.push(format!(
            "Against the published Figure 10: {matched} of {total} means lie within the published std{}.",
            if misses.is_empty() { String::new() } else { format!("; outside: {}", misses.join(", ")) }
        ));
    }
    lines.push(format!(
        "Clean accuracy: baseline mean {}{}, null models' medians over sets {lo:.2} to {hi:.2} %{}.",
        clean[0][0].text(2) + " %",
        beside(format!("mean {:.2} %", published::BASE_CLEAN_ACCURACY)),
        beside(format!("median {} %", published::NULL_CLEAN_ACCURACY_TEXT)),
    ));
    lines.push(format!(
        "Epsilon thresholds: median {:.3}, {:.1} % below {}{}.",
        agg.eps_pooled.median,
        agg.eps_pooled.share_below_cut,
        published::THRESHOLD_CUT,
        if paper {
            format!(
                " (published: peak near {}, over {:.0} % below {})",
                published::THRESHOLD_PEAK,
                100.0 * published::SHARE_BELOW_CUT,
                published::THRESHOLD_CUT
            )
        } else {
            String::new()
        }
    ));
    if let Some(line) = white_box {
        lines.push(line.to_string());
    }
    // Short-trained models or fewer images give no verdict (see `strength`).
    let weak = [strength::training(sets), strength::fgsm(sets)].concat();
    let headline = strength::headline(headline, &weak);
    let good = good && weak.is_empty();
    if !weak.is_empty() {
        lines.insert(
            0,
            format!(
                "Weaker than the paper's settings: {}. Rerun at paper settings (make all) for a verdict.",
                weak.join("; ")
            ),
        );
    }
    if agg.set_names.len() < 2 {
        lines.push(format!(
            "One set only: no std over sets (n/a), bands collapse to lines; the report's study has {} sets.",
            published::SETS
        ));
    }
    Block::Verdict {
        good,
        headline,
        lines,
    }
}

fn page(
    study: &Study,
    tables: &[Table; 4],
    geometry: &Result<Option<Table>>,
    figures: &[Figure],
    robust: &Section,
    compared: Option<&str>,
) -> Page {
    let Study {
        root,
        known,
        sets,
        skipped,
        agg,
    } = *study;
    let ds = known.dataset;
    let intro = if ds.published() {
        format!(
            "Reproduction of the null-class study (Figures 5-19 of the report) from {} set(s) of 8 models; every mean, median and std is over sets, std being the population std (ddof 0, numpy's np.std, as the published error bars; n/a for one set). Each comparison uses the published number's own statistic: means for Figure 10, the baseline's mean and the null models' median for Figure 6. Published numbers are from the report's Figures 6 and 10 and text.",
            sets.len()
        )
    } else {
        format!(
            "The null-class study of the report (its Figures 5-19) run on {} instead of MNIST, from {} set(s) of 8 models; every mean, median and std is over sets, std being the population std (ddof 0, numpy's np.std; n/a for one set). The report's published numbers are of MNIST and are not shown beside these.",
            ds.title(),
            sets.len()
        )
    };
    let mut blocks = vec![Block::Text(intro)];
    if let Some(file) = compared {
        blocks.push(Block::Links(vec![(
            file.to_string(),
            "this study side by side with the other data set's".into(),
        )]));
    }
    blocks.push(Block::Heading("At a glance".into()));
    blocks.push(verdict(agg, sets, ds, robust.glance.as_deref()));
    if !skipped.is_empty() {
        blocks.push(Block::Warning(
            skipped
                .iter()
                .map(|s| {
                    format!(
                        "Set {} was skipped and is not in any number below: {}",
                        s.name, s.reason
                    )
                })
                .collect(),
        ));
    }
    let missing: Vec<String> = figures
        .iter()
        .filter_map(|f| {
            f.drawn
                .as_ref()
                .map(|why| format!("{} was not drawn: {why}", f.title))
        })
        .collect();
    if !missing.is_empty() {
        blocks.push(Block::Warning(missing));
    }
    blocks.push(Block::Heading("Run settings and provenance".into()));
    let mut settings = provenance::settings(root, sets, skipped, &provenance::now_utc());
    settings.insert(
        1,
        (
            "Data set".into(),
            format!(
                "{} ({} classes: {}); known from {}",
                ds.title(),
                ds.class_names().len(),
                ds.class_names().join(", "),
                known.how
            ),
        ),
    );
    if !ds.published() {
        // The published study's 30 sets are MNIST's: no comparison here.
        for (key, value) in &mut settings {
            if key == "Sets in the numbers" {
                if let Some(cut) = value.find(" (published:") {
                    value.truncate(cut);
                }
            }
        }
    }
    blocks.push(Block::KeyValues(settings));

    let figure = |stem: &str| -> Vec<Block> {
        figures
            .iter()
            .filter(|f| f.file.contains(stem))
            .map(|f| match &f.drawn {
                None => Block::Figure {
                    file: f.file.clone(),
                    title: f.title.clone(),
                    caption: f.caption.clone(),
                },
                Some(why) => Block::Text(format!("{} was not drawn: {why}", f.title)),
            })
            .collect()
    };
    blocks.push(Block::Heading("Null samples (section 4.3)".into()));
    blocks.extend(figure("fig05"));
    blocks.push(Block::Heading("Clean test set (section 5.1)".into()));
    blocks.push(tables[0].block(&pick(ds,
        "Accuracy should be near 99 % for every model. std is the population std over sets (ddof 0, as published; n/a for one set). The compared column is the published figure's statistic: the mean for the baseline, the median over sets for the null models.",
        "A CNN of this size reaches about 91-93 % on Fashion-MNIST. std is the population std over sets (ddof 0; n/a for one set).")));
    blocks.extend(figure("fig06"));

    blocks.push(Block::Heading(
        "Adversarial images at the epsilon threshold (section 5.2)".into(),
    ));
    blocks.extend(figure("fig07"));
    blocks.extend(figure("fig08"));
    blocks.push(tables[2].block(&pick(ds,
        "Published: the histogram peaks near 0.2 and over 80 % of the thresholds lie below 0.4. The CSV has every set's own row.",
        "The CSV has every set's own row.")));
    blocks.push(tables[3].block(&format!(
        "The thresholds of every set pooled, by the {} of the source image: which classes the baseline gives up most easily.",
        ds.class()
    )));
    blocks.extend(figure("fig09"));
    blocks.push(tables[1].block(&pick(ds,
        "Means ± population std over sets (ddof 0), as the published Figure 10. \"within std\" says whether our mean lies within one published std of the published mean; a red \"no\" marks a difference to look into. The baseline row is measured here (the baseline scoring its own threshold images); the published row is hard-coded in its code as 100 % misclassified \"by definition\", not measured.",
        "Means ± population std over sets (ddof 0). The baseline row is measured here: the baseline scoring its own threshold images.")));
    blocks.extend(figure("fig10"));
    for (number, _, _) in EXAMPLE_FIGURES {
        blocks.extend(figure(&format!("fig{number}_")));
    }

    blocks.push(Block::Heading(
        "Across a range of epsilon (section 5.3)".into(),
    ));
    blocks.extend(figure("fig18"));
    blocks.extend(figure("fig19"));

    blocks.push(Block::Heading(
        "Pixel geometry: near-binary pixels and hypercube corners (section 6)".into(),
    ));
    match geometry {
        Ok(Some(t)) => blocks.push(t.block(&format!(
            "The report explains the mixed nulls' success by the images lying near corners of the hypercube, their pixels nearly binary. {}",
            corners::DEFINITIONS
        ))),
        Ok(None) => blocks.push(Block::Text(format!(
            "No {}: run `evaluator corners --artifacts {}` for the share of near-binary pixels and the distance to the hypercube's corners.",
            corners::FILE,
            root.display()
        ))),
        Err(e) => blocks.push(Block::Warning(vec![format!(
            "The pixel geometry was left out: {e:#}"
        )])),
    }
    blocks.extend(robust.blocks.iter().cloned());

    blocks.push(Block::Heading("Files".into()));
    let mut links: Vec<(String, String)> = tables
        .iter()
        .map(|t| (format!("tables/{}.csv", t.stem), t.title.clone()))
        .collect();
    links.push((
        "tables/sweep_bands.csv".into(),
        "Figure 18's curves: 25 %, median and 75 % over sets per model, epsilon and outcome".into(),
    ));
    if let Ok(Some(t)) = geometry {
        links.push((format!("tables/{}.csv", t.stem), t.title.clone()));
    }
    links.extend(
        robust
            .tables
            .iter()
            .map(|t| (format!("tables/{}.csv", t.stem), t.title.clone())),
    );
    links.extend(robust.links.iter().cloned());
    if let Some(file) = compared {
        links.push((file.to_string(), "the two data sets side by side".into()));
    }
    links.push(("report.md".into(), "this page as Markdown".into()));
    blocks.push(Block::Links(links));
    Page {
        title: format!(
            "Null-class defense against FGSM on {}: study report",
            ds.title()
        ),
        blocks,
    }
}
