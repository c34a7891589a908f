//! The numbers of the robustness section, over the sets that have `make robust`'s
//! outputs: misclassification per attack, model and epsilon, each model's clean cost
//! (null or rejection rate), the FGSM-margin summary, and the verdict on whether the
//! null models' advantage survives an attack that knows them.

use nullclass::dataset::DataSet;
use nullclass::nulls::Variant;

use crate::data_set::Words;
use crate::provenance::set_list;
use crate::robust::{self, attack_order, matched_null, same_eps, Attacks, Margin};
use crate::sets::Set;
use crate::stats::{median, quantile, MeanStd};

/// The attacks and epsilons of the robustness table: the two transfer attacks (made
/// on the baseline, as the report's FGSM) and PGD on each model itself.
pub const TABLE_ATTACKS: [&str; 6] = [
    "fgsm-transfer",
    "pgd-transfer",
    "pgd-adaptive",
    "apgd",
    "square",
    "worst-case",
];
/// Figure 21's bars: the two transfer attacks and PGD on the model itself.
pub const FIG21_ATTACKS: [&str; 3] = ["fgsm-transfer", "pgd-transfer", "pgd-adaptive"];

/// The verdict compares the mixed-null models (those the main verdict credits) with
/// the baseline and with their matching rejection baseline, under the pointwise worst
/// case over every attack ([`VERDICT_ATTACK`]; sets scored before it existed are
/// judged under [`FALLBACK_ATTACK`], and the page says so) at
/// [`VERDICT_EPS`]: the advantage survives if the null model misclassifies at least
/// [`VERDICT_GAP`] percentage points less than both, and at most
/// [`VERDICT_CEILING`] percent of the images: a model that is beaten on 85 % of them
/// is not defended, whatever the gap.
pub const VERDICT_MODELS: [&str; 4] = ["m", "um", "sm", "usm"];
pub const VERDICT_ATTACK: &str = "worst-case";
pub const FALLBACK_ATTACK: &str = "pgd-adaptive";
/// MNIST's radius; a study of another data set is judged at the largest of its own
/// [`Words::attack_radii`] (Fashion-MNIST's 0.2), see [`Robustness::verdict_eps`].
pub const VERDICT_EPS: f64 = 0.3;
pub const VERDICT_GAP: f64 = 10.0;
pub const VERDICT_CEILING: f64 = 50.0;

/// Outcome index of a misclassification (a digit other than the label).
const MISCLASSIFIED: usize = 1;

/// One set's attack scores with its clean numbers from clean.csv.
pub struct AttackSet<'a> {
    pub name: &'a str,
    pub attacks: &'a Attacks,
    /// Per model (`Variant::ALL` order): clean accuracy and null rate, percent.
    pub clean: &'a [[f64; 2]],
}

pub struct Robustness<'a> {
    pub attack_sets: Vec<AttackSet<'a>>,
    pub margin_sets: Vec<(&'a str, &'a [Margin])>,
    /// Per set with robust_error.csv, its rows.
    pub error_sets: Vec<(&'a str, &'a [robust::RobustError])>,
    /// Per set, the robustness files it has that could not be used, with why.
    pub problems: Vec<(String, String)>,
    /// Sets with none of the robustness files.
    pub without: Vec<String>,
    /// The tables' radii: those that fit the data set ([`Words::attack_radii`]), so a
    /// Fashion-MNIST study attacked up to 0.2 gets no column of n/a at 0.3. The
    /// largest is the verdict's ([`Robustness::verdict_eps`]).
    pub table_eps: &'static [f64],
}

/// The FGSM-margin search of one model, over sets: percentages of its images.
pub struct MarginSummary {
    pub found: MeanStd,
    pub no_flip: MeanStd,
    pub wrong_clean: MeanStd,
    /// Over the sets where some image flipped (the median is NaN otherwise).
    pub median_threshold: MeanStd,
    pub share_below: MeanStd,
}

/// One mixed-null model against the baseline and its rejection baseline.
pub struct Judgement {
    pub model: &'static str,
    /// Mean misclassified percent under [`VERDICT_ATTACK`] at [`VERDICT_EPS`]; NaN
    /// where no set has the row.
    pub null: f64,
    pub base: f64,
    pub reject: f64,
}

