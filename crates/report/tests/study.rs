//! `report study` end to end on small synthetic artifacts trees made here: every file
//! is written, PNGs decode at their sizes, table numbers match hand-computed values,
//! incomplete sets are named, and the page links only to files that exist.

mod common;

use std::fs;

use common::*;

const FIGURES: [(&str, (u32, u32)); 15] = [
    ("fig05_null_samples.png", (1180, 450)),
    ("fig06_clean_accuracy.png", (1300, 560)),
    ("fig07_adversarial_threshold.png", (1000, 1000)),
    ("fig08_adversarial_1.5x.png", (1000, 1000)),
    ("fig09_eps_threshold.png", (1400, 560)),
    ("fig10_threshold_scores.png", (1300, 600)),
    ("fig11_u.png", (1000, 1000)),
    ("fig12_s.png", (1000, 1000)),
    ("fig13_us.png", (1000, 1000)),
    ("fig14_m.png", (1000, 1000)),
    ("fig15_um.png", (1000, 1000)),
    ("fig16_sm.png", (1000, 1000)),
    ("fig17_usm.png", (1000, 1000)),
    ("fig18_sweep.png", (1700, 880)),
    ("fig19_misclassified.png", (1600, 560)),
];

#[test]
fn two_sets_and_an_incomplete_one() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_nulls(root);
    make_set(root, 0);
    make_set(root, 1);
    let broken = make_set(root, 2);
    fs::remove_file(broken.join("eval/sweep.csv")).unwrap();

    let out = report(root);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let dir = root.join("report");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .trim_end()
            .ends_with(&dir.join("index.html").display().to_string()),
        "{log}"
    );

    // The incomplete set is named with the file it lacks, in the log and on the page.
    assert!(
        log.contains("seed-02") && log.contains("eval/sweep.csv"),
        "{log}"
    );
    let html = fs::read_to_string(dir.join("index.html")).unwrap();
    let md = fs::read_to_string(dir.join("report.md")).unwrap();
    for page in [&html, &md] {
        assert!(page.contains("seed-02") && page.contains("missing eval/sweep.csv"));
        // The validation protocol the models' JSONs record is stated in the provenance.
        assert!(
            page.contains("Validation nulls") && page.contains("fresh each epoch"),
            "provenance lacks the validation nulls"
        );
    }

    for (file, size) in FIGURES {
        assert_eq!(png_size(&dir.join("figures").join(file)), size, "{file}");
    }
    for stem in ["clean_accuracy", "threshold_scores", "eps_threshold"] {
        for ext in ["csv", "md"] {
            assert!(
                dir.join(format!("tables/{stem}.{ext}")).is_file(),
                "{stem}.{ext}"
            );
        }
    }

    // Clean: base 99.0 and 99.5 %; usm 98.0 and 97.0 %, null rate 1 and 2 %.
    let clean = csv(&dir.join("tables/clean_accuracy.csv"));
    let base = row(&clean, "model", "base");
    assert_eq!(base["sets"], "2");
    close(&base["accuracy_mean"], 99.25);
    close(&base["accuracy_std"], 0.25); // population std, as np.std
    close(&base["null_rate_mean"], 0.0);
    close(&base["null_rate_std"], 0.0);
    let usm = row(&clean, "model", "usm");
    close(&usm["accuracy_mean"], 97.5);
    close(&usm["accuracy_std"], 0.5);
    close(&usm["null_rate_mean"], 1.5);
    close(&usm["null_rate_std"], 0.5);
    // Beside the published numbers, the published figure's statistic: the
    // baseline's mean, the null models' median.
    assert_eq!(base["compared_statistic"], "mean");
    close(&base["compared_accuracy"], 99.25);
    assert_eq!(usm["compared_statistic"], "median");
    close(&usm["compared_accuracy"], 97.5);

    // Threshold: u is 30/8/2 and 32/4/4 of 40, so 77.5 ± 2.5, 15 ± 5, 7.5 ± 2.5
    // against the published 78.8 ± 7.6, 19.1 ± 8.5 and 2.0 ± 3.4.
    let thr = csv(&dir.join("tables/threshold_scores.csv"));
    let u = row(&thr, "model", "u");
    close(&u["correct_mean"], 77.5);
    close(&u["correct_std"], 2.5);
    close(&u["misclassified_mean"], 15.0);
    close(&u["misclassified_std"], 5.0);
    close(&u["unclassified_mean"], 7.5);
    close(&u["unclassified_std"], 2.5);
    close(&u["published_correct_mean"], 78.8);
    close(&u["published_unclassified_std"], 3.4);
    assert_eq!(
        [
            &u["correct_within_published_std"],
            &u["misclassified_within_published_std"],
            &u["unclassified_within_published_std"]
        ],
        ["yes", "yes", "no"]
    );
    // usm: 2/0/38 and 4/1/35: 7.5 ± 2.5 correct, 1.25 ± 1.25 misclassified, 91.25 ±
    // 3.75 unclassified, against 7.2 ± 5.9, 1.2 ± 1.2, 91.7 ± 6.9: all within.
    let usm = row(&thr, "model", "usm");
    close(&usm["correct_mean"], 7.5);
    close(&usm["misclassified_mean"], 1.25);
    close(&usm["misclassified_std"], 1.25);
    close(&usm["unclassified_mean"], 91.25);
    close(&usm["unclassified_std"], 3.75);
    assert_eq!(usm["unclassified_within_published_std"], "yes");
    // base: 0/40/0 both times: exactly the published 0/100/0 with std 0.
    let base = row(&thr, "model", "base");
    close(&base["misclassified_mean"], 100.0);
    close(&base["misclassified_std"], 0.0);
    assert_eq!(base["misclassified_within_published_std"], "yes");
    // m: 2/2/36 both times: 5 / 5 / 90 % against 4.3 ± 1.6, 3.0 ± 1.2, 92.7 ± 2.1.
    let m = row(&thr, "model", "m");
    assert_eq!(
        [
            &m["correct_within_published_std"],
            &m["misclassified_within_published_std"],
            &m["unclassified_within_published_std"]
        ],
        ["yes", "no", "no"]
    );

    // Thresholds: set 0 is 30 x 0.12 and 10 x 0.5; set 1 is 20 x 0.22 and 20 x 0.32.
    let eps = csv(&dir.join("tables/eps_threshold.csv"));
    let s0 = row(&eps, "set", "seed-00");
    close(&s0["median"], 0.12);
    close(&s0["share_below_0.4_pct"], 75.0);
    close(&s0["peak_bin_centre"], 0.125);
    let s1 = row(&eps, "set", "seed-01");
    close(&s1["median"], 0.27);
    close(&s1["share_below_0.4_pct"], 100.0);
    close(&s1["peak_bin_centre"], 0.225);
    close(&row(&eps, "set", "mean over sets")["median"], 0.195);
    // Medians 0.12 and 0.27: population std 0.075.
    close(&row(&eps, "set", "std over sets")["median"], 0.075);
    let pooled = row(&eps, "set", "all sets pooled");
    assert_eq!(pooled["images"], "80");
    close(&pooled["median"], 0.22);
    close(&pooled["share_below_0.4_pct"], 87.5);

    // The display tables carry the same numbers, rounded.
    // u at the threshold: 30 and 32 of 40 correct (75 and 80 %): population std 2.5.
    let md_thr = fs::read_to_string(dir.join("tables/threshold_scores.md")).unwrap();
    assert!(md_thr.contains("| u | 77.5 ± 2.5 | 78.8 ± 7.6 | yes | 15.0 ± 5.0 | 19.1 ± 8.5 | yes | 7.5 ± 2.5 | 2.0 ± 3.4 | no |"), "{md_thr}");
}

