//! The report's tables, each as a CSV (full precision, for analysis) and as a
//! display grid (rounded, mean ± std) that the Markdown and HTML pages show.

use std::path::Path;

use anyhow::{Context, Result};
use nullclass::artifacts::write_atomic;
use nullclass::nulls::Variant;

use crate::aggregate::Aggregate;
use crate::data_set::Words;
use crate::page::Block;
use crate::published;
use crate::sets::{Set, OUTCOMES};
use crate::stats::{std_text, MeanStd};
use nullclass::dataset::DataSet;

#[derive(Debug, Clone)]
pub struct Table {
    /// File stem of `tables/<stem>.csv` and `.md`.
    pub stem: &'static str,
    pub title: String,
    pub csv: Grid,
    pub display: Grid,
}

#[derive(Debug, Clone, Default)]
pub struct Grid {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Grid {
    pub(crate) fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn to_csv(&self) -> String {
        let line = |cells: &[String]| {
            cells
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(",")
                + "\n"
        };
        std::iter::once(line(&self.header))
            .chain(self.rows.iter().map(|r| line(r)))
            .collect()
    }

    pub fn to_markdown(&self) -> String {
        let line = |cells: &[String]| {
            format!(
                "| {} |\n",
                cells
                    .iter()
                    .map(|c| c.replace('|', "\\|"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            )
        };
        let rule = format!("|{}\n", "---|".repeat(self.header.len()));
        std::iter::once(line(&self.header))
            .chain(std::iter::once(rule))
            .chain(self.rows.iter().map(|r| line(r)))
            .collect()
    }
}

fn csv_cell(c: &str) -> String {
    if c.contains([',', '"', '\n']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c.to_string()
    }
}

/// Full precision for the CSVs: the tests and users recompute from them.
pub(crate) fn num(v: f64) -> String {
    format!("{v:.4}")
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

impl Table {
    /// The page block that shows this table, linking its CSV.
    pub fn block(&self, caption: &str) -> Block {
        Block::Table {
            title: self.title.clone(),
            grid: self.display.clone(),
            csv: format!("tables/{}.csv", self.stem),
            caption: caption.to_string(),
        }
    }
    /// Writes `tables/<stem>.csv` and `tables/<stem>.md` under `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let csv = dir.join(format!("{}.csv", self.stem));
        write_text(&csv, &self.csv.to_csv())?;
        let md = dir.join(format!("{}.md", self.stem));
        write_text(
            &md,
            &format!("### {}\n\n{}", self.title, self.display.to_markdown()),
        )
    }
}

pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |tmp| {
        std::fs::write(tmp, text).with_context(|| format!("cannot write {}", tmp.display()))
    })
}

/// Figure 6's numbers: clean test accuracy and null rate per model, and, for MNIST,
/// the statistic the published figure shows beside its published value: the mean over
/// sets for the baseline, the median for the null models (`np.median` in
/// fgsm_mnist_multiple_models.py). `published` is false for another data set: its
/// columns are left out, never filled with MNIST's numbers.
pub fn clean(agg: &Aggregate, published: bool) -> Table {
    let mut csv = Grid::new(&[
        "model",
        "sets",
        "accuracy_mean",
        "accuracy_std",
        "accuracy_median",
        "null_rate_mean",
        "null_rate_std",
    ]);
    let mut display = Grid::new(&[
        "model",
        "sets",
        "accuracy, mean ± std (%)",
        "accuracy, median (%)",
        "null rate, mean ± std (%)",
    ]);
    if published {
        for h in [
            "compared_statistic",
            "compared_accuracy",
            "published_accuracy",
        ] {
            csv.header.push(h.into());
        }
        for h in ["compared (%)", "published (%)"] {
            display.header.push(h.into());
        }
    }
    for (name, c) in Variant::ALL.iter().zip(&agg.clean) {
        let mut csv_row = vec![
            name.to_string(),
            c[0].n.to_string(),
            num(c[0].mean),
            std_text(c[0].std, 4),
            num(c[0].median),
            num(c[1].mean),
            std_text(c[1].std, 4),
        ];
        let mut display_row = vec![
            name.to_string(),
            c[0].n.to_string(),
            c[0].text(2),
            format!("{:.2}", c[0].median),
            c[1].text(2),
        ];
        if published {
            let value = if *name == "base" {
                format!("{:.2}", published::BASE_CLEAN_ACCURACY)
            } else {
                published::NULL_CLEAN_ACCURACY_TEXT.to_string()
            };
            let (statistic, compared) = published_clean_statistic(name, &c[0]);
            csv_row.extend([statistic.to_string(), num(compared), value.clone()]);
            display_row.extend([
                format!("{compared:.2} ({statistic})"),
                format!("{value} ({statistic})"),
            ]);
        }
        csv.rows.push(csv_row);
        display.rows.push(display_row);
    }
    let title = if published {
        "Clean test accuracy and null rate over sets (Figure 6): mean ± population std, median, and the published figure's statistic beside its value"
    } else {
        "Clean test accuracy and null rate over sets (Figure 6): mean ± population std and median"
    };
    Table {
        stem: "clean_accuracy",
        title: title.into(),
        csv,
        display,
    }
}

/// The statistic the published Figure 6 shows for model `name` (mean over sets for
/// the baseline, median for the null models) and its value in `ours`.
pub fn published_clean_statistic(name: &str, ours: &MeanStd) -> (&'static str, f64) {
    if name == "base" {
        ("mean", ours.mean)
    } else {
        ("median", ours.median)
    }
}

/// Figure 10's table, for MNIST beside the published one with whether each mean is
/// within the published std (`published`; left out for another data set).
pub fn threshold(agg: &Aggregate, published: bool) -> Table {
    let mut header = vec!["model".to_string(), "sets".to_string()];
    for o in OUTCOMES {
        header.extend([format!("{o}_mean"), format!("{o}_std")]);
    }
    if published {
        for o in OUTCOMES {
            header.extend([format!("published_{o}_mean"), format!("published_{o}_std")]);
        }
        header.extend(OUTCOMES.map(|o| format!("{o}_within_published_std")));
    }
    let mut csv = Grid {
        header,
        rows: Vec::new(),
    };

    let mut display = Grid::new(&["model"]);
    for o in OUTCOMES {
        display.header.push(format!("{o} (%)"));
        if published {
            display
                .header
                .extend(["published".to_string(), "within std".to_string()]);
        }
    }
    let within = agg.within();
    for (m, name) in Variant::ALL.iter().enumerate() {
        let ours: &[MeanStd; 3] = &agg.threshold[m];
        let numbers: Vec<(f64, f64)> = (0..3)
            .map(|o| published::threshold(name, o).unwrap_or((f64::NAN, f64::NAN)))
            .collect();
        let mut row = vec![name.to_string(), ours[0].n.to_string()];
        for s in ours {
            row.extend([num(s.mean), std_text(s.std, 4)]);
        }
        if published {
            for p in &numbers {
                row.extend([format!("{:.1}", p.0), format!("{:.1}", p.1)]);
            }
            row.extend(within[m].map(yes_no));
        }
        csv.rows.push(row);

        let mut row = vec![name.to_string()];
        for o in 0..3 {
            row.push(ours[o].text(1));
            if published {
                row.extend([
                    format!("{:.1} ± {:.1}", numbers[o].0, numbers[o].1),
                    yes_no(within[m][o]),
                ]);
            }
        }
        display.rows.push(row);
    }
    let title = if published {
        "Scores at the epsilon threshold, percent of the adversarial images, mean ± population std over sets, beside the published Figure 10 (the same statistics; its baseline row is hard-coded, ours measured)"
    } else {
        "Scores at the epsilon threshold, percent of the adversarial images, mean ± population std over sets (Figure 10)"
    };
    Table {
        stem: "threshold_scores",
        title: title.into(),
        csv,
        display,
    }
}

/// Most sets whose own rows the displayed epsilon-threshold table shows.
pub const PER_SET_ROWS: usize = 3;

/// The epsilon-threshold distribution: per set, over sets, pooled, and (`published`,
/// MNIST only) published.
pub fn eps_threshold(agg: &Aggregate, published: bool) -> Table {
    let cut = published::THRESHOLD_CUT;
    let share_col = format!("share_below_{cut}_pct");
    let mut csv = Grid::new(&["set", "images", "median", &share_col, "peak_bin_centre"]);
    let share_head = format!("below {cut} (%)");
    let mut display = Grid::new(&["set", "images", "median", &share_head, "histogram peak"]);
    for s in &agg.eps_sets {
        csv.rows.push(vec![
            s.name.clone(),
            s.n.to_string(),
            num(s.median),
            num(s.share_below_cut),
            format!("{:.3}", s.peak),
        ]);
        // Thirty per-set rows would bury the summary: beyond a few sets they stay in
        // the CSV only.
        if agg.eps_sets.len() <= PER_SET_ROWS {
            display.rows.push(vec![
                s.name.clone(),
                s.n.to_string(),
                format!("{:.3}", s.median),
                format!("{:.1}", s.share_below_cut),
                format!("{:.3}", s.peak),
            ]);
        }
    }
    let over = |f: fn(&crate::aggregate::EpsSummary) -> f64| {
        MeanStd::of(&agg.eps_sets.iter().map(f).collect::<Vec<_>>())
    };
    let (median, share, peak) = (
        over(|s| s.median),
        over(|s| s.share_below_cut),
        over(|s| s.peak),
    );
    let images = MeanStd::of(&agg.eps_sets.iter().map(|s| s.n as f64).collect::<Vec<_>>());
    csv.rows.push(vec![
        "mean over sets".into(),
        num(images.mean),
        num(median.mean),
        num(share.mean),
        num(peak.mean),
    ]);
    csv.rows.push(vec![
        "std over sets".into(),
        std_text(images.std, 4),
        std_text(median.std, 4),
        std_text(share.std, 4),
        std_text(peak.std, 4),
    ]);
    display.rows.push(vec![
        "mean ± std over sets".into(),
        images.text(0),
        median.text(3),
        share.text(1),
        peak.text(3),
    ]);
    let p = &agg.eps_pooled;
    csv.rows.push(vec![
        p.name.clone(),
        p.n.to_string(),
        num(p.median),
        num(p.share_below_cut),
        format!("{:.3}", p.peak),
    ]);
    display.rows.push(vec![
        p.name.clone(),
        p.n.to_string(),
        format!("{:.3}", p.median),
        format!("{:.1}", p.share_below_cut),
        format!("{:.3}", p.peak),
    ]);
    if published {
        let published_row = vec![
            "published".to_string(),
            (published::SETS * 1000).to_string(),
            "n/a".to_string(),
            format!("> {:.0}", 100.0 * published::SHARE_BELOW_CUT),
            format!("near {}", published::THRESHOLD_PEAK),
        ];
        csv.rows.push(published_row.clone());
        display.rows.push(published_row);
    }
    Table {
        stem: "eps_threshold",
        title: "Epsilon thresholds of the adversarial images (Figure 9)".into(),
        csv,
        display,
    }
}

/// The epsilon thresholds of every set pooled, by the class of the source image, with
/// the data set's class names.
pub fn per_class(sets: &[Set], ds: DataSet) -> Table {
    let cut = published::THRESHOLD_CUT;
    let class = ds.class();
    let share_col = format!("share_below_{cut}_pct");
    let mut csv = Grid::new(&["label", class, "images", "median", &share_col]);
    let share_head = format!("below {cut} (%)");
    let mut display = Grid::new(&[class, "images", "median threshold", &share_head]);
    for (label, name) in ds.class_names().iter().enumerate() {
        let values: Vec<f64> = sets
            .iter()
            .flat_map(|s| {
                s.labels
                    .iter()
                    .zip(&s.eps_threshold)
                    .filter(|(l, _)| **l == label as i64)
                    .map(|(_, e)| *e)
            })
            .collect();
        let below = values.iter().filter(|&&v| v < cut).count();
        let share = 100.0 * below as f64 / values.len() as f64;
        let median = crate::stats::median(&values);
        csv.rows.push(vec![
            label.to_string(),
            name.to_string(),
            values.len().to_string(),
            num(median),
            num(share),
        ]);
        let shown = |v: f64, d: usize| {
            if values.is_empty() {
                "n/a".to_string()
            } else {
                format!("{v:.d$}")
            }
        };
        display.rows.push(vec![
            name.to_string(),
            values.len().to_string(),
            shown(median, 3),
            shown(share, 1),
        ]);
    }
    Table {
        stem: "eps_threshold_by_class",
        title: format!("Epsilon thresholds by the {class} of the source image, all sets pooled"),
        csv,
        display,
    }
}

/// Figure 18's curves: per model, epsilon and outcome, the 25 %, median and 75 % over
/// sets. A CSV only: too long to read on the page.
pub fn sweep(agg: &Aggregate) -> Grid {
    let mut csv = Grid::new(&["model", "eps", "outcome", "p25", "median", "p75"]);
    for (m, name) in Variant::ALL.iter().enumerate() {
        for (o, outcome) in OUTCOMES.iter().enumerate() {
            for (eps, b) in agg.sweep_eps.iter().zip(&agg.sweep[m][o]) {
                csv.rows.push(vec![
                    name.to_string(),
                    format!("{eps:.4}"),
                    outcome.to_string(),
                    num(b.0),
                    num(b.1),
                    num(b.2),
                ]);
            }
        }
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_models_compare_their_median_and_the_baseline_its_mean() {
        let ours = MeanStd::of(&[97.0, 98.0, 99.9]);
        assert_eq!(
            published_clean_statistic("base", &ours),
            ("mean", ours.mean)
        );
        assert_eq!(published_clean_statistic("usm", &ours), ("median", 98.0));
        assert!((ours.mean - 98.3).abs() < 1e-9);
    }
}
