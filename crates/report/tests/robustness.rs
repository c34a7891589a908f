//! The robustness section of `report study` ("Beyond the report") on synthetic sets
//! with hand-chosen robust.csv, rejection.csv and fgsm_margin.csv: its tables hold
//! the hand-computed numbers, its figures decode at their sizes, its verdict follows
//! the stated rule; without the files the section is one line and the main report is
//! unchanged; a malformed file is named and left out of the section only (the set
//! stays in the main report, the run succeeds).

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// Images per attack row.
const NR: u64 = 20;
const GRID_0: [f64; 4] = [0.0, 0.1, 0.2, 0.3];
/// Set 1 has one more epsilon than set 0: the figures take the union.
const GRID_1: [f64; 5] = [0.0, 0.05, 0.1, 0.2, 0.3];

const HEADING: &str = "Beyond the report: white-box attacks and a confidence-rejection baseline";

fn models() -> Vec<String> {
    VARIANTS
        .iter()
        .map(|v| v.to_string())
        .chain(VARIANTS[1..].iter().map(|v| format!("reject-{v}")))
        .collect()
}

/// (misclassified, unclassified) of [`NR`] images: the hand-chosen cells the tests
/// check, else a filler that rises with epsilon.
fn cell(set: usize, attack: usize, model: &str, eps: f64) -> (u64, u64) {
    let name = [
        "fgsm-transfer",
        "pgd-transfer",
        "pgd-adaptive",
        "fgsm-adaptive",
    ][attack];
    let at = |e: f64| (eps - e).abs() < 1e-9;
    let chosen = match (name, model) {
        ("fgsm-transfer", "base") if at(0.1) => Some([(6, 0), (8, 0)]),
        ("pgd-transfer", "u") if at(0.2) => Some([(3, 1), (5, 1)]),
        // Adaptive PGD at 0.3, the verdict's cells: m is exactly 10 points below
        // reject-m (survives, "at least"), um only 5 (does not), sm 75 below both
        // (survives), usm above its rejection baseline (does not).
        ("pgd-adaptive", "base") if at(0.3) => Some([(20, 0), (19, 0)]),
        ("pgd-adaptive", "m") if at(0.3) => Some([(10, 5), (8, 5)]),
        ("pgd-adaptive", "reject-m") if at(0.3) => Some([(11, 2), (11, 2)]),
        ("pgd-adaptive", "um") if at(0.3) => Some([(15, 2), (15, 2)]),
        ("pgd-adaptive", "reject-um") if at(0.3) => Some([(16, 1), (16, 1)]),
        ("pgd-adaptive", "sm") if at(0.3) => Some([(4, 10), (6, 10)]),
        ("pgd-adaptive", "reject-sm") if at(0.3) => Some([(20, 0), (20, 0)]),
        ("pgd-adaptive", "usm") if at(0.3) => Some([(18, 0), (18, 0)]),
        ("pgd-adaptive", "reject-usm") if at(0.3) => Some([(14, 3), (14, 3)]),
        _ => None,
    };
    if let Some(c) = chosen {
        return c[set];
    }
    let mis = ((eps * 40.0).round() as u64 + attack as u64 + set as u64).min(NR);
    let unclassified = if model == "base" { 0 } else { 2.min(NR - mis) };
    (mis, unclassified)
}

