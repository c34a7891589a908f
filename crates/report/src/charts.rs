//! The study's charts: Figures 6, 9, 10, 18 and 19, from the aggregated numbers.

use std::ops::Range;

use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::aggregate::{Aggregate, BIN, BINS};
use crate::canvas::{
    centred, legend_row, Area, Swatch, BLUE, FAMILY, GREEN, GREY, LABEL, OUTCOME_COLOURS, SMALL,
    TITLE,
};
use crate::data_set::Words;
use crate::published;
use crate::sets::OUTCOMES;
use crate::stats::{band, MeanStd};
use crate::tables::published_clean_statistic;
use nullclass::dataset::DataSet;
use nullclass::nulls::Variant;

pub const FIG6_SIZE: (u32, u32) = (1300, 560);
pub const FIG9_SIZE: (u32, u32) = (1400, 560);
pub const FIG10_SIZE: (u32, u32) = (1300, 600);
pub const FIG18_SIZE: (u32, u32) = (1700, 880);
pub const FIG19_SIZE: (u32, u32) = (1600, 560);

pub(crate) type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

pub(crate) struct Axes<'t> {
    pub(crate) title: &'t str,
    pub(crate) x: Range<f64>,
    pub(crate) y: Range<f64>,
    pub(crate) x_desc: &'t str,
    pub(crate) y_desc: &'t str,
    /// Names along x, one per integer position from 0 (models under their bars):
    /// no numeric x labels. Empty for a numeric x axis.
    pub(crate) names: Vec<String>,
    /// Decimals of the y tick labels.
    pub(crate) y_decimals: usize,
    /// How many x tick labels at most.
    pub(crate) x_ticks: usize,
    /// A legend drawn in a row above the plot, where it cannot hide data.
    pub(crate) legend: Vec<(String, Swatch)>,
}

impl<'t> Axes<'t> {
    pub(crate) fn new(
        title: &'t str,
        x: Range<f64>,
        y: Range<f64>,
        x_desc: &'t str,
        y_desc: &'t str,
    ) -> Self {
        Self {
            title,
            x,
            y,
            x_desc,
            y_desc,
            names: Vec::new(),
            y_decimals: 0,
            x_ticks: 11,
            legend: Vec::new(),
        }
    }

    fn models(title: &'t str, y: Range<f64>, y_desc: &'t str) -> Self {
        let names = Variant::ALL.iter().map(|v| v.to_string()).collect();
        Self::named(title, names, y, y_desc)
    }

    /// `names` along x at 0, 1, 2, ...
    pub(crate) fn named(
        title: &'t str,
        names: Vec<String>,
        y: Range<f64>,
        y_desc: &'t str,
    ) -> Self {
        let x = -0.6..(names.len() as f64 - 0.4);
        Self {
            names,
            ..Self::new(title, x, y, "model", y_desc)
        }
    }

    fn decimals(self, y_decimals: usize) -> Self {
        Self { y_decimals, ..self }
    }

    pub(crate) fn legend(self, legend: Vec<(String, Swatch)>) -> Self {
        Self { legend, ..self }
    }
}

pub(crate) fn new_chart<'a, 'b>(area: &'a Area<'b>, axes: Axes) -> Result<Chart<'a, 'b>> {
    // Title and legend are drawn here rather than by plotters, which would put its
    // caption below the margin that makes room for the legend.
    let (w, _) = area.dim_in_pixel();
    let mut top = 14;
    if !axes.title.is_empty() {
        centred(
            area,
            axes.title,
            (w as i32 / 2 + 35, top + 12),
            LABEL + 4,
            &BLACK,
        )?;
        top += 32;
    }
    if !axes.legend.is_empty() {
        legend_row(area, (w as i32 / 2 + 35, top + 12), &axes.legend)?;
        top += 32;
    }
    let mut chart = ChartBuilder::on(area)
        .margin(14)
        .margin_top(top)
        .margin_right(28)
        .x_label_area_size(if axes.names.is_empty() { 50 } else { 56 })
        .y_label_area_size(70)
        .build_cartesian_2d(axes.x.clone(), axes.y.clone())?;
    let y_decimals = axes.y_decimals;
    let y_format = move |v: &f64| format!("{v:.y_decimals$}");
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .x_labels(axes.x_ticks)
        .y_label_formatter(&y_format)
        .label_style((FAMILY, SMALL))
        .axis_desc_style((FAMILY, LABEL))
        .light_line_style(WHITE.mix(0.0));
    if !axes.names.is_empty() {
        mesh.disable_x_mesh().x_labels(0);
    }
    mesh.draw()?;
    // Many names share the width: a smaller font keeps "reject-usm" off its neighbours.
    let size = if axes.names.len() > Variant::ALL.len() {
        SMALL
    } else {
        LABEL
    };
    let y = axes.y.start;
    chart.draw_series(axes.names.iter().enumerate().map(|(i, name)| {
        EmptyElement::at((i as f64, y))
            + Text::new(
                name.clone(),
                (0, 8),
                TextStyle::from((FAMILY, size)).pos(Pos::new(HPos::Center, VPos::Top)),
            )
    }))?;
    Ok(chart)
}