impl Judgement {
    /// `None` when one of the three numbers is missing.
    pub fn survives(&self) -> Option<bool> {
        let all = [self.null, self.base, self.reject];
        // A gap of exactly VERDICT_GAP counts ("at least"); the tolerance keeps a
        // mean like 55.000000000000007 from flipping it.
        let below = |other: f64| other - self.null >= VERDICT_GAP - 1e-9;
        all.iter()
            .all(|v| v.is_finite())
            .then_some(below(self.base) && below(self.reject) && self.null <= VERDICT_CEILING)
    }
}

fn values(list: impl Iterator<Item = Option<f64>>) -> Vec<f64> {
    list.flatten().collect()
}

impl<'a> Robustness<'a> {
    /// The radius of the verdict and of Figure 21: [`VERDICT_EPS`] on MNIST, the
    /// largest radius that fits the data set otherwise.
    pub fn verdict_eps(&self) -> f64 {
        self.table_eps.last().copied().unwrap_or(VERDICT_EPS)
    }

    pub fn of(sets: &'a [Set]) -> Self {
        let mut r = Self {
            attack_sets: Vec::new(),
            margin_sets: Vec::new(),
            error_sets: Vec::new(),
            problems: Vec::new(),
            without: Vec::new(),
            table_eps: sets
                .first()
                .map_or(DataSet::Mnist, |s| s.dataset)
                .attack_radii(),
        };
        for set in sets {
            if !set.robust.any() {
                r.without.push(set.name.clone());
            }
            if let Some(attacks) = &set.robust.attacks {
                r.attack_sets.push(AttackSet {
                    name: &set.name,
                    attacks,
                    clean: &set.clean,
                });
            }
            if let Some(e) = &set.robust.robust_error {
                r.error_sets.push((&set.name, e));
            }
            if let Some(margin) = &set.robust.margin {
                r.margin_sets.push((&set.name, margin));
            }
            r.problems.extend(
                set.robust
                    .problems
                    .iter()
                    .map(|p| (set.name.clone(), p.clone())),
            );
        }
        r
    }

