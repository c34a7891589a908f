//! Whether a run's settings are strong enough for its verdicts: a verdict computed
//! from short-trained models, fewer images, or a weaker attack than the defaults
//! shows what those settings give, not what the method does, so the page must say
//! so in the verdict's headline (`make demo` is such a run).
//!
//! The settings come from the artifacts: each model's JSON (`config.epochs`,
//! `config.steps`), adversary-gen's FGSM `meta.json` (`config.n`) and its robust
//! `meta.json` (`config.n`, `steps`, `restarts`, `no_targeted`, `no_random_start`, the
//! APGD and Square budgets; `losses_apgd`, the APGD ensemble), checked against
//! [`nullclass::attack_budget`].

use nullclass::attack_budget as budget;
use serde_json::{Map, Value};

use crate::sets::Set;

/// The paper's training: 20 epochs of 1875 steps (60,000 samples at batch 32).
pub const PAPER_TRAINING_STEPS: u64 = 20 * 1875;
/// FGSM images per set in the paper's study.
pub const PAPER_IMAGES: u64 = 1000;

fn number(config: &Map<String, Value>, key: &str) -> Option<u64> {
    config.get(key).and_then(Value::as_u64)
}

fn flag(config: &Map<String, Value>, key: &str) -> bool {
    config.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The smallest value of `key` over `configs`, when some config has it.
fn least<'a>(configs: impl Iterator<Item = &'a Map<String, Value>>, key: &str) -> Option<u64> {
    configs.filter_map(|c| number(c, key)).min()
}

/// What weakens the models of `sets`: training steps below the paper's.
pub fn training(sets: &[Set]) -> Vec<String> {
    let steps = sets
        .iter()
        .flat_map(|s| &s.models)
        .filter_map(|m| Some(number(&m.config, "epochs")? * number(&m.config, "steps")?))
        .min();
    match steps {
        Some(s) if s < PAPER_TRAINING_STEPS => vec![format!(
            "models trained {s} steps (epochs x steps; the paper: {PAPER_TRAINING_STEPS})"
        )],
        None => vec!["the models' JSON do not record their epochs and steps".to_string()],
        _ => Vec::new(),
    }
}

/// What weakens the FGSM study of `sets`: fewer images than the paper's.
pub fn fgsm(sets: &[Set]) -> Vec<String> {
    match least(sets.iter().map(|s| &s.attack.config), "n") {
        Some(n) if n < PAPER_IMAGES => vec![format!(
            "{n} FGSM images per set (the paper: {PAPER_IMAGES})"
        )],
        None => vec!["adversarial/fgsm/meta.json does not record its image count".to_string()],
        _ => Vec::new(),
    }
}

/// What weakens the robustness attacks of `sets` against `adversary-gen robust`'s
/// defaults.
pub fn robust(sets: &[Set]) -> Vec<String> {
    let configs: Vec<&Map<String, Value>> = sets
        .iter()
        .filter_map(|s| s.robust.attack_config.as_ref())
        .collect();
    if configs.is_empty() {
        return vec!["adversarial/robust/meta.json does not record the attack settings".into()];
    }
    let mut weak = Vec::new();
    // (key, default, what, whether a run without the key is weakened): APGD and Square
    // are absent from runs made before they existed, and nothing is said of what did
    // not run.
    let checks = [
        ("steps", budget::PGD_STEPS, "PGD steps", true),
        ("restarts", budget::PGD_RESTARTS, "PGD restarts", true),
        ("n", budget::IMAGES as usize, "images per set", true),
        ("apgd_n_iter", budget::APGD_N_ITER, "APGD iterations", false),
        (
            "apgd_n_restarts",
            budget::APGD_N_RESTARTS,
            "APGD restarts",
            false,
        ),
        (
            "apgd_odi_steps",
            budget::APGD_ODI_STEPS,
            "APGD output-diversified steps",
            false,
        ),
        (
            "apgd_n_target_classes",
            budget::APGD_N_TARGET_CLASSES,
            "APGD-T target classes",
            false,
        ),
        (
            "square_n_queries",
            budget::SQUARE_N_QUERIES,
            "Square queries",
            false,
        ),
    ];
    for (key, default, what, required) in checks {
        match least(configs.iter().copied(), key) {
            Some(v) if v < default as u64 => weak.push(format!("{v} {what} (default {default})")),
            None if required => weak.push(format!("no record of the {what}")),
            _ => {}
        }
    }
    // A run with APGD but without a loss of today's ensemble (an older adversary-gen)
    // broke fewer images than today's would at the same budgets.
    let mut missing: Vec<&str> = Vec::new();
    for set in sets {
        let ran_apgd = set
            .robust
            .attack_config
            .as_ref()
            .is_some_and(|c| c.contains_key("apgd_n_iter"));
        if !ran_apgd {
            continue;
        }
        let had = set.robust.apgd_losses.as_deref().unwrap_or_default();
        for name in budget::APGD_LOSSES {
            if !had.iter().any(|h| h == name) && !missing.contains(&name) {
                missing.push(name);
            }
        }
        // Targeted families count where the run had targets (0 is named above).
        let targets = set
            .robust
            .attack_config
            .as_ref()
            .and_then(|c| c.get("apgd_n_target_classes"))
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if targets > 0 {
            for family in budget::APGD_TARGETED_LOSSES {
                if !had.iter().any(|h| h.starts_with(family)) && !missing.contains(&family) {
                    missing.push(family);
                }
            }
        }
    }
    if !missing.is_empty() {
        weak.push(format!(
            "APGD without the {} loss of today's ensemble (an older adversary-gen; delete adversarial/robust/ to rerun)",
            missing.join(", ")
        ));
    }
    if configs.iter().any(|c| flag(c, "no_targeted")) {
        weak.push("no targeted PGD runs (--no-targeted)".into());
    }
    if configs.iter().any(|c| flag(c, "no_random_start")) {
        weak.push("no random start (--no-random-start)".into());
    }
    weak
}

/// Everything that weakens a study's numbers: training and FGSM against the paper's
/// settings, and the robust stage against its defaults where it ran.
pub fn study(sets: &[Set]) -> Vec<String> {
    let mut weak = [training(sets), fgsm(sets)].concat();
    if sets.iter().any(|s| s.robust.attack_config.is_some()) {
        weak.extend(
            robust(sets)
                .into_iter()
                .map(|w| format!("robust stage: {w}")),
        );
    }
    weak
}

/// `headline` as the page may state it given `weak`: unchanged at full strength,
/// else marked as no verdict, with the settings that make it one.
pub fn headline(headline: String, weak: &[String]) -> String {
    if weak.is_empty() {
        headline
    } else {
        format!(
            "No verdict: these settings cannot show whether the defense works ({}). What they gave: {headline}",
            weak.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_strength_keeps_the_headline_and_weak_settings_replace_it() {
        assert_eq!(headline("It worked.".into(), &[]), "It worked.");
        let h = headline("It worked.".into(), &["20 PGD steps (default 100)".into()]);
        assert!(
            h.starts_with("No verdict") && h.contains("20 PGD steps"),
            "{h}"
        );
        assert!(h.ends_with("It worked."), "{h}");
    }
}