/// A filled band between `low` and `high` with the `middle` line over it.
fn band_series(
    chart: &mut Chart,
    xs: &[f64],
    band: &[(f64, f64, f64)],
    colour: RGBColor,
    label: &str,
) -> Result<()> {
    let mut outline: Vec<(f64, f64)> = xs.iter().zip(band).map(|(&x, b)| (x, b.2)).collect();
    outline.extend(xs.iter().zip(band).rev().map(|(&x, b)| (x, b.0)));
    chart.draw_series(std::iter::once(Polygon::new(
        outline,
        colour.mix(0.22).filled(),
    )))?;
    let line = chart.draw_series(LineSeries::new(
        xs.iter().zip(band).map(|(&x, b)| (x, b.1)),
        colour.stroke_width(3),
    ))?;
    if !label.is_empty() {
        line.label(label.to_string()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 22, y)], colour.stroke_width(3))
        });
    }
    Ok(())
}

pub(crate) fn legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, SMALL))
        .background_style(WHITE.mix(0.9))
        .border_style(GREY)
        .draw()?;
    Ok(())
}

/// A bar from 0 (or the axis floor) to `m.mean` centred on `x`, with a ±std whisker.
pub(crate) fn bar(
    chart: &mut Chart,
    x: f64,
    width: f64,
    floor: f64,
    m: &MeanStd,
    colour: RGBColor,
) -> Result<()> {
    let top = m.mean.max(floor);
    chart.draw_series(std::iter::once(Rectangle::new(
        [(x - width / 2.0, floor), (x + width / 2.0, top)],
        colour.filled(),
    )))?;
    if let Some(s) = m.std {
        let (lo, hi) = ((m.mean - s).max(floor), m.mean + s);
        let w = width / 4.0;
        chart.draw_series([
            PathElement::new(vec![(x, lo), (x, hi)], BLACK.stroke_width(2)),
            PathElement::new(vec![(x - w, lo), (x + w, lo)], BLACK.stroke_width(2)),
            PathElement::new(vec![(x - w, hi), (x + w, hi)], BLACK.stroke_width(2)),
        ])?;
    }
    Ok(())
}

