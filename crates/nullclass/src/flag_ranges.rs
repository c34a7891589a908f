//! The allowed ranges of the tools' numeric command-line flags, checked while clap
//! parses them, so that a bad value ends in clap's one-line error naming the flag and
//! the range and never reaches torch, whose non-`f_` calls panic on it:
//!
//! ```text
//! error: invalid value '0' for '--threads <THREADS>': 0 is not a whole number from 1 to 1024
//! error: invalid value 'nan' for '--lr <LR>': nan is not a finite number above 0
//! ```
//!
//! Use: `#[arg(long, value_parser = flag_ranges::int::<i32>(1..=flag_ranges::MAX_THREADS))]`
//! (the type is the field's) and `#[arg(long, value_parser = flag_ranges::positive)]`.
//! Limits that join two flags (`--min-eps` below `--max-eps`, `--n` within the test
//! set's size) stay with the tool.

use std::ops::{Bound, RangeBounds};

/// Most torch threads a tool accepts: far above any machine's cores, far below what
/// makes torch's thread pool fail.
pub const MAX_THREADS: i64 = 1024;

/// Largest set seed: every seed derived from it (`seed * 100 + variant`, `seed + sets`)
/// then stays far inside torch's int64.
pub const MAX_SEED: i64 = 1_000_000_000;

/// Largest count of generated samples a flag may ask for (nulls, ramp samples): what
/// fits in memory many times over on any machine the study runs on.
pub const MAX_SAMPLES: i64 = 10_000_000;

/// An interval of finite floats, closed at the top, open or closed at the bottom.
struct FloatRange {
    low: f64,
    low_open: bool,
    high: f64,
    what: &'static str,
}

impl FloatRange {
    fn parse(&self, s: &str) -> Result<f64, String> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s} is not {}", self.what))?;
        let above_low = if self.low_open {
            v > self.low
        } else {
            v >= self.low
        };
        if v.is_finite() && above_low && v <= self.high {
            Ok(v)
        } else {
            Err(format!("{s} is not {}", self.what))
        }
    }
}

/// A parser for an integer flag of type `T` (the field's) within `range`.
pub fn int<T>(
    range: impl RangeBounds<i64>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<i64> + Clone + Send + Sync + 'static,
{
    let low = match range.start_bound() {
        Bound::Included(&a) => Some(a),
        Bound::Excluded(&a) => Some(a + 1),
        Bound::Unbounded => None,
    };
    let high = match range.end_bound() {
        Bound::Included(&b) => Some(b),
        Bound::Excluded(&b) => Some(b - 1),
        Bound::Unbounded => None,
    };
    let what = match (low, high) {
        (Some(a), Some(b)) => format!("a whole number from {a} to {b}"),
        (Some(a), None) => format!("a whole number of at least {a}"),
        (None, Some(b)) => format!("a whole number of at most {b}"),
        (None, None) => "a whole number".to_string(),
    };
    move |s: &str| {
        let fail = || format!("{s} is not {what}");
        let v: i64 = s.trim().parse().map_err(|_| fail())?;
        if low.is_some_and(|a| v < a) || high.is_some_and(|b| v > b) {
            return Err(fail());
        }
        T::try_from(v).map_err(|_| fail())
    }
}

/// Above 0, finite: learning rates, step sizes that pixels do not bound.
pub fn positive(s: &str) -> Result<f64, String> {
    FloatRange {
        low: 0.0,
        low_open: true,
        high: f64::MAX,
        what: "a finite number above 0",
    }
    .parse(s)
}

/// From 0 to 1: probabilities and shares.
pub fn share(s: &str) -> Result<f64, String> {
    FloatRange {
        low: 0.0,
        low_open: false,
        high: 1.0,
        what: "a number from 0 to 1",
    }
    .parse(s)
}

/// Above 0, at most 1: perturbation sizes in pixel units (pixels lie in [0, 1], so a
/// larger one is the same as 1).
pub fn pixel_eps(s: &str) -> Result<f64, String> {
    FloatRange {
        low: 0.0,
        low_open: true,
        high: 1.0,
        what: "a number above 0 and at most 1 (pixel units)",
    }
    .parse(s)
}

/// From 0 to 1 in pixel units: the largest epsilon of a sweep that starts at 0.
pub fn pixel_eps_or_zero(s: &str) -> Result<f64, String> {
    FloatRange {
        low: 0.0,
        low_open: false,
        high: 1.0,
        what: "a number from 0 to 1 (pixel units)",
    }
    .parse(s)
}

/// From 1e-6 to 1: how tightly a threshold search brackets the flip (below 1e-6
/// float32 epsilons near 1 can no longer split a bracket).
pub fn search_tolerance(s: &str) -> Result<f64, String> {
    FloatRange {
        low: 1e-6,
        low_open: false,
        high: 1.0,
        what: "a number from 1e-6 to 1",
    }
    .parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_where_the_names_say() {
        assert_eq!(positive("1e-3"), Ok(1e-3));
        for bad in ["0", "-1", "nan", "inf", "-inf", "1e400", "x", ""] {
            assert!(positive(bad).is_err(), "{bad}");
        }
        assert_eq!(share("0"), Ok(0.0));
        assert_eq!(share("1"), Ok(1.0));
        for bad in ["-0.01", "1.01", "NaN"] {
            assert!(share(bad).is_err(), "{bad}");
        }
        assert_eq!(pixel_eps("1"), Ok(1.0));
        assert!(pixel_eps("0").is_err());
        assert!(pixel_eps("1.5").is_err());
        assert_eq!(pixel_eps_or_zero("0"), Ok(0.0));
        assert!(pixel_eps_or_zero("-0.1").is_err());
        assert_eq!(search_tolerance("1e-6"), Ok(1e-6));
        assert!(search_tolerance("1e-7").is_err());
        assert_eq!(
            positive("0").unwrap_err(),
            "0 is not a finite number above 0"
        );
        assert_eq!(
            positive("abc").unwrap_err(),
            "abc is not a finite number above 0"
        );
    }

    #[test]
    fn integers_keep_their_bounds_and_type() {
        let threads = int::<i32>(1..=MAX_THREADS);
        assert_eq!(threads("1"), Ok(1));
        assert_eq!(threads("1024"), Ok(1024));
        for bad in ["0", "-1", "1025", "1.5", "nan", "99999999999999999999"] {
            assert!(threads(bad).is_err(), "{bad}");
        }
        assert_eq!(
            threads("0").unwrap_err(),
            "0 is not a whole number from 1 to 1024"
        );
        let count = int::<usize>(1..);
        assert_eq!(
            count("-3").unwrap_err(),
            "-3 is not a whole number of at least 1"
        );
        assert_eq!(count(&i64::MAX.to_string()), Ok(i64::MAX as usize));
        // Within the range but not within the field's type.
        let small = int::<u8>(0..=1000);
        assert!(small("300").is_err());
        let below = int::<u64>(..10);
        assert_eq!(
            below("10").unwrap_err(),
            "10 is not a whole number of at most 9"
        );
    }
}
