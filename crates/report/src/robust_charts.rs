//! The robustness section's figures: misclassification against epsilon under
//! adaptive PGD (Figure 20), and transfer against adaptive attacks side by side
//! (Figure 21).

use anyhow::Result;
use nullclass::nulls::Variant;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::canvas::{legend_row, Area, Swatch, FAMILY, SMALL, TITLE};
use crate::charts::{bar, new_chart, Axes, Chart};
use crate::robust::matched_null;
use crate::robustness::{Robustness, FIG21_ATTACKS};

pub const FIG20_SIZE: (u32, u32) = (1700, 660);
pub const FIG21_SIZE: (u32, u32) = (1800, 640);

/// One colour per model of `Variant::ALL`; a rejection baseline takes the colour of
/// the null model it is matched to, so each pair reads as one.
const MODEL_COLOURS: [RGBColor; 8] = [
    RGBColor(30, 30, 30),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// Transfer attacks in blues (made on the baseline), the adaptive one in red (made
/// on the model itself).
const ATTACK_COLOURS: [RGBColor; 3] = [
    RGBColor(140, 190, 230),
    RGBColor(33, 102, 172),
    RGBColor(200, 30, 40),
];

fn colour(model: &str) -> RGBColor {
    let null = matched_null(model).unwrap_or(model);
    Variant::ALL
        .iter()
        .position(|v| *v == null)
        .map_or(RGBColor(120, 120, 120), |i| MODEL_COLOURS[i])
}

/// One model's median line (dashed for a rejection baseline), its 25-75 % band and
/// a dot at each epsilon: the grid is coarse, the dots show where the data are.
fn curve(chart: &mut Chart, band: &[(f64, f64, f64, f64)], model: &str) -> Result<()> {
    let c = colour(model);
    let mut outline: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.3)).collect();
    outline.extend(band.iter().rev().map(|b| (b.0, b.1)));
    // Lighter than Figure 18's bands: eight of them overlap here.
    chart.draw_series(std::iter::once(Polygon::new(outline, c.mix(0.12).filled())))?;
    let line: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.2)).collect();
    if matched_null(model).is_some() {
        chart.draw_series(DashedLineSeries::new(
            line.clone(),
            10,
            6,
            c.stroke_width(3),
        ))?;
    } else {
        chart.draw_series(LineSeries::new(line.clone(), c.stroke_width(3)))?;
    }
    chart.draw_series(line.into_iter().map(|p| Circle::new(p, 4, c.filled())))?;
    Ok(())
}

/// Figure 20: misclassified percent against epsilon under adaptive PGD; null models
/// on the left, their rejection baselines on the right, the baseline in both.
pub fn fig20(root: &Area, r: &Robustness) -> Result<()> {
    let attack = r.verdict_attack();
    let sets = r
        .attack_sets
        .iter()
        .filter(|s| s.attacks.scores.iter().any(|x| x.attack == attack))
        .count();
    let root = root.titled(
        &format!(
            "Misclassified images under {attack} (attacks on each model itself): median and 25-75 % band over {sets} set(s)"
        ),
        (FAMILY, TITLE - 4),
    )?;
    let (w, _) = root.dim_in_pixel();
    let (top, panels) = root.split_vertically(36);
    let items: Vec<(String, Swatch)> = Variant::ALL
        .iter()
        .zip(MODEL_COLOURS)
        .map(|(v, c)| (v.to_string(), Swatch::Line(c)))
        .collect();
    legend_row(&top, (w as i32 / 2, 16), &items)?;

    let eps = r.eps(attack);
    let max = eps.last().copied().filter(|e| *e > 0.0).unwrap_or(1.0);
    let models = r.models();
    let (left, right) = panels.split_horizontally(w / 2);
    let panels = [
        (
            left,
            "null models (solid)",
            models
                .iter()
                .filter(|m| matched_null(m).is_none())
                .collect::<Vec<_>>(),
        ),
        (
            right,
            "rejection baselines reject-X (dashed, in the colour of X), base for reference",
            models
                .iter()
                .filter(|m| *m == "base" || matched_null(m).is_some())
                .collect(),
        ),
    ];
    for (area, title, shown) in panels {
        let axes = Axes {
            x_ticks: 8,
            ..Axes::new(
                title,
                0.0..max * 1.02,
                0.0..102.0,
                "epsilon (L-inf)",
                "misclassified (%)",
            )
        };
        let mut chart = new_chart(&area, axes)?;
        for model in shown {
            let band = r.band(attack, model);
            if !band.is_empty() {
                curve(&mut chart, &band, model)?;
            }
        }
    }
    Ok(())
}

/// The order of Figure 21's groups: each null model beside its rejection baseline.
fn paired(models: &[String]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for v in Variant::ALL {
        for name in [v.to_string(), format!("reject-{v}")] {
            if models.contains(&name) {
                order.push(name);
            }
        }
    }
    order
}

/// Figure 21: per model, misclassified percent under the two transfer attacks and
/// adaptive PGD at one epsilon, mean ± std over sets.
pub fn fig21(root: &Area, r: &Robustness, eps: f64) -> Result<()> {
    let root = root.titled(
        &format!(
            "Transfer vs adaptive attacks at epsilon {eps}: misclassified images, mean ± std over {} set(s)",
            r.attack_sets.len()
        ),
        (FAMILY, TITLE - 4),
    )?;
    let names = paired(&r.models());
    let legend = FIG21_ATTACKS
        .iter()
        .zip(ATTACK_COLOURS)
        .map(|(a, c)| (a.to_string(), Swatch::Box(c)))
        .collect();
    let axes = Axes::named("", names.clone(), 0.0..105.0, "misclassified (%)").legend(legend);
    let mut chart = new_chart(&root, axes)?;
    let width = 0.26;
    for (i, model) in names.iter().enumerate() {
        for (a, (attack, c)) in FIG21_ATTACKS.iter().zip(ATTACK_COLOURS).enumerate() {
            let x = i as f64 + (a as f64 - 1.0) * width;
            let m = r.misclassified(attack, model, eps);
            if m.n == 0 {
                // No bar would read as 0 %: say the number is missing.
                chart.draw_series(std::iter::once(
                    EmptyElement::at((x, 0.0))
                        + Text::new(
                            "n/a",
                            (0, -4),
                            TextStyle::from((FAMILY, SMALL - 4))
                                .pos(Pos::new(HPos::Center, VPos::Bottom)),
                        ),
                ))?;
            } else {
                bar(&mut chart, x, width * 0.92, 0.0, &m, c)?;
            }
        }
    }
    Ok(())
}
