//! The robustness section's tables: misclassification under transfer and white-box
//! attacks beside each model's clean cost, the FGSM-margin search, and every curve
//! point as a long CSV.

use nullclass::nulls::Variant;

use crate::robust;
use crate::robustness::{Robustness, TABLE_ATTACKS};
use crate::stats::{median, quantile, std_text, MeanStd};
use crate::tables::{num, Grid, Table};

/// A mean for the CSVs, "n/a" when no set has the number (rather than NaN).
fn mean_csv(m: &MeanStd) -> String {
    if m.n == 0 {
        "n/a".to_string()
    } else {
        num(m.mean)
    }
}

/// `mean ± std` for the page; "n/a" when no set has it, and the count of sets when
/// fewer than the row's, so a mean over fewer sets is not read as one over all.
fn cell(m: &MeanStd, decimals: usize, row_sets: usize) -> String {
    match m.n {
        0 => "n/a".to_string(),
        1 if row_sets > 1 => format!("{} (1 set)", m.text(decimals)),
        n if n < row_sets => format!("{} ({n} sets)", m.text(decimals)),
        _ => m.text(decimals),
    }
}

pub const ROBUSTNESS_STEM: &str = "robustness";
pub const MARGIN_STEM: &str = "fgsm_margin";
/// The long CSV behind Figure 20 and the robustness table.
pub const CURVES_FILE: &str = "tables/robust_curves.csv";

/// Per model: clean null (or rejection) rate, then percent misclassified under each
/// table attack at each table epsilon.
pub fn robustness(r: &Robustness) -> Table {
    let mut csv = Grid::new(&[
        "model",
        "sets",
        "clean_null_rate_mean",
        "clean_null_rate_std",
    ]);
    let mut display = Grid::new(&["model", "sets", "clean null rate (%)"]);
    for attack in TABLE_ATTACKS {
        for &eps in r.table_eps {
            csv.header.extend([
                format!("{attack}_eps{eps}_mean"),
                format!("{attack}_eps{eps}_std"),
            ]);
            display.header.push(format!("{attack} ε {eps} (%)"));
        }
    }
    csv.header.extend(["tau_mean".into(), "tau_std".into()]);
    for model in robust::models() {
        let sets = r.sets_with(&model);
        let cost = r.clean_cost(&model);
        let mut row = vec![
            model.clone(),
            sets.to_string(),
            mean_csv(&cost),
            std_text(cost.std, 4),
        ];
        let mut shown = vec![model.clone(), sets.to_string(), cell(&cost, 2, sets)];
        for attack in TABLE_ATTACKS {
            for &eps in r.table_eps {
                let m = r.misclassified(attack, &model, eps);
                row.extend([mean_csv(&m), std_text(m.std, 4)]);
                shown.push(cell(&m, 1, sets));
            }
        }
        let tau = r.tau(&model);
        row.extend([mean_csv(&tau), std_text(tau.std, 4)]);
        csv.rows.push(row);
        display.rows.push(shown);
    }
    Table {
        stem: ROBUSTNESS_STEM,
        title: format!(
            "Misclassified images (%) under transfer and white-box attacks, beside each model's clean null rate (for a rejection baseline: its clean rejection rate), mean ± std over {} set(s)",
            r.attack_sets.len()
        ),
        csv,
        display,
    }
}

pub const ROBUST_ERROR_STEM: &str = "robust_error";

/// Robust error with rejection per model and radius (0 and the table's), percent of
/// the sources, with each model's rejection rule; `None` when no set has the file.
pub fn robust_error(r: &Robustness) -> Option<Table> {
    if r.error_sets.is_empty() {
        return None;
    }
    let mut csv = Grid::new(&["model", "rejects", "sets"]);
    let mut display = Grid::new(&["model", "rejects", "sets"]);
    let grid: Vec<f64> = std::iter::once(0.0)
        .chain(r.table_eps.iter().copied())
        .collect();
    for eps in &grid {
        csv.header.extend([
            format!("robust_error_eps{eps}_mean"),
            format!("robust_error_eps{eps}_std"),
        ]);
        display.header.push(format!("ε {eps} (%)"));
    }
    for model in r.error_models() {
        let cells: Vec<(MeanStd, Option<&str>)> =
            grid.iter().map(|&e| r.robust_error(&model, e)).collect();
        let sets = cells.iter().map(|(m, _)| m.n).max().unwrap_or(0);
        let rule = cells
            .iter()
            .find_map(|(_, rule)| *rule)
            .unwrap_or("n/a")
            .to_string();
        let mut row = vec![model.clone(), rule.clone(), sets.to_string()];
        let mut shown = vec![model.clone(), rule, sets.to_string()];
        for (m, _) in &cells {
            row.extend([mean_csv(m), std_text(m.std, 4)]);
            shown.push(cell(m, 1, sets));
        }
        csv.rows.push(row);
        display.rows.push(shown);
    }
    Some(Table {
        stem: ROBUST_ERROR_STEM,
        title: format!(
            "Robust error with rejection (%), mean ± std over {} set(s)",
            r.error_sets.len()
        ),
        csv,
        display,
    })
}