/// Figure 6: clean test accuracy (left) and null rate (right) per model; the
/// published baseline's line on MNIST only.
pub fn fig6(root: &Area, agg: &Aggregate, ds: DataSet) -> Result<()> {
    let how = if ds.published() {
        "bars as published"
    } else {
        "bars"
    };
    let root = root.titled(
        &format!(
            "Clean {} test set over {} set(s): {how} (baseline mean, null models median), whiskers population std",
            ds.title(),
            agg.set_names.len()
        ),
        (FAMILY, TITLE),
    )?;
    let (left, right) = root.split_horizontally(FIG6_SIZE.0 * 3 / 5);

    let lowest = agg
        .clean
        .iter()
        .map(|c| c[0].mean.min(c[0].median) - c[0].std.unwrap_or(0.0))
        .fold(f64::INFINITY, f64::min);
    let base = ds.published().then_some(published::BASE_CLEAN_ACCURACY);
    let floor = ((lowest.min(base.unwrap_or(f64::INFINITY)) - 0.5).floor()).clamp(0.0, 99.0);
    let title = format!("Accuracy (axis from {floor:.0} %)");
    let mut axes = Axes::models(&title, floor..100.0, "accuracy (%)").decimals(1);
    if let Some(base) = base {
        axes = axes.legend(vec![(
            format!("published baseline {base:.2} %"),
            Swatch::Line(BLACK),
        )]);
    }
    let mut chart = new_chart(&left, axes)?;
    for (i, (name, c)) in Variant::ALL.iter().zip(&agg.clean).enumerate() {
        // The published figure's statistic: the mean for the baseline, the median
        // for the null models.
        let shown = MeanStd {
            mean: published_clean_statistic(name, &c[0]).1,
            ..c[0]
        };
        bar(&mut chart, i as f64, 0.6, floor, &shown, GREEN)?;
        // Above the whisker, so the error bar never crosses the number.
        let top = (shown.mean + shown.std.unwrap_or(0.0)).max(floor);
        chart.draw_series(std::iter::once(
            EmptyElement::at((i as f64, top))
                + Text::new(
                    format!("{:.2}", shown.mean),
                    (0, -6),
                    TextStyle::from((FAMILY, SMALL)).pos(Pos::new(HPos::Center, VPos::Bottom)),
                ),
        ))?;
    }
    if let Some(base) = base {
        chart.draw_series(DashedLineSeries::new(
            vec![(-0.6, base), (7.6, base)],
            8,
            5,
            BLACK.stroke_width(2),
        ))?;
    }

    let highest = agg
        .clean
        .iter()
        .map(|c| c[1].mean + c[1].std.unwrap_or(0.0))
        .fold(0.0, f64::max);
    let top = (highest * 1.25).max(1.0);
    let title = format!("Null rate (null decisions on clean {})", ds.items());
    let axes = Axes::models(&title, 0.0..top, "null rate (%)")
        .decimals(1)
        .legend(vec![(
            "mean ± population std over sets".to_string(),
            Swatch::Box(BLUE),
        )]);
    let mut chart = new_chart(&right, axes)?;
    for (i, c) in agg.clean.iter().enumerate() {
        bar(&mut chart, i as f64, 0.6, 0.0, &c[1], BLUE)?;
    }
    Ok(())
}

/// Figure 9: histogram (left) and cumulative histogram (right) of the thresholds,
/// median over sets with the min-max band; the published peak and share on MNIST
/// only.
pub fn fig9(root: &Area, agg: &Aggregate, ds: DataSet) -> Result<()> {
    let sets = agg.set_names.len();
    let root = root.titled(
        &format!("Epsilon thresholds of the baseline's adversarial images, bins of {BIN}, median and min-max over {sets} set(s)"),
        (FAMILY, TITLE - 4),
    )?;
    let (left, right) = root.split_horizontally(FIG9_SIZE.0 / 2);
    let centres: Vec<f64> = (0..BINS).map(|i| (i as f64 + 0.5) * BIN).collect();
    let hist = band(&agg.histograms, 0.0, 1.0);
    let top = hist.iter().map(|b| b.2).fold(1.0, f64::max) * 1.15;
    let mut chart = new_chart(
        &left,
        Axes::new(
            "Histogram",
            0.0..1.0,
            0.0..top,
            "epsilon threshold",
            "images per bin",
        ),
    )?;
    if ds.published() {
        let peak = published::THRESHOLD_PEAK;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(peak, 0.0), (peak, top)],
                8,
                5,
                GREY.stroke_width(2),
            ))?
            .label(format!("published peak ≈ {peak}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], GREY.stroke_width(2)));
    }
    band_series(
        &mut chart,
        &centres,
        &hist,
        BLUE,
        "median over sets (band: min-max)",
    )?;
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;

    let cumulative: Vec<Vec<f64>> = agg
        .histograms
        .iter()
        .map(|h| {
            std::iter::once(0.0)
                .chain(h.iter().scan(0.0, |acc, c| {
                    *acc += c;
                    Some(*acc)
                }))
                .collect()
        })
        .collect();
    let edges: Vec<f64> = (0..=BINS).map(|i| i as f64 * BIN).collect();
    let cum = band(&cumulative, 0.0, 1.0);
    let total = cum.last().map_or(1.0, |b| b.2).max(1.0);
    let mut chart = new_chart(
        &right,
        Axes::new(
            "Cumulative histogram",
            0.0..1.0,
            0.0..total * 1.05,
            "epsilon threshold",
            "images at or below",
        ),
    )?;
    let cut = published::THRESHOLD_CUT;
    let share = published::SHARE_BELOW_CUT;
    let n = agg.eps_pooled.n as f64 / sets as f64;
    if ds.published() {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(cut, 0.0), (cut, total * 1.05)],
                8,
                5,
                GREY.stroke_width(2),
            ))?
            .label(format!("published: > {:.0} % below {cut}", 100.0 * share))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], GREY.stroke_width(2)));
        chart.draw_series(DashedLineSeries::new(
            vec![(0.0, share * n), (1.0, share * n)],
            8,
            5,
            GREY.stroke_width(1),
        ))?;
    }
    band_series(
        &mut chart,
        &edges,
        &cum,
        BLUE,
        &format!(
            "ours: {:.1} % below {cut} (pooled)",
            agg.eps_pooled.share_below_cut
        ),
    )?;
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}

