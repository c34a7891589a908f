//! Reading one set's robustness outputs (`make robust`): `eval/robust.csv` (every
//! model's scores under transfer and white-box attacks, and those of the
//! confidence-rejection baselines), `eval/rejection.csv` (how each baseline's
//! threshold was chosen) and `eval/fgsm_margin.csv` (FGSM with a margin loss on each
//! model itself), complete once `eval/robust_meta.json` (written last) is there.
//!
//! They are optional. A set without them stays in the main report and is only left
//! out of the robustness section. A file that is there but malformed neither fails
//! the run nor drops the set from the main report: its part of the set is left out
//! of the robustness section, and the file is named with why, in the log and on the
//! page, so a half-written evaluator output is seen rather than averaged over.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, ensure, Result};
use nullclass::nulls::Variant;
use serde::Deserialize;

use crate::csv_rows;
use crate::sets::OutcomeCounts;

pub const ROBUST_FILE: &str = "eval/robust.csv";
pub const REJECTION_FILE: &str = "eval/rejection.csv";
pub const MARGIN_FILE: &str = "eval/fgsm_margin.csv";
/// Optional: the gradient-masking check (images with an all-zero input gradient).
pub const GRADIENT_FILE: &str = "eval/gradients.csv";
const GRADIENT_HEADER: [&str; 5] = ["attack", "model", "eps", "n", "zero_gradient"];
/// adversary-gen robust's record of the attacks' settings (steps, restarts, images).
pub const ATTACK_META_FILE: &str = "adversarial/robust/meta.json";
/// Optional: robust error with rejection per model and radius.
pub const ROBUST_ERROR_FILE: &str = "eval/robust_error.csv";
pub const ROBUST_ERROR_HEADER: [&str; 6] = [
    "model",
    "eps",
    "n",
    "clean_errors",
    "robust_errors",
    "rejects",
];
/// Written last by `evaluator robust`, after it removed the old one: CSVs without it
/// may be half-written or left from an older run.
pub const META_FILE: &str = "eval/robust_meta.json";

/// The exact headers: the evaluator and the report must agree on them, so any other
/// header (even reordered columns) is an error rather than a silent mismatch.
pub const ROBUST_HEADER: [&str; 7] = [
    "attack",
    "model",
    "eps",
    "n",
    "correct",
    "misclassified",
    "unclassified",
];
pub const REJECTION_HEADER: [&str; 6] = [
    "model",
    "matches",
    "target_null_rate",
    "tau",
    "clean_reject_rate",
    "n_test",
];
pub const MARGIN_HEADER: [&str; 7] = [
    "model",
    "n",
    "found",
    "no_flip",
    "wrong_clean",
    "median_threshold",
    "share_below_0_4",
];

/// The attacks the report knows, in the order of its tables and legends; any other
/// attack name is kept and listed after these.
pub const KNOWN_ATTACKS: [&str; 7] = [
    "fgsm-transfer",
    "pgd-transfer",
    "pgd-adaptive",
    "fgsm-adaptive",
    "apgd",
    "square",
    "worst-case",
];

/// Prefix of a confidence-rejection baseline's name: `reject-<null model>`.
pub const REJECT_PREFIX: &str = "reject-";

/// Every model robust.csv may name, in the report's order: the baseline, the null
/// models, then one rejection baseline per null model.
pub fn models() -> Vec<String> {
    let nulls = &Variant::ALL[1..];
    Variant::ALL
        .iter()
        .map(|v| v.to_string())
        .chain(nulls.iter().map(|v| format!("{REJECT_PREFIX}{v}")))
        .collect()
}

/// The null model a rejection baseline is matched to, `None` for any other model.
pub fn matched_null(model: &str) -> Option<&str> {
    model
        .strip_prefix(REJECT_PREFIX)
        .filter(|null| Variant::ALL[1..].contains(null))
}

/// Attack names in report order: the known ones first, then the others sorted.
pub fn attack_order<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let names: BTreeSet<&str> = names.into_iter().collect();
    let known = KNOWN_ATTACKS.iter().filter(|k| names.contains(*k));
    let unknown = names.iter().filter(|n| !KNOWN_ATTACKS.contains(n));
    known.chain(unknown).map(|a| a.to_string()).collect()
}

/// Two epsilons are the same grid point: the evaluator prints them shortest-form, so
/// they parse exactly, but a tolerance costs nothing.
pub fn same_eps(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// One row of robust.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub attack: String,
    pub model: String,
    pub eps: f64,
    pub counts: OutcomeCounts,
}

/// One row of rejection.csv; rates are fractions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rejection {
    pub model: String,
    pub matches: String,
    pub target_null_rate: f64,
    pub tau: f64,
    pub clean_reject_rate: f64,
    pub n_test: u64,
}

