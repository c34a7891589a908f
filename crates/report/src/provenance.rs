//! The run's settings and where its numbers came from, for the top of the page.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::sets::{Set, Skipped};

/// The distinct values in first-seen order, "a" or "a; b (differs between models)".
fn distinct(values: impl IntoIterator<Item = String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    match seen.len() {
        0 => "n/a".to_string(),
        1 => seen.remove(0),
        _ => format!("{} (differs between models or sets)", seen.join("; ")),
    }
}

/// Set names, shortened to a range when they are consecutive seeds.
pub fn set_list(names: &[String]) -> String {
    let seeds: Vec<Option<u64>> = names
        .iter()
        .map(|n| n.strip_prefix("seed-").and_then(|s| s.parse().ok()))
        .collect();
    let consecutive = names.len() > 3
        && seeds.iter().all(Option::is_some)
        && seeds.windows(2).all(|w| w[1] == w[0].map(|s| s + 1));
    if consecutive {
        format!("{} … {}", names[0], names[names.len() - 1])
    } else {
        names.join(", ")
    }
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "n/a".into())
}

fn hours(seconds: f64) -> String {
    if seconds >= 3600.0 {
        format!("{:.2} h", seconds / 3600.0)
    } else {
        format!("{:.1} min", seconds / 60.0)
    }
}