/// Figure 10: grouped bars of the scores at the threshold, with the published means
/// on MNIST only.
pub fn fig10(root: &Area, agg: &Aggregate, ds: DataSet) -> Result<()> {
    let title = format!(
        "Scores on the adversarial images at the epsilon threshold, mean ± std over {} set(s)",
        agg.set_names.len()
    );
    threshold_bars(root, &title, agg, ds)
}

/// Figure 10's bars under `title` (the comparison page draws one per data set).
pub fn threshold_bars(root: &Area, title: &str, agg: &Aggregate, ds: DataSet) -> Result<()> {
    let root = root.titled(title, (FAMILY, TITLE - 2))?;
    let mut legend: Vec<(String, Swatch)> = OUTCOMES
        .iter()
        .zip(OUTCOME_COLOURS)
        .map(|(o, c)| (o.to_string(), Swatch::Box(c)))
        .collect();
    if ds.published() {
        legend.push(("published mean".to_string(), Swatch::Cross));
    }
    let mut chart = new_chart(
        &root,
        Axes::models("", 0.0..105.0, "images (%)").legend(legend),
    )?;
    let width = 0.26;
    let x = |i: usize, o: usize| i as f64 + (o as f64 - 1.0) * width;
    for (i, scores) in agg.threshold.iter().enumerate() {
        for (o, m) in scores.iter().enumerate() {
            bar(
                &mut chart,
                x(i, o),
                width * 0.92,
                0.0,
                m,
                OUTCOME_COLOURS[o],
            )?;
        }
    }
    let markers: Vec<(f64, f64)> = Variant::ALL
        .iter()
        .enumerate()
        .filter(|_| ds.published())
        .flat_map(|(i, name)| {
            (0..3).filter_map(move |o| published::threshold(name, o).map(|p| (x(i, o), p.0)))
        })
        .collect();
    chart.draw_series(
        markers
            .into_iter()
            .map(|p| Cross::new(p, 7, BLACK.stroke_width(3))),
    )?;
    Ok(())
}

fn long_name(name: &str) -> String {
    if name == "base" {
        return "base (no nulls)".to_string();
    }
    let words: Vec<&str> = name
        .chars()
        .map(|c| match c {
            'u' => "uniform",
            's' => "shuffled",
            _ => "mixed",
        })
        .collect();
    format!("{name} ({})", words.join(" + "))
}

fn sweep_axes<'t>(title: &'t str, y_desc: &'t str) -> Axes<'t> {
    Axes::new(title, 0.0..1.0, 0.0..102.0, "epsilon", y_desc)
}

