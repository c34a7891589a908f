//! Summaries over sets: mean, standard deviation, median and quantiles.

/// Mean, standard deviation and median of one quantity over sets. The std is the
/// population std (ddof 0, numpy's `np.std`), the statistic of the published error
/// bars, so that ours and theirs compare like with like; it is `None` for a single
/// set, where np.std's 0 would pass for a measured spread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanStd {
    pub mean: f64,
    pub std: Option<f64>,
    pub median: f64,
    pub n: usize,
}

impl MeanStd {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        let mean = if n == 0 {
            f64::NAN
        } else {
            values.iter().sum::<f64>() / n as f64
        };
        let std = (n >= 2).then(|| {
            let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (ss / n as f64).sqrt()
        });
        Self {
            mean,
            std,
            median: median(values),
            n,
        }
    }

    /// `mean ± std` with `decimals` places, or `mean ± n/a` for one set.
    pub fn text(&self, decimals: usize) -> String {
        format!(
            "{:.decimals$} ± {}",
            self.mean,
            std_text(self.std, decimals)
        )
    }
}

pub fn std_text(std: Option<f64>, decimals: usize) -> String {
    match std {
        Some(s) => format!("{s:.decimals$}"),
        None => "n/a".to_string(),
    }
}

/// Quantile `q` in [0, 1] with linear interpolation between order statistics (numpy's
/// default), so a median of an even count is the mean of the middle two.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// Per-position summary of several curves of equal length: (low, middle, high).
pub fn band(curves: &[Vec<f64>], low: f64, high: f64) -> Vec<(f64, f64, f64)> {
    let len = curves.first().map_or(0, Vec::len);
    (0..len)
        .map(|i| {
            let column: Vec<f64> = curves.iter().map(|c| c[i]).collect();
            (
                quantile(&column, low),
                median(&column),
                quantile(&column, high),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn population_std_median_and_single_set() {
        // np.std([1, 2, 3, 10]) = sqrt((3^2 + 2^2 + 1^2 + 6^2) / 4) = sqrt(12.5).
        let m = MeanStd::of(&[1.0, 2.0, 3.0, 10.0]);
        assert_eq!(m.mean, 4.0);
        assert!((m.std.unwrap() - 12.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(m.median, 2.5);
        let one = MeanStd::of(&[7.0]);
        assert_eq!(one.std, None);
        assert_eq!(one.median, 7.0);
        assert_eq!(one.text(1), "7.0 ± n/a");
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
        assert_eq!(quantile(&[0.0, 10.0], 0.25), 2.5);
        assert_eq!(
            band(&[vec![1.0], vec![5.0], vec![3.0]], 0.0, 1.0),
            vec![(1.0, 3.0, 5.0)]
        );
    }
}
