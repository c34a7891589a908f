//! The numbers behind every table and figure, computed once from the sets.

use crate::published;
use crate::sets::{Set, OUTCOMES};
use crate::stats::{band, median, MeanStd};
use nullclass::nulls::Variant;

/// Width of the epsilon-threshold histogram bins (Figure 9).
pub const BIN: f64 = 0.05;
/// Bins over [0, 1]: thresholds never exceed 1, the largest epsilon searched.
pub const BINS: usize = 20;

/// Epsilon-threshold summary of one set, or of all sets pooled.
#[derive(Clone, Debug, PartialEq)]
pub struct EpsSummary {
    pub name: String,
    pub n: usize,
    pub median: f64,
    /// Percent of thresholds below [`published::THRESHOLD_CUT`].
    pub share_below_cut: f64,
    /// Centre of the fullest histogram bin.
    pub peak: f64,
}

impl EpsSummary {
    fn of(name: &str, values: &[f64]) -> Self {
        let hist = histogram(values);
        let fullest = hist
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
            .map_or(0, |(i, _)| i);
        let below = values
            .iter()
            .filter(|&&v| v < published::THRESHOLD_CUT)
            .count();
        Self {
            name: name.to_string(),
            n: values.len(),
            median: median(values),
            share_below_cut: 100.0 * below as f64 / values.len() as f64,
            peak: (fullest as f64 + 0.5) * BIN,
        }
    }
}

/// Counts per bin of width [`BIN`] over [0, 1]; 1.0 itself falls in the last bin.
pub fn histogram(values: &[f64]) -> Vec<f64> {
    let mut counts = vec![0.0; BINS];
    for &v in values {
        let i = ((v / BIN).floor().max(0.0) as usize).min(BINS - 1);
        counts[i] += 1.0;
    }
    counts
}

/// Low, middle and high curves over sets at each epsilon of the sweep.
pub type Band = Vec<(f64, f64, f64)>;

#[derive(Debug)]
pub struct Aggregate {
    pub set_names: Vec<String>,
    /// Per model: clean accuracy and null rate, percent.
    pub clean: Vec<[MeanStd; 2]>,
    /// Per model, per outcome: percent of the threshold images.
    pub threshold: Vec<[MeanStd; 3]>,
    pub eps_sets: Vec<EpsSummary>,
    pub eps_pooled: EpsSummary,
    /// Per set: histogram counts of its thresholds.
    pub histograms: Vec<Vec<f64>>,
    pub sweep_eps: Vec<f64>,
    /// Per model, per outcome: 25 %, median and 75 % over sets, percent.
    pub sweep: Vec<[Band; 3]>,
}

impl Aggregate {
    /// Needs at least one set, all swept over the same epsilons.
    pub fn of(sets: &[Set]) -> Self {
        let models = Variant::ALL.len();
        let clean = (0..models)
            .map(|m| {
                [0, 1].map(|q| MeanStd::of(&sets.iter().map(|s| s.clean[m][q]).collect::<Vec<_>>()))
            })
            .collect();
        let threshold = (0..models)
            .map(|m| {
                [0, 1, 2].map(|o| {
                    MeanStd::of(
                        &sets
                            .iter()
                            .map(|s| s.threshold[m].percents()[o])
                            .collect::<Vec<_>>(),
                    )
                })
            })
            .collect();
        let eps_sets = sets
            .iter()
            .map(|s| EpsSummary::of(&s.name, &s.eps_threshold))
            .collect();
        let pooled: Vec<f64> = sets
            .iter()
            .flat_map(|s| s.eps_threshold.iter().copied())
            .collect();
        let sweep = (0..models)
            .map(|m| {
                [0, 1, 2].map(|o| {
                    let curves: Vec<Vec<f64>> = sets
                        .iter()
                        .map(|s| s.sweep[m].iter().map(|c| c.percents()[o]).collect())
                        .collect();
                    band(&curves, 0.25, 0.75)
                })
            })
            .collect();
        debug_assert_eq!(OUTCOMES.len(), 3);
        Self {
            set_names: sets.iter().map(|s| s.name.clone()).collect(),
            clean,
            threshold,
            eps_sets,
            eps_pooled: EpsSummary::of("all sets pooled", &pooled),
            histograms: sets.iter().map(|s| histogram(&s.eps_threshold)).collect(),
            sweep_eps: sets[0].sweep_eps.clone(),
            sweep,
        }
    }

    /// Whether each of our threshold means lies within the published std, per model
    /// and outcome.
    pub fn within(&self) -> Vec<[bool; 3]> {
        Variant::ALL
            .iter()
            .zip(&self.threshold)
            .map(|(name, ours)| {
                [0, 1, 2].map(|o| {
                    published::threshold(name, o)
                        .is_some_and(|p| published::within(ours[o].mean, p))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_edges() {
        let h = histogram(&[0.0, 0.049, 0.05, 0.22, 0.99, 1.0]);
        assert_eq!(h[0], 2.0);
        assert_eq!(h[1], 1.0);
        assert_eq!(h[4], 1.0);
        assert_eq!(h[19], 2.0);
        assert_eq!(h.iter().sum::<f64>(), 6.0);
    }

    #[test]
    fn eps_summary() {
        let s = EpsSummary::of("x", &[0.1, 0.2, 0.21, 0.5]);
        assert!((s.median - 0.205).abs() < 1e-12);
        assert_eq!(s.share_below_cut, 75.0);
        assert!((s.peak - 0.225).abs() < 1e-12);
    }
}