/// Writes the three robustness files of set `set` over `grid`.
fn write_robust(dir: &Path, set: usize, grid: &[f64]) {
    let mut robust = String::from("attack,model,eps,n,correct,misclassified,unclassified\n");
    // fgsm-adaptive only in set 1; an attack the report does not know only in set 0.
    let attacks: &[usize] = if set == 0 { &[0, 1, 2] } else { &[0, 1, 2, 3] };
    for &a in attacks {
        let name = [
            "fgsm-transfer",
            "pgd-transfer",
            "pgd-adaptive",
            "fgsm-adaptive",
        ][a];
        for model in models() {
            for &eps in grid {
                let (mis, un) = cell(set, a, &model, eps);
                robust += &format!("{name},{model},{eps:?},{NR},{},{mis},{un}\n", NR - mis - un);
            }
        }
    }
    if set == 0 {
        robust += "cw-adaptive,base,0.1,20,10,10,0\n";
    }
    write(&dir.join("eval/robust.csv"), &robust);

    // reject-usm: clean rejection 1.1 % and 1.9 %, tau 0.8 and 0.9.
    let mut rejection =
        String::from("model,matches,target_null_rate,tau,clean_reject_rate,n_test\n");
    for v in &VARIANTS[1..] {
        let (rate, tau) = match (*v, set) {
            ("usm", 0) => (0.011, 0.8),
            ("usm", _) => (0.019, 0.9),
            _ => (0.004, 0.7),
        };
        rejection += &format!("reject-{v},{v},{rate},{tau},{rate},10000\n");
    }
    write(&dir.join("eval/rejection.csv"), &rejection);

    let mut margin =
        String::from("model,n,found,no_flip,wrong_clean,median_threshold,share_below_0_4\n");
    for v in VARIANTS {
        margin += match (v, set) {
            ("base", 0) => "base,20,18,1,1,0.12,0.85\n".to_string(),
            ("base", _) => "base,20,16,3,1,0.16,0.7\n".to_string(),
            // No image flipped in set 0: the median is NaN there.
            ("usm", 0) => "usm,20,0,19,1,NaN,0\n".to_string(),
            ("usm", _) => "usm,20,2,17,1,0.5,0.05\n".to_string(),
            _ => format!("{v},20,10,9,1,0.3,0.25\n"),
        }
        .as_str();
    }
    write(&dir.join("eval/fgsm_margin.csv"), &margin);
    // Gradient-masking check: set 1's usm had 3 zero-gradient images at eps 0.3.
    let usm_zero = if set == 1 { 3 } else { 0 };
    write(
        &dir.join("eval/gradients.csv"),
        &format!(
            "attack,model,eps,n,zero_gradient\n\
             pgd-adaptive,base,0.3,20,0\n\
             pgd-adaptive,usm,0.3,20,{usm_zero}\n\
             fgsm-adaptive,usm,0.0,20,0\n"
        ),
    );
    write(
        &dir.join("eval/robust_meta.json"),
        r#"{"tool": "evaluator robust"}"#,
    );
}

fn pages(dir: &Path) -> (String, String) {
    (
        fs::read_to_string(dir.join("index.html")).unwrap(),
        fs::read_to_string(dir.join("report.md")).unwrap(),
    )
}

/// Every link of the page names a file that exists.
fn links_exist(dir: &Path, html: &str) {
    for link in links(html) {
        assert!(
            dir.join(&link).is_file(),
            "index.html links to {link}, which does not exist"
        );
    }
}