/// Figure 18: per model, the three outcomes against epsilon, median and 25-75 % band.
pub fn fig18(root: &Area, agg: &Aggregate) -> Result<()> {
    let root = root.titled(
        &format!(
            "Perturbed images across epsilon: median and 25-75 % band over {} set(s)",
            agg.set_names.len()
        ),
        (FAMILY, TITLE),
    )?;
    let (w, _) = root.dim_in_pixel();
    let (top, panels) = root.split_vertically(36);
    let legend: Vec<(String, Swatch)> = OUTCOMES
        .iter()
        .zip(OUTCOME_COLOURS)
        .map(|(o, c)| (o.to_string(), Swatch::Line(c)))
        .collect();
    legend_row(&top, (w as i32 / 2, 16), &legend)?;
    for (m, panel) in panels.split_evenly((2, 4)).iter().enumerate() {
        let title = long_name(Variant::ALL[m]);
        // Narrow panels: every 0.2, so the tick labels do not run together.
        let axes = Axes {
            x_ticks: 6,
            ..sweep_axes(&title, "images (%)")
        };
        let mut chart = new_chart(panel, axes)?;
        for (o, curve) in agg.sweep[m].iter().enumerate() {
            band_series(&mut chart, &agg.sweep_eps, curve, OUTCOME_COLOURS[o], "")?;
        }
    }
    Ok(())
}

/// The panels of Figure 19: the baseline against null models with shuffled nulls,
/// with mixed nulls, and with both (the best of the study).
pub const FIG19_PANELS: [[&str; 2]; 3] = [["s", "us"], ["m", "um"], ["sm", "usm"]];

/// Figure 19: misclassified share against epsilon, baseline vs null models.
pub fn fig19(root: &Area, agg: &Aggregate) -> Result<()> {
    let root = root.titled(
        &format!(
            "Misclassified perturbed images, baseline vs null models (u uniform, s shuffled, m mixed nulls): median and 25-75 % band over {} set(s)",
            agg.set_names.len()
        ),
        (FAMILY, TITLE - 6),
    )?;
    let colours = [
        RGBColor(40, 40, 40),
        RGBColor(230, 120, 0),
        RGBColor(148, 60, 190),
    ];
    for (panel, models) in root.split_evenly((1, 3)).iter().zip(FIG19_PANELS) {
        let names: Vec<&str> = std::iter::once("base").chain(models).collect();
        let title = format!("base vs {} and {}", models[0], models[1]);
        let legend = names
            .iter()
            .zip(colours)
            .map(|(n, c)| (n.to_string(), Swatch::Line(c)))
            .collect();
        let mut chart = new_chart(
            panel,
            sweep_axes(&title, "misclassified (%)").legend(legend),
        )?;
        for (name, colour) in names.iter().zip(colours) {
            let m = Variant::ALL.iter().position(|v| v == name).unwrap_or(0);
            band_series(&mut chart, &agg.sweep_eps, &agg.sweep[m][1], colour, "")?;
        }
    }
    Ok(())
}

/// Colours of the eight models on one chart, `Variant::ALL` order: the baseline dark,
/// the models with mixed nulls in the warm half.
pub const MODEL_COLOURS: [RGBColor; 8] = [
    RGBColor(30, 30, 30),
    RGBColor(120, 170, 220),
    RGBColor(31, 119, 180),
    RGBColor(230, 120, 0),
    RGBColor(100, 190, 120),
    RGBColor(214, 39, 40),
    RGBColor(148, 60, 190),
    RGBColor(140, 86, 75),
];

/// Every model's median misclassified share against epsilon on one chart (the
/// comparison page draws one per data set; Figure 19 shows the bands).
pub fn misclassified_curves(root: &Area, title: &str, agg: &Aggregate) -> Result<()> {
    let legend = Variant::ALL
        .iter()
        .zip(MODEL_COLOURS)
        .map(|(n, c)| (n.to_string(), Swatch::Line(c)))
        .collect();
    let mut chart = new_chart(root, sweep_axes(title, "misclassified (%)").legend(legend))?;
    for (m, colour) in MODEL_COLOURS.iter().enumerate() {
        chart.draw_series(LineSeries::new(
            agg.sweep_eps
                .iter()
                .zip(&agg.sweep[m][1])
                .map(|(&x, b)| (x, b.1)),
            colour.stroke_width(3),
        ))?;
    }
    Ok(())
}