    /// The attack the verdict and Figure 20 use: the worst case when every set with
    /// attack scores has it, else (older outputs) adaptive PGD.
    pub fn verdict_attack(&self) -> &'static str {
        let all = self
            .attack_sets
            .iter()
            .all(|s| s.attacks.scores.iter().any(|x| x.attack == VERDICT_ATTACK));
        if all && !self.attack_sets.is_empty() {
            VERDICT_ATTACK
        } else {
            FALLBACK_ATTACK
        }
    }

    /// Robust error with rejection, percent of the sources, over the sets that have
    /// the row; with the rejection rule of the first set's row.
    pub fn robust_error(&self, model: &str, eps: f64) -> (MeanStd, Option<&str>) {
        let rows: Vec<&robust::RobustError> = self
            .error_sets
            .iter()
            .filter_map(|(_, rows)| {
                rows.iter()
                    .find(|r| r.model == model && same_eps(r.eps, eps))
            })
            .collect();
        let pct: Vec<f64> = rows
            .iter()
            .map(|r| 100.0 * r.robust_errors as f64 / r.n as f64)
            .collect();
        (MeanStd::of(&pct), rows.first().map(|r| r.rejects.as_str()))
    }

    /// The models robust_error.csv names, in the first set's order.
    pub fn error_models(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (_, rows) in &self.error_sets {
            for r in rows.iter() {
                if !names.contains(&r.model) {
                    names.push(r.model.clone());
                }
            }
        }
        names
    }

    /// Whether any set has any robustness file, usable or not: the section is shown.
    pub fn any(&self) -> bool {
        !self.attack_sets.is_empty() || !self.margin_sets.is_empty() || !self.problems.is_empty()
    }

    /// The models some set scored, in the report's order.
    pub fn models(&self) -> Vec<String> {
        robust::models()
            .into_iter()
            .filter(|m| self.attack_sets.iter().any(|s| s.attacks.has_model(m)))
            .collect()
    }

    pub fn attacks(&self) -> Vec<String> {
        attack_order(
            self.attack_sets
                .iter()
                .flat_map(|s| s.attacks.scores.iter().map(|r| r.attack.as_str())),
        )
    }

    /// Every epsilon some set ran `attack` at, ascending.
    pub fn eps(&self, attack: &str) -> Vec<f64> {
        let mut eps: Vec<f64> = Vec::new();
        for s in &self.attack_sets {
            for r in s.attacks.scores.iter().filter(|r| r.attack == attack) {
                if !eps.iter().any(|e| same_eps(*e, r.eps)) {
                    eps.push(r.eps);
                }
            }
        }
        eps.sort_by(f64::total_cmp);
        eps
    }

    /// Per set that has the row, the percent of images with `outcome`.
    pub fn percents(&self, attack: &str, model: &str, eps: f64, outcome: usize) -> Vec<f64> {
        values(
            self.attack_sets
                .iter()
                .map(|s| s.attacks.percent(attack, model, eps, outcome)),
        )
    }

    /// Mean ± std over sets of the percent misclassified; n = 0 (mean NaN) if no set
    /// has the row.
    pub fn misclassified(&self, attack: &str, model: &str, eps: f64) -> MeanStd {
        MeanStd::of(&self.percents(attack, model, eps, MISCLASSIFIED))
    }

    /// How many sets scored `model` at all.
    pub fn sets_with(&self, model: &str) -> usize {
        self.attack_sets
            .iter()
            .filter(|s| s.attacks.has_model(model))
            .count()
    }

    /// What the model pays on clean digits, percent: its null rate on the clean test
    /// set, or for a rejection baseline its clean rejection rate.
    pub fn clean_cost(&self, model: &str) -> MeanStd {
        let scored = self
            .attack_sets
            .iter()
            .filter(|s| s.attacks.has_model(model));
        if matched_null(model).is_some() {
            return MeanStd::of(&values(scored.map(|s| {
                s.attacks
                    .rejection(model)
                    .map(|r| 100.0 * r.clean_reject_rate)
            })));
        }
        let Some(m) = Variant::ALL.iter().position(|v| *v == model) else {
            return MeanStd::of(&[]);
        };
        MeanStd::of(&scored.map(|s| s.clean[m][1]).collect::<Vec<_>>())
    }

    /// A rejection baseline's confidence threshold over sets.
    pub fn tau(&self, model: &str) -> MeanStd {
        MeanStd::of(&values(
            self.attack_sets
                .iter()
                .map(|s| s.attacks.rejection(model).map(|r| r.tau)),
        ))
    }

    /// Misclassified percent against epsilon: (eps, 25 %, median, 75 % over sets) at
    /// every epsilon some set has for this model.
    pub fn band(&self, attack: &str, model: &str) -> Vec<(f64, f64, f64, f64)> {
        self.eps(attack)
            .into_iter()
            .filter_map(|eps| {
                let v = self.percents(attack, model, eps, MISCLASSIFIED);
                (!v.is_empty()).then(|| (eps, quantile(&v, 0.25), median(&v), quantile(&v, 0.75)))
            })
            .collect()
    }

    /// The epsilon of the transfer-vs-adaptive bars: [`VERDICT_EPS`] if some set has
    /// it for one of the table's attacks, else the largest epsilon they have.
    pub fn bar_eps(&self) -> Option<f64> {
        let eps: Vec<f64> = FIG21_ATTACKS.iter().flat_map(|a| self.eps(a)).collect();
        if eps.iter().any(|e| same_eps(*e, self.verdict_eps())) {
            return Some(self.verdict_eps());
        }
        eps.into_iter().max_by(f64::total_cmp)
    }

    pub fn margin(&self, model: &str) -> Option<MarginSummary> {
        let rows: Vec<&Margin> = self
            .margin_sets
            .iter()
            .filter_map(|(_, rows)| rows.iter().find(|r| r.model == model))
            .collect();
        if rows.is_empty() {
            return None;
        }
        let pct = |f: fn(&Margin) -> u64| {
            MeanStd::of(
                &rows
                    .iter()
                    .map(|r| 100.0 * f(r) as f64 / r.n as f64)
                    .collect::<Vec<_>>(),
            )
        };
        let medians: Vec<f64> = rows
            .iter()
            .map(|r| r.median_threshold)
            .filter(|m| m.is_finite())
            .collect();
        Some(MarginSummary {
            found: pct(|r| r.found),
            no_flip: pct(|r| r.no_flip),
            wrong_clean: pct(|r| r.wrong_clean),
            median_threshold: MeanStd::of(&medians),
            share_below: MeanStd::of(
                &rows
                    .iter()
                    .map(|r| 100.0 * r.share_below_0_4)
                    .collect::<Vec<_>>(),
            ),
        })
    }

    pub fn judgements(&self) -> Vec<Judgement> {
        let attack = self.verdict_attack();
        let mean = |model: &str| self.misclassified(attack, model, self.verdict_eps()).mean;
        VERDICT_MODELS
            .iter()
            .map(|&model| Judgement {
                model,
                null: mean(model),
                base: mean("base"),
                reject: mean(&format!("{}{model}", robust::REJECT_PREFIX)),
            })
            .collect()
    }
}