#[test]
fn two_sets_with_robustness_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_robust(&make_set(root, 0), 0, &GRID_0);
    write_robust(&make_set(root, 1), 1, &GRID_1);
    let out = report(root);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("robustness section"), "{log}");
    let dir = root.join("report");

    assert_eq!(
        png_size(&dir.join("figures/fig20_adaptive_pgd.png")),
        (1700, 660)
    );
    assert_eq!(
        png_size(&dir.join("figures/fig21_transfer_vs_adaptive.png")),
        (1800, 640)
    );

    let rob = csv(&dir.join("tables/robustness.csv"));
    assert_eq!(
        rob.iter().map(|r| r["model"].clone()).collect::<Vec<_>>(),
        models()
    );
    // base: fgsm-transfer at 0.1 is 6 and 8 of 20 (30 and 40 %); adaptive PGD at 0.3
    // is 20 and 19 of 20. Its clean null rate is clean.csv's 0. Stds are population
    // stds (ddof 0), as the published error bars.
    let base = row(&rob, "model", "base");
    assert_eq!(base["sets"], "2");
    close(&base["clean_null_rate_mean"], 0.0);
    close(&base["fgsm-transfer_eps0.1_mean"], 35.0);
    close(&base["fgsm-transfer_eps0.1_std"], 5.0);
    close(&base["pgd-adaptive_eps0.3_mean"], 97.5);
    close(&base["pgd-adaptive_eps0.3_std"], 2.5);
    assert_eq!(base["tau_mean"], "n/a");
    let u = row(&rob, "model", "u");
    close(&u["pgd-transfer_eps0.2_mean"], 20.0);
    close(&u["pgd-transfer_eps0.2_std"], 5.0);
    close(&u["clean_null_rate_mean"], 0.4);
    close(&u["clean_null_rate_std"], 0.0);
    // usm's clean null rate is clean.csv's 1 and 2 %; reject-usm's is its clean
    // rejection rate from rejection.csv, 1.1 and 1.9 %.
    let usm = row(&rob, "model", "usm");
    close(&usm["clean_null_rate_mean"], 1.5);
    close(&usm["clean_null_rate_std"], 0.5);
    close(&usm["pgd-adaptive_eps0.3_mean"], 90.0);
    let reject_usm = row(&rob, "model", "reject-usm");
    close(&reject_usm["clean_null_rate_mean"], 1.5);
    close(&reject_usm["clean_null_rate_std"], 0.4);
    close(&reject_usm["tau_mean"], 0.85);
    close(&reject_usm["tau_std"], 0.05);
    close(&reject_usm["pgd-adaptive_eps0.3_mean"], 70.0);
    let reject_m = row(&rob, "model", "reject-m");
    close(&reject_m["pgd-adaptive_eps0.3_mean"], 55.0);
    close(&reject_m["pgd-adaptive_eps0.3_std"], 0.0);
    // The default cells: fgsm-transfer (attack 0) on um at 0.2 is 8 + set of 20.
    close(&row(&rob, "model", "um")["fgsm-transfer_eps0.2_mean"], 42.5);

    let md = fs::read_to_string(dir.join("tables/robustness.md")).unwrap();
    assert!(
        md.contains("| base | 2 | 0.00 ± 0.00 | 35.0 ± 5.0 |"),
        "{md}"
    );

    // FGSM margin: base found 18 and 16 of 20, medians 0.12 and 0.16, shares 85 and
    // 70 %; usm found none in set 0 (NaN median, left out of the median's mean).
    let margin = csv(&dir.join("tables/fgsm_margin.csv"));
    let base = row(&margin, "model", "base");
    close(&base["found_pct_mean"], 85.0);
    close(&base["found_pct_std"], 5.0);
    close(&base["median_threshold_mean"], 0.14);
    close(&base["median_threshold_std"], 0.02);
    close(&base["share_below_0.4_pct_mean"], 77.5);
    close(&base["share_below_0.4_pct_std"], 7.5);
    let usm = row(&margin, "model", "usm");
    close(&usm["found_pct_mean"], 5.0);
    assert_eq!(usm["median_threshold_sets"], "1");
    close(&usm["median_threshold_mean"], 0.5);
    assert_eq!(usm["median_threshold_std"], "n/a");
    close(&usm["share_below_0.4_pct_mean"], 2.5);

    // The long CSV: known attacks first in their order, the unknown one kept, last.
    let curves = csv(&dir.join("tables/robust_curves.csv"));
    let mut attacks: Vec<String> = curves.iter().map(|r| r["attack"].clone()).collect();
    attacks.dedup();
    assert_eq!(
        attacks,
        [
            "fgsm-transfer",
            "pgd-transfer",
            "pgd-adaptive",
            "fgsm-adaptive",
            "cw-adaptive"
        ]
    );
    let point = curves
        .iter()
        .find(|r| r["attack"] == "pgd-adaptive" && r["model"] == "base" && r["eps"] == "0.3")
        .unwrap();
    assert_eq!(point["sets"], "2");
    close(&point["misclassified_p25"], 96.25);
    close(&point["misclassified_median"], 97.5);
    close(&point["misclassified_p75"], 98.75);
    let only_set_1 = curves
        .iter()
        .find(|r| r["attack"] == "pgd-adaptive" && r["model"] == "base" && r["eps"] == "0.05")
        .unwrap();
    assert_eq!(only_set_1["sets"], "1");

    // The verdict by the rule: m (exactly 10 points below reject-m) and sm survive,
    // um (5 points) and usm (above reject-usm) do not.
    let (html, md) = pages(&dir);
    for page in [&html, &md] {
        assert!(page.contains(HEADING));
        assert!(page.contains(
            "The mixed-null models' advantage survives adaptive PGD only for m, sm (does not survive for um, usm)."
        ));
        assert!(page.contains("at least 10 percentage points below both"));
        assert!(page.contains(
            "m: 45.0 % misclassified, baseline 97.5 % (-52.5 points), reject-m 55.0 % (-10.0 points): survives."
        ));
        assert!(page.contains(
            "um: 75.0 % misclassified, baseline 97.5 % (-22.5 points), reject-um 80.0 % (-5.0 points): does not survive."
        ));
        assert!(page.contains("White-box check"));
        assert!(
            page.contains("pgd-adaptive: 3 of 80 (models usm); fgsm-adaptive: 0 of 40"),
            "gradient-masking line"
        );
        assert!(page.contains("figures/fig20_adaptive_pgd.png"));
        assert!(page.contains("figures/fig21_transfer_vs_adaptive.png"));
        assert!(page.contains("tables/robust_curves.csv"));
        assert!(!page.contains("make robust` to add them"));
    }
    links_exist(&dir, &html);
}