/// FGSM with a margin loss on each model itself: how often a threshold was found,
/// its median, and the share of images flipped below 0.4.
pub fn fgsm_margin(r: &Robustness) -> Table {
    let mut csv = Grid::new(&[
        "model",
        "sets",
        "found_pct_mean",
        "found_pct_std",
        "no_flip_pct_mean",
        "no_flip_pct_std",
        "wrong_clean_pct_mean",
        "wrong_clean_pct_std",
        "median_threshold_sets",
        "median_threshold_mean",
        "median_threshold_std",
        "share_below_0.4_pct_mean",
        "share_below_0.4_pct_std",
    ]);
    let mut display = Grid::new(&[
        "model",
        "sets",
        "found (%)",
        "median threshold",
        "below 0.4 (%)",
    ]);
    for model in Variant::ALL {
        let Some(m) = r.margin(model) else {
            let mut row = vec![model.to_string(), "0".to_string()];
            row.extend(vec!["n/a".to_string(); csv.header.len() - 2]);
            csv.rows.push(row);
            let mut row = vec![model.to_string(), "0".to_string()];
            row.extend(vec!["n/a".to_string(); 3]);
            display.rows.push(row);
            continue;
        };
        let sets = m.found.n;
        let mut row = vec![model.to_string(), sets.to_string()];
        for s in [&m.found, &m.no_flip, &m.wrong_clean] {
            row.extend([mean_csv(s), std_text(s.std, 4)]);
        }
        row.extend([
            m.median_threshold.n.to_string(),
            mean_csv(&m.median_threshold),
            std_text(m.median_threshold.std, 4),
            mean_csv(&m.share_below),
            std_text(m.share_below.std, 4),
        ]);
        csv.rows.push(row);
        display.rows.push(vec![
            model.to_string(),
            sets.to_string(),
            cell(&m.found, 1, sets),
            cell(&m.median_threshold, 3, sets),
            cell(&m.share_below, 1, sets),
        ]);
    }
    Table {
        stem: MARGIN_STEM,
        title: format!(
            "FGSM with a margin loss on each model itself: images with a flipping epsilon found, their median threshold, and the share flipped below 0.4, mean ± std over {} set(s)",
            r.margin_sets.len()
        ),
        csv,
        display,
    }
}

/// Every (attack, model, epsilon) point some set has: the three outcomes over sets,
/// and the misclassified 25 %, median and 75 % that Figure 20 draws. A CSV only.
pub fn curves(r: &Robustness) -> Grid {
    let mut csv = Grid::new(&[
        "attack",
        "model",
        "eps",
        "sets",
        "correct_mean",
        "correct_std",
        "misclassified_mean",
        "misclassified_std",
        "misclassified_p25",
        "misclassified_median",
        "misclassified_p75",
        "unclassified_mean",
        "unclassified_std",
    ]);
    for attack in r.attacks() {
        for model in r.models() {
            for eps in r.eps(&attack) {
                let per = |o: usize| r.percents(&attack, &model, eps, o);
                let mis = per(1);
                if mis.is_empty() {
                    continue;
                }
                let mut row = vec![
                    attack.clone(),
                    model.clone(),
                    format!("{eps:?}"),
                    mis.len().to_string(),
                ];
                for o in 0..3 {
                    let m = MeanStd::of(&per(o));
                    row.extend([num(m.mean), std_text(m.std, 4)]);
                    if o == 1 {
                        row.extend([
                            num(quantile(&mis, 0.25)),
                            num(median(&mis)),
                            num(quantile(&mis, 0.75)),
                        ]);
                    }
                }
                csv.rows.push(row);
            }
        }
    }
    csv
}