/// One row of fgsm_margin.csv. `median_threshold` is NaN when no image was flipped.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Margin {
    pub model: String,
    pub n: u64,
    pub found: u64,
    pub no_flip: u64,
    pub wrong_clean: u64,
    pub median_threshold: f64,
    pub share_below_0_4: f64,
}

/// One row of gradients.csv: of `n` images attacked, how many had an input gradient
/// of exactly zero at some step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ZeroGradient {
    pub attack: String,
    pub model: String,
    pub eps: f64,
    pub n: u64,
    pub zero_gradient: u64,
}

/// robust.csv with its rejection.csv: one is unusable without the other, since the
/// rejection baselines' clean rates (their cost) live in rejection.csv.
#[derive(Debug, Clone)]
pub struct Attacks {
    pub scores: Vec<Score>,
    pub rejection: Vec<Rejection>,
}

impl Attacks {
    fn score(&self, attack: &str, model: &str, eps: f64) -> Option<&OutcomeCounts> {
        self.scores
            .iter()
            .find(|s| s.attack == attack && s.model == model && same_eps(s.eps, eps))
            .map(|s| &s.counts)
    }

    /// Percent of the images scored `outcome` (0 correct, 1 misclassified, 2
    /// unclassified), if the set has that row.
    pub fn percent(&self, attack: &str, model: &str, eps: f64, outcome: usize) -> Option<f64> {
        self.score(attack, model, eps)
            .map(|c| c.percents()[outcome])
    }

    pub fn has_model(&self, model: &str) -> bool {
        self.scores.iter().any(|s| s.model == model)
    }

    pub fn rejection(&self, model: &str) -> Option<&Rejection> {
        self.rejection.iter().find(|r| r.model == model)
    }
}

/// One row of robust_error.csv: of `n` sources, `clean_errors` misclassified or
/// rejected when clean, `robust_errors` those or broken (accepted as a wrong digit)
/// somewhere in the ball; `rejects` is what rejection means for the model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RobustError {
    pub model: String,
    pub eps: f64,
    pub n: u64,
    pub clean_errors: u64,
    pub robust_errors: u64,
    pub rejects: String,
}

fn read_robust_error(path: &Path) -> Result<Vec<RobustError>> {
    let rows = csv_rows::read::<RobustError>(path, &ROBUST_ERROR_HEADER)?;
    for (line, r) in &rows {
        ensure!(
            r.n > 0 && r.clean_errors <= r.robust_errors && r.robust_errors <= r.n,
            "{}: row {line}: need clean_errors <= robust_errors <= n > 0",
            path.display()
        );
    }
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}

/// What one set holds of the robustness outputs.
#[derive(Debug, Clone, Default)]
pub struct Robust {
    pub attacks: Option<Attacks>,
    /// Per model that has a row, in `Variant::ALL` order.
    pub margin: Option<Vec<Margin>>,
    pub gradients: Option<Vec<ZeroGradient>>,
    /// The `config` of adversary-gen robust's meta.json: the attacks' strength.
    pub attack_config: Option<serde_json::Map<String, serde_json::Value>>,
    /// The `losses_apgd` of that meta.json: the APGD ensemble the run had.
    pub apgd_losses: Option<Vec<String>>,
    pub robust_error: Option<Vec<RobustError>>,
    /// Files that are there but could not be used, each with why.
    pub problems: Vec<String>,
}

impl Robust {
    /// Whether the set has any of the three files, usable or not.
    pub fn any(&self) -> bool {
        self.attacks.is_some() || self.margin.is_some() || !self.problems.is_empty()
    }
}