/// The verdict box: whether it is good news, its headline and its lines.
pub fn verdict(r: &Robustness) -> (bool, String, Vec<String>) {
    let judged = r.judgements();
    let attack = r.verdict_attack();
    let what = if attack == VERDICT_ATTACK {
        "the pointwise worst case over every attack (transfer FGSM and PGD, adaptive PGD and FGSM, APGD with all its losses and targets, Square)"
    } else {
        "adaptive (white-box) PGD alone: these outputs predate the worst case over APGD and Square, rerun make robust for the stronger verdict"
    };
    let pct = |v: f64| {
        if v.is_finite() {
            format!("{v:.1} %")
        } else {
            "n/a".to_string()
        }
    };
    let gap = |a: f64, b: f64| {
        if (a - b).is_finite() {
            format!("{:+.1} points", a - b)
        } else {
            "n/a".to_string()
        }
    };
    let mut lines = vec![format!(
        "Attack: {attack}, {what}. Rule: a mixed-null model's advantage survives if its mean misclassification under {attack} at epsilon {} is at least {VERDICT_GAP:.0} percentage points below both the baseline's and its matching rejection baseline's (reject-X, same clean rejection rate as the model's clean null rate) and at most {VERDICT_CEILING:.0} %; means over {} set(s): {}.",
        r.verdict_eps(),
        r.attack_sets.len(),
        set_list(&r.attack_sets.iter().map(|s| s.name.to_string()).collect::<Vec<_>>())
    )];
    for j in &judged {
        let word = match j.survives() {
            Some(true) => "survives",
            Some(false) => "does not survive",
            None => "not judged (a number is missing)",
        };
        lines.push(format!(
            "{}: {} misclassified, baseline {} ({}), reject-{} {} ({}): {word}.",
            j.model,
            pct(j.null),
            pct(j.base),
            gap(j.null, j.base),
            j.model,
            pct(j.reject),
            gap(j.null, j.reject),
        ));
    }
    let names = |keep: Option<bool>| -> Vec<&str> {
        judged
            .iter()
            .filter(|j| j.survives() == keep)
            .map(|j| j.model)
            .collect()
    };
    let (yes, no, unjudged) = (names(Some(true)), names(Some(false)), names(None));
    let headline = if !unjudged.is_empty() {
        format!(
            "The white-box verdict cannot be given for {}: no {attack} rows at epsilon {} for the model, the baseline or the rejection baseline.",
            unjudged.join(", "),
            r.verdict_eps()
        )
    } else if no.is_empty() {
        format!(
            "The mixed-null models' advantage survives {}.",
            short(attack)
        )
    } else if yes.is_empty() {
        format!(
            "The mixed-null models' advantage does NOT survive {}.",
            short(attack)
        )
    } else {
        format!(
            "The mixed-null models' advantage survives {} only for {} (does not survive for {}).",
            short(attack),
            yes.join(", "),
            no.join(", ")
        )
    };
    let good = unjudged.is_empty() && no.is_empty();
    (good, headline, lines)
}

/// The verdict attack in a headline.
fn short(attack: &str) -> &'static str {
    if attack == VERDICT_ATTACK {
        "the worst case over all white-box and black-box attacks"
    } else {
        "adaptive PGD"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survival_needs_the_gap_to_both() {
        let j = |null, base, reject| Judgement {
            model: "m",
            null,
            base,
            reject,
        };
        assert_eq!(j(45.0, 97.5, 55.0).survives(), Some(true));
        assert_eq!(j(45.0, 97.5, 54.9).survives(), Some(false));
        assert_eq!(j(45.0, 50.0, 90.0).survives(), Some(false));
        assert_eq!(j(45.0, f64::NAN, 90.0).survives(), None);
        // A big gap is no defense when most images are still beaten.
        assert_eq!(j(85.5, 100.0, 100.0).survives(), Some(false));
        assert_eq!(j(50.0, 100.0, 100.0).survives(), Some(true));
    }
}