#[test]
fn without_robustness_outputs_the_section_is_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_set(root, 0);
    make_set(root, 1);
    let out = report(root);
    assert!(out.status.success(), "{}", text(&out));
    let dir = root.join("report");
    let (html, md) = pages(&dir);
    for page in [&html, &md] {
        assert!(!page.contains(HEADING));
        assert!(!page.contains("White-box check"));
        assert!(page.contains("were not run for any set: run `make robust` to add them."));
    }
    for file in [
        "figures/fig20_adaptive_pgd.png",
        "figures/fig21_transfer_vs_adaptive.png",
        "tables/robustness.csv",
        "tables/fgsm_margin.csv",
        "tables/robust_curves.csv",
    ] {
        assert!(!dir.join(file).exists(), "{file} written without inputs");
    }
    // The main report is whole.
    assert_eq!(
        row(
            &csv(&dir.join("tables/clean_accuracy.csv")),
            "model",
            "base"
        )["sets"],
        "2"
    );
    assert!(dir.join("figures/fig19_misclassified.png").is_file());
    links_exist(&dir, &html);
}

#[test]
fn a_set_without_the_files_stays_in_the_main_report() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // Set 0 has no epsilon 0.2: its cells are "n/a".
    write_robust(&make_set(root, 0), 0, &[0.0, 0.1, 0.3]);
    make_set(root, 1);
    let out = report(root);
    assert!(out.status.success(), "{}", text(&out));
    let dir = root.join("report");

    assert_eq!(
        row(
            &csv(&dir.join("tables/clean_accuracy.csv")),
            "model",
            "base"
        )["sets"],
        "2"
    );
    let rob = csv(&dir.join("tables/robustness.csv"));
    let base = row(&rob, "model", "base");
    assert_eq!(base["sets"], "1");
    close(&base["fgsm-transfer_eps0.1_mean"], 30.0);
    assert_eq!(base["fgsm-transfer_eps0.1_std"], "n/a");
    assert_eq!(base["pgd-adaptive_eps0.2_mean"], "n/a");
    // One set: clean costs over that set only (usm's 1 %, not the mean of 1 and 2).
    close(&row(&rob, "model", "usm")["clean_null_rate_mean"], 1.0);
    let md = fs::read_to_string(dir.join("tables/robustness.md")).unwrap();
    assert!(
        md.contains("| base | 1 | 0.00 ± n/a | 30.0 ± n/a | n/a |"),
        "{md}"
    );
    assert_eq!(
        png_size(&dir.join("figures/fig21_transfer_vs_adaptive.png")),
        (1800, 640)
    );

    let (html, md) = pages(&dir);
    for page in [&html, &md] {
        assert!(page.contains(HEADING));
        assert!(page.contains("Robustness outputs found for 1 of 2 set(s): seed-00."));
        assert!(page.contains("Sets without them (seed-01) are in the main report only"));
        // m: 50 % vs base 100 % and reject-m 55 %: only 5 points, so not all survive.
        assert!(page.contains("does not survive"));
    }
    links_exist(&dir, &html);
}