/// Reads whatever the set in `dir` has; never fails, see the module's comment.
pub fn read(dir: &Path) -> Robust {
    let mut robust = Robust::default();
    let has = |file: &str| dir.join(file).is_file();
    let present: Vec<&str> = [ROBUST_FILE, REJECTION_FILE, MARGIN_FILE]
        .into_iter()
        .filter(|f| has(f))
        .collect();
    if !present.is_empty() && !has(META_FILE) {
        robust.problems.push(format!(
            "{} {} there but {} (written last by evaluator robust) is missing: the run may be unfinished",
            present.join(", "),
            if present.len() == 1 { "is" } else { "are" },
            dir.join(META_FILE).display()
        ));
        return robust;
    }
    match (has(ROBUST_FILE), has(REJECTION_FILE)) {
        (false, false) => {}
        (true, true) => match read_attacks(dir) {
            Ok(a) => robust.attacks = Some(a),
            Err(e) => robust.problems.push(format!("{e:#}")),
        },
        (true, false) => robust.problems.push(format!(
            "{} is there but {REJECTION_FILE} is not",
            dir.join(ROBUST_FILE).display()
        )),
        (false, true) => robust.problems.push(format!(
            "{} is there but {ROBUST_FILE} is not",
            dir.join(REJECTION_FILE).display()
        )),
    }
    if has(MARGIN_FILE) {
        match read_margin(&dir.join(MARGIN_FILE)) {
            Ok(m) => robust.margin = Some(m),
            Err(e) => robust.problems.push(format!("{e:#}")),
        }
    }
    let attack_meta = std::fs::read_to_string(dir.join(ATTACK_META_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    robust.attack_config = attack_meta
        .as_ref()
        .and_then(|v| v.get("config")?.as_object().cloned());
    robust.apgd_losses = attack_meta
        .as_ref()
        .and_then(|v| serde_json::from_value(v.get("losses_apgd")?.clone()).ok());
    if has(ROBUST_ERROR_FILE) {
        match read_robust_error(&dir.join(ROBUST_ERROR_FILE)) {
            Ok(e) => robust.robust_error = Some(e),
            Err(e) => robust.problems.push(format!("{e:#}")),
        }
    }
    if has(GRADIENT_FILE) {
        match read_gradients(&dir.join(GRADIENT_FILE)) {
            Ok(g) => robust.gradients = Some(g),
            Err(e) => robust.problems.push(format!("{e:#}")),
        }
    }
    robust
}

fn read_gradients(path: &Path) -> Result<Vec<ZeroGradient>> {
    let rows = csv_rows::read::<ZeroGradient>(path, &GRADIENT_HEADER)?;
    for (line, r) in &rows {
        ensure!(
            r.zero_gradient <= r.n,
            "{}: row {line}: {} zero-gradient images of {}",
            path.display(),
            r.zero_gradient,
            r.n
        );
    }
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}

#[derive(Deserialize)]
struct ScoreRow {
    attack: String,
    model: String,
    eps: f64,
    n: u64,
    correct: u64,
    misclassified: u64,
    unclassified: u64,
}

fn read_attacks(dir: &Path) -> Result<Attacks> {
    let path = dir.join(ROBUST_FILE);
    let known = models();
    let mut scores: Vec<Score> = Vec::new();
    for (line, r) in csv_rows::read::<ScoreRow>(&path, &ROBUST_HEADER)? {
        let at = || format!("{}: row {line}", path.display());
        ensure!(!r.attack.trim().is_empty(), "{}: no attack name", at());
        ensure!(
            known.contains(&r.model),
            "{}: unknown model {:?} (expected one of {})",
            at(),
            r.model,
            known.join(", ")
        );
        ensure!(
            r.eps.is_finite() && r.eps >= 0.0,
            "{}: epsilon {} is not a finite number >= 0",
            at(),
            r.eps
        );
        let outcomes = [r.correct, r.misclassified, r.unclassified];
        ensure!(
            r.n > 0 && outcomes.iter().sum::<u64>() == r.n,
            "{}: counts {outcomes:?} do not add up to n = {}",
            at(),
            r.n
        );
        let duplicate = scores
            .iter()
            .any(|s| s.attack == r.attack && s.model == r.model && same_eps(s.eps, r.eps));
        ensure!(
            !duplicate,
            "{}: a second row for {} / {} / eps {}",
            at(),
            r.attack,
            r.model,
            r.eps
        );
        scores.push(Score {
            attack: r.attack,
            model: r.model,
            eps: r.eps,
            counts: OutcomeCounts { n: r.n, outcomes },
        });
    }
    ensure!(!scores.is_empty(), "{}: no rows", path.display());

    let path = dir.join(REJECTION_FILE);
    let mut rejection: Vec<Rejection> = Vec::new();
    for (line, r) in csv_rows::read::<Rejection>(&path, &REJECTION_HEADER)? {
        let at = || format!("{}: row {line}", path.display());
        let Some(null) = matched_null(&r.model) else {
            bail!(
                "{}: {:?} is not a rejection baseline (reject-<null model>)",
                at(),
                r.model
            );
        };
        ensure!(
            r.matches == null,
            "{}: {} is matched to {:?}, expected {null:?}",
            at(),
            r.model,
            r.matches
        );
        let fraction = |v: f64| (0.0..=1.0).contains(&v);
        ensure!(
            fraction(r.target_null_rate) && fraction(r.clean_reject_rate) && r.tau.is_finite(),
            "{}: target_null_rate and clean_reject_rate must be fractions, tau finite",
            at()
        );
        ensure!(r.n_test > 0, "{}: n_test is 0", at());
        ensure!(
            rejection.iter().all(|o| o.model != r.model),
            "{}: a second row for {}",
            at(),
            r.model
        );
        rejection.push(r);
    }
    // Without its clean rejection rate a baseline's row in the table would show its
    // attack scores with no cost beside them.
    for s in &scores {
        ensure!(
            matched_null(&s.model).is_none() || rejection.iter().any(|r| r.model == s.model),
            "{} has rows for {} but {} has none",
            dir.join(ROBUST_FILE).display(),
            s.model,
            path.display()
        );
    }
    Ok(Attacks { scores, rejection })
}

fn read_margin(path: &Path) -> Result<Vec<Margin>> {
    let mut rows: Vec<Margin> = Vec::new();
    for (line, r) in csv_rows::read::<Margin>(path, &MARGIN_HEADER)? {
        let at = || format!("{}: row {line}", path.display());
        ensure!(
            Variant::ALL.contains(&r.model.as_str()),
            "{}: unknown model {:?}",
            at(),
            r.model
        );
        ensure!(
            r.n > 0 && r.found + r.no_flip + r.wrong_clean == r.n,
            "{}: found {} + no_flip {} + wrong_clean {} do not add up to n = {}",
            at(),
            r.found,
            r.no_flip,
            r.wrong_clean,
            r.n
        );
        // NaN is the evaluator's word for "no image flipped": allowed only then.
        ensure!(
            r.median_threshold.is_finite() || (r.found == 0 && r.median_threshold.is_nan()),
            "{}: median_threshold {} with {} images found",
            at(),
            r.median_threshold,
            r.found
        );
        let found_share = r.found as f64 / r.n as f64;
        ensure!(
            (0.0..=found_share + 1e-9).contains(&r.share_below_0_4),
            "{}: share_below_0_4 {} is not a fraction of n no larger than found / n = {found_share}",
            at(),
            r.share_below_0_4
        );
        ensure!(
            rows.iter().all(|o| o.model != r.model),
            "{}: a second row for {}",
            at(),
            r.model
        );
        rows.push(r);
    }
    ensure!(!rows.is_empty(), "{}: no rows", path.display());
    rows.sort_by_key(|r| Variant::ALL.iter().position(|v| *v == r.model));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_order() {
        assert_eq!(models().len(), 15);
        assert_eq!(models()[8], "reject-u");
        assert_eq!(matched_null("reject-usm"), Some("usm"));
        assert_eq!(matched_null("reject-base"), None);
        assert_eq!(matched_null("usm"), None);
        assert_eq!(
            attack_order(["zeta", "pgd-adaptive", "alpha", "fgsm-transfer", "zeta"]),
            ["fgsm-transfer", "pgd-adaptive", "alpha", "zeta"]
        );
    }

    fn write(dir: &Path, file: &str, text: &str) {
        std::fs::create_dir_all(dir.join("eval")).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
    }

    #[test]
    fn reads_and_rejects() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        assert!(!read(dir).any());
        write(dir, MARGIN_FILE, "");
        let r = read(dir);
        assert!(r.margin.is_none() && r.problems[0].contains("robust_meta.json"));
        std::fs::remove_file(dir.join(MARGIN_FILE)).unwrap();
        write(dir, META_FILE, "{}");
        write(
            dir,
            ROBUST_FILE,
            "attack,model,eps,n,correct,misclassified,unclassified\n\
             pgd-adaptive,base,0.3,10,1,9,0\npgd-adaptive,reject-m,0.3,10,1,4,5\n",
        );
        let r = read(dir);
        assert!(r.attacks.is_none() && r.problems[0].contains("rejection.csv"));
        write(
            dir,
            REJECTION_FILE,
            "model,matches,target_null_rate,tau,clean_reject_rate,n_test\nreject-m,m,0.01,0.9,0.01,100\n",
        );
        let r = read(dir);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let a = r.attacks.unwrap();
        assert_eq!(a.percent("pgd-adaptive", "reject-m", 0.3, 1), Some(40.0));
        assert_eq!(a.percent("pgd-adaptive", "m", 0.3, 1), None);

        write(
            dir,
            MARGIN_FILE,
            "model,n,found,no_flip,wrong_clean,median_threshold,share_below_0_4\n\
             usm,10,0,9,1,NaN,0\nbase,10,9,0,1,0.2,0.8\n",
        );
        let m = read(dir).margin.unwrap();
        assert_eq!(m[0].model, "base");
        assert!(m[1].median_threshold.is_nan());

        // A share larger than found / n is an evaluator bug, named with its row.
        write(
            dir,
            MARGIN_FILE,
            "model,n,found,no_flip,wrong_clean,median_threshold,share_below_0_4\nbase,10,2,7,1,0.2,0.5\n",
        );
        let r = read(dir);
        assert!(r.margin.is_none());
        assert!(
            r.problems[0].contains("fgsm_margin.csv: row 2"),
            "{:?}",
            r.problems
        );
    }
}