pub fn settings(
    root: &Path,
    sets: &[Set],
    skipped: &[Skipped],
    generated: &str,
) -> Vec<(String, String)> {
    let models = || sets.iter().flat_map(|s| s.models.iter());
    let setting = |key: &'static str| distinct(models().map(|m| m.setting(key)));
    let mut found: Vec<String> = sets
        .iter()
        .map(|s| s.name.clone())
        .chain(skipped.iter().map(|s| s.name.clone()))
        .collect();
    found.sort();
    let tiles = distinct(models().map(|m| match m.setting("text_tiles").as_str() {
        "true" => "1, 2, 4, 7, 14 (the report's text)".to_string(),
        "false" => "2, 4, 7, 14 (the published code)".to_string(),
        other => other.to_string(),
    }));
    let validation = distinct(models().map(|m| match m.setting("validation").as_str() {
        "test" => {
            "lowest validation loss on the test set (the published code's protocol)".to_string()
        }
        "holdout" => format!(
            "lowest validation loss on a held-out slice of {} training images",
            m.setting("holdout")
        ),
        other => other.to_string(),
    }));
    let validation_nulls = distinct(models().map(|m| {
        match m.setting("validation_nulls").as_str() {
            "fresh" => {
                "fresh each epoch: the validation generator lives on, as in the published code"
                    .to_string()
            }
            "fixed" => "one fixed set, the same every epoch (--validation-nulls fixed)".to_string(),
            // Models trained before the option existed had the fixed set.
            "n/a" => "one fixed set (trained before --validation-nulls existed)".to_string(),
            other => other.to_string(),
        }
    }));
    let epochs_run: BTreeSet<usize> = models().map(|m| m.history.len()).collect();
    let best: Vec<u64> = models()
        .filter_map(|m| m.best_epoch)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let training_seconds: f64 = models().filter_map(|m| m.wall_seconds).sum();
    let mut ms_per_step: Vec<f64> = models().filter_map(|m| m.ms_per_step).collect();
    ms_per_step.sort_by(f64::total_cmp);
    let eps = &sets[0].sweep_eps;
    let versions = distinct(models().map(|m| {
        let v: Vec<String> = m.versions.iter().map(|(k, v)| format!("{k} {v}")).collect();
        v.join(", ")
    }));

    vec![
        (
            "Artifacts".into(),
            std::fs::canonicalize(root)
                .unwrap_or_else(|_| root.to_path_buf())
                .display()
                .to_string(),
        ),
        (
            "Report generated".into(),
            format!("{generated} by report {}", env!("CARGO_PKG_VERSION")),
        ),
        (
            "Sets found".into(),
            format!("{}: {}", found.len(), set_list(&found)),
        ),
        (
            "Sets in the numbers".into(),
            format!(
                "{}: {} (published: {})",
                sets.len(),
                set_list(&sets.iter().map(|s| s.name.clone()).collect::<Vec<_>>()),
                crate::published::SETS
            ),
        ),
        (
            "Sets skipped".into(),
            if skipped.is_empty() {
                "none".into()
            } else {
                skipped
                    .iter()
                    .map(|s| format!("{} ({})", s.name, s.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ),
        (
            "Epochs".into(),
            format!(
                "{} set, {} run; checkpoint epochs {}",
                setting("epochs"),
                epochs_run
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                match (best.first(), best.last()) {
                    (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
                    (Some(lo), Some(hi)) => format!("{lo} to {hi}"),
                    _ => "n/a".into(),
                }
            ),
        ),
        (
            "Steps per epoch, batch".into(),
            format!("{}, {}", setting("steps"), setting("batch")),
        ),
        (
            "Learning rate, null probability".into(),
            format!("{}, {}", setting("lr"), setting("null_prob")),
        ),
        ("Shuffled-null tile sizes".into(), tiles),
        ("Checkpoint kept".into(), validation),
        ("Validation nulls".into(), validation_nulls),
        (
            "TF32 (training; attack; evaluation)".into(),
            format!(
                "{}; {}; {}",
                setting("tf32"),
                distinct(sets.iter().map(|s| {
                    text(
                        &s.attack
                            .config
                            .get("tf32")
                            .and_then(|v| v.as_str())
                            .map(str::to_string),
                    )
                })),
                distinct(sets.iter().map(|s| {
                    text(
                        &s.eval
                            .config
                            .get("tf32")
                            .and_then(|v| v.as_str())
                            .map(str::to_string),
                    )
                }))
            ),
        ),
        (
            "Training devices".into(),
            format!(
                "{} (threads: {})",
                distinct(models().map(|m| m.device.clone().unwrap_or_else(|| "n/a".into()))),
                distinct(models().map(|m| m.threads.map_or("n/a".into(), |t| t.to_string())))
            ),
        ),
        (
            "Attack and evaluation devices".into(),
            format!(
                "{}; {}",
                distinct(sets.iter().map(|s| text(&s.attack.device))),
                distinct(sets.iter().map(|s| text(&s.eval.device)))
            ),
        ),
        (
            "Versions".into(),
            format!(
                "{versions}; adversary-gen {}; evaluator {}",
                distinct(sets.iter().map(|s| text(&s.attack.version))),
                distinct(sets.iter().map(|s| text(&s.eval.version)))
            ),
        ),
        (
            "Compute".into(),
            format!(
                "training {} in all ({} per step, median), attacks {}, evaluation {}",
                hours(training_seconds),
                ms_per_step
                    .get(ms_per_step.len() / 2)
                    .map_or("n/a".into(), |m| format!("{m:.1} ms")),
                hours(sets.iter().filter_map(|s| s.attack.wall_seconds).sum()),
                hours(sets.iter().filter_map(|s| s.eval.wall_seconds).sum())
            ),
        ),
        (
            "Adversarial images per set".into(),
            distinct(sets.iter().map(|s| s.eps_threshold.len().to_string())),
        ),
        (
            "Sweep epsilons".into(),
            format!(
                "{} values from {} to {}",
                eps.len(),
                eps.first().copied().unwrap_or(0.0),
                eps.last().copied().unwrap_or(0.0)
            ),
        ),
    ]
}

/// The current UTC time as "YYYY-MM-DD HH:MM UTC".
pub fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's days_from_civil, inverted).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_values() {
        let names: Vec<String> = (0..30).map(|i| format!("seed-{i:02}")).collect();
        assert_eq!(set_list(&names), "seed-00 … seed-29");
        assert_eq!(set_list(&names[..2]), "seed-00, seed-01");
        assert_eq!(distinct(["a".to_string(), "a".to_string()]), "a");
        assert!(now_utc().ends_with("UTC"));
    }
}