#[test]
fn a_malformed_robust_csv_is_named_and_left_out_of_the_section_only() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write_robust(&make_set(root, 0), 0, &GRID_0);
    let bad = make_set(root, 1);
    write_robust(&bad, 1, &GRID_1);
    // Counts that do not add up to n.
    let path = bad.join("eval/robust.csv");
    let text_csv = fs::read_to_string(&path).unwrap().replace(
        "pgd-adaptive,base,0.3,20,1,19,0",
        "pgd-adaptive,base,0.3,20,2,19,0",
    );
    fs::write(&path, text_csv).unwrap();

    let out = report(root);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("seed-01") && log.contains("eval/robust.csv") && log.contains("do not add up"),
        "{log}"
    );
    let dir = root.join("report");
    let (html, md) = pages(&dir);
    for page in [&html, &md] {
        assert!(page.contains("Set seed-01: a robustness file was left out of this section"));
        assert!(page.contains("robust.csv: row"));
    }
    // The set is still in the main report; its attack scores are not in the section,
    // but its fgsm_margin.csv (well formed) is.
    assert_eq!(
        row(
            &csv(&dir.join("tables/clean_accuracy.csv")),
            "model",
            "base"
        )["sets"],
        "2"
    );
    assert_eq!(
        row(&csv(&dir.join("tables/robustness.csv")), "model", "base")["sets"],
        "1"
    );
    assert_eq!(
        row(&csv(&dir.join("tables/fgsm_margin.csv")), "model", "base")["sets"],
        "2"
    );
    links_exist(&dir, &html);
}

#[test]
fn a_bad_header_is_named_and_the_rest_of_the_section_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let set = make_set(root, 0);
    write_robust(&set, 0, &GRID_0);
    let path = set.join("eval/robust.csv");
    let text_csv = fs::read_to_string(&path).unwrap().replacen(
        "attack,model,eps,",
        "attack,model,epsilon,",
        1,
    );
    fs::write(&path, text_csv).unwrap();

    // Set 1 lacks the file the evaluator writes last: its CSVs may be half-written.
    let unfinished = make_set(root, 1);
    write_robust(&unfinished, 1, &GRID_1);
    fs::remove_file(unfinished.join("eval/robust_meta.json")).unwrap();

    let out = report(root);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("seed-00") && log.contains("eval/robust.csv") && log.contains("header"),
        "{log}"
    );
    assert!(
        log.contains("seed-01") && log.contains("eval/robust_meta.json"),
        "{log}"
    );
    let dir = root.join("report");
    let (html, _) = pages(&dir);
    assert!(html.contains(HEADING));
    assert!(html.contains("No set has a usable eval/robust.csv with its eval/rejection.csv"));
    assert!(!dir.join("figures/fig20_adaptive_pgd.png").exists());
    assert!(!html.contains("White-box check"));
    // Set 0's fgsm_margin.csv is well formed and stays; set 1's is not used.
    assert_eq!(
        row(&csv(&dir.join("tables/fgsm_margin.csv")), "model", "base")["sets"],
        "1"
    );
    assert_eq!(
        row(
            &csv(&dir.join("tables/clean_accuracy.csv")),
            "model",
            "base"
        )["sets"],
        "2"
    );
    links_exist(&dir, &html);
}