#[test]
fn one_set_shows_na_and_the_page_links_only_existing_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_nulls(root);
    make_set(root, 0);
    let out = report(root);
    assert!(out.status.success(), "{}", text(&out));
    let dir = root.join("report");

    let clean = csv(&dir.join("tables/clean_accuracy.csv"));
    let base = row(&clean, "model", "base");
    assert_eq!(base["sets"], "1");
    close(&base["accuracy_mean"], 99.0);
    assert_eq!(base["accuracy_std"], "n/a");
    let thr = csv(&dir.join("tables/threshold_scores.csv"));
    let u = row(&thr, "model", "u");
    close(&u["correct_mean"], 75.0);
    assert_eq!(u["correct_std"], "n/a");
    let md = fs::read_to_string(dir.join("tables/clean_accuracy.md")).unwrap();
    assert!(md.contains("| base | 1 | 99.00 ± n/a |"), "{md}");

    let html = fs::read_to_string(dir.join("index.html")).unwrap();
    let found = links(&html);
    assert!(found.len() >= 15 + 4, "{found:?}");
    for link in &found {
        assert!(!link.contains("://"), "the page must work offline: {link}");
        assert!(
            dir.join(link).is_file(),
            "index.html links to {link}, which does not exist"
        );
    }
    let md = fs::read_to_string(dir.join("report.md")).unwrap();
    for (file, _) in FIGURES {
        let link = format!("figures/{file}");
        assert!(
            html.contains(&link) && md.contains(&link),
            "{file} not on both pages"
        );
    }
}

#[test]
fn no_complete_set_fails_naming_each_set() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let set = make_set(root, 3);
    fs::remove_file(set.join("eval/threshold.csv")).unwrap();
    fs::write(set.join("models/u.json"), "{").unwrap();
    let out = report(root);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("seed-03") && log.contains("eval/threshold.csv"),
        "{log}"
    );
}

#[test]
fn a_malformed_csv_skips_the_set_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_set(root, 0);
    let bad = make_set(root, 1);
    // Counts that do not add up to the 40 images.
    let text_csv = fs::read_to_string(bad.join("eval/threshold.csv"))
        .unwrap()
        .replace("u,40,32,4,4", "u,40,32,4,5");
    fs::write(bad.join("eval/threshold.csv"), text_csv).unwrap();
    let out = report(root);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("skipping seed-01") && log.contains("threshold.csv"),
        "{log}"
    );
    // Without `trainer nulls`' output, Figure 5 is left out and the page says why.
    let html = fs::read_to_string(root.join("report/index.html")).unwrap();
    assert!(
        html.contains("Figure 5: null samples was not drawn"),
        "Figure 5's absence is not explained"
    );
    assert!(!html.contains("figures/fig05_null_samples.png"));
    let clean = csv(&root.join("report/tables/clean_accuracy.csv"));
    assert_eq!(row(&clean, "model", "base")["sets"], "1");
}
