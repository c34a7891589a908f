//! `report study` on a second data set (issue 13): a Fashion-MNIST study says
//! "class", shows Fashion-MNIST's class names and no published (MNIST) number; the
//! pixel-geometry table shows `evaluator corners`' numbers; `--compare-with` sets
//! the two studies side by side with each one's own numbers, and refuses a root of
//! the same data set or one with no prepared data, naming it.

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// A Fashion-MNIST study root: prepared data, Figure 5's nulls and `sets` sets, every
/// JSON recording the data set.
fn fashion_root(root: &Path, sets: usize) {
    prepare(root, "fashion-mnist");
    make_nulls(root);
    for s in 0..sets {
        let dir = make_set(root, s);
        set_dataset(&dir, "fashion-mnist");
    }
}

#[test]
fn a_fashion_mnist_page_speaks_of_classes_and_shows_no_published_number() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fashion_root(root, 2);
    write_corners(
        root,
        &[
            ("clean train", 60000, 0.51234, 7.25, 1.5),
            ("mixed nulls", 40, 0.02, 9.876, 0.624),
        ],
    );
    // The robustness section's prose too, judged at Fashion-MNIST's largest radius.
    for s in 0..2 {
        robust(&root.join(format!("seed-0{s}")), &[(0.1, 3), (0.2, 5)]);
    }
    let out = report(root);
    assert!(out.status.success(), "{}", text(&out));
    let dir = root.join("report");
    let html = fs::read_to_string(dir.join("index.html")).unwrap();
    let md = fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(html.contains("Misclassified means a class other than the label"));
    assert!(
        html.contains("under worst-case at epsilon 0.2 is at least"),
        "{html}"
    );
    for page in [&html, &md] {
        assert!(
            !page.to_lowercase().contains("digit"),
            "a Fashion-MNIST page says digit: {}",
            page.lines()
                .filter(|l| l.to_lowercase().contains("digit"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(page.contains("Null-class defense against FGSM on Fashion-MNIST"));
        // The published numbers are MNIST's: 99.23 % clean accuracy, u's 78.8 %
        // correct at the threshold, the within-std verdicts.
        for published in ["99.23", "78.8", "within std", "within the published"] {
            assert!(!page.contains(published), "{published} on the page");
        }
    }
    // Class names where labels show: the per-class table, on the page and in its CSV.
    // Label 9 is every tenth of the 40 images: 4 per set. Thresholds of set 0's are
    // 0.12, 0.12, 0.12, 0.5 and set 1's 0.22, 0.22, 0.32, 0.32: median 0.22, 7 of 8
    // below 0.4.
    assert!(html.contains("<td>Ankle boot</td>"), "no Ankle boot row");
    let by_class = csv(&dir.join("tables/eps_threshold_by_class.csv"));
    let boot = row(&by_class, "class", "Ankle boot");
    assert_eq!(boot["label"], "9");
    assert_eq!(boot["images"], "8");
    close(&boot["median"], 0.22);
    close(&boot["share_below_0.4_pct"], 87.5);
    assert_eq!(row(&by_class, "label", "0")["class"], "T-shirt/top");

    // No published column in any table, no published row in the thresholds.
    for stem in ["clean_accuracy", "threshold_scores", "eps_threshold"] {
        let text = fs::read_to_string(dir.join(format!("tables/{stem}.csv"))).unwrap();
        assert!(!text.contains("published"), "{stem}.csv: {text}");
    }
    // The numbers themselves are still there.
    let thr = csv(&dir.join("tables/threshold_scores.csv"));
    close(&row(&thr, "model", "u")["correct_mean"], 77.5);

    // The pixel geometry, with its definitions.
    let corners = csv(&dir.join("tables/corners.csv"));
    close(
        &row(&corners, "group", "clean train")["near_binary_pct"],
        51.234,
    );
    assert!(
        html.contains("<td>51.2</td>") && html.contains("9.88 ± 0.62"),
        "{html}"
    );
    assert!(html.contains("within 0.1 of 0 or of 1") && html.contains("nearest corner"));
}

#[test]
fn an_mnist_page_keeps_its_digits_and_published_numbers() {
    // The other side of the test above: the same check would catch a page that lost
    // them (and without corners.csv the section says how to make it).
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_nulls(root);
    make_set(root, 0);
    let out = report(root);
    assert!(out.status.success(), "{}", text(&out));
    let html = fs::read_to_string(root.join("report/index.html")).unwrap();
    assert!(html.contains("digit") && html.contains("99.23") && html.contains("78.8"));
    assert!(html.contains("on MNIST: study report"));
    assert!(html.contains("evaluator corners --artifacts"));
    let by_class = csv(&root.join("report/tables/eps_threshold_by_class.csv"));
    assert_eq!(row(&by_class, "label", "9")["digit"], "9");
}

/// Replaces a set's clean and threshold scores with hand-written CSVs.
fn scores(dir: &Path, clean: &str, threshold: &str) {
    write(
        &dir.join("eval/clean.csv"),
        &format!("model,n,accuracy,null_rate\n{clean}"),
    );
    write(
        &dir.join("eval/threshold.csv"),
        &format!("model,n,correct,misclassified,unclassified\n{threshold}"),
    );
}

/// Worst-case rows of the 8 models at `eps`, `mis` of 20 misclassified for model m
/// and 20 for the others, with an empty rejection.csv (no rejection baselines).
fn robust(dir: &Path, rows: &[(f64, u64)]) {
    let mut text = String::from("attack,model,eps,n,correct,misclassified,unclassified\n");
    for (eps, mis) in rows {
        for v in VARIANTS {
            let m = if v == "m" { *mis } else { 20 };
            text += &format!("worst-case,{v},{eps},20,0,{m},{}\n", 20 - m);
        }
    }
    write(&dir.join("eval/robust.csv"), &text);
    write(
        &dir.join("eval/rejection.csv"),
        "model,matches,target_null_rate,tau,clean_reject_rate,n_test\n",
    );
    write(&dir.join("eval/robust_meta.json"), "{}");
}

const FASHION_CLEAN: &str = "base,10000,0.912,0.0\nu,10000,0.905,0.003\ns,10000,0.9,0.004\nm,10000,0.887,0.021\nus,10000,0.9,0.004\num,10000,0.9,0.004\nsm,10000,0.9,0.004\nusm,10000,0.871,0.033\n";
const FASHION_THRESHOLD: &str = "base,40,0,40,0\nu,40,20,15,5\ns,40,2,2,36\nm,40,6,9,25\nus,40,2,2,36\num,40,2,2,36\nsm,40,2,2,36\nusm,40,3,1,36\n";

#[test]
fn the_comparison_page_holds_both_studies_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let mnist = tmp.path().join("artifacts");
    let fashion = mnist.join("fashion-mnist");
    prepare(&mnist, "mnist");
    make_nulls(&mnist);
    let m0 = make_set(&mnist, 0);
    let m1 = make_set(&mnist, 1);
    fashion_root(&fashion, 1);
    let f0 = fashion.join("seed-00");
    scores(&f0, FASHION_CLEAN, FASHION_THRESHOLD);
    write_corners(&mnist, &[("clean test", 10000, 0.8123, 3.25, 0.5)]);
    write_corners(&fashion, &[("clean test", 10000, 0.4567, 6.75, 1.25)]);
    // m under the worst case: MNIST 4 and 6 of 20 at 0.3 (20 and 30 %, mean 25 %);
    // Fashion-MNIST 13 of 20 at 0.2 (65 %) and 17 at 0.3 (85 %, too large a radius
    // for it: not shown).
    robust(&m0, &[(0.1, 1), (0.2, 2), (0.3, 4)]);
    robust(&m1, &[(0.1, 1), (0.2, 2), (0.3, 6)]);
    robust(&f0, &[(0.1, 7), (0.2, 13), (0.3, 17)]);

    let out = report_with(&mnist, &["--compare-with", fashion.to_str().unwrap()]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let dir = mnist.join("report");
    let index = fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(links(&index).contains(&"comparison.html".to_string()));
    let page = fs::read_to_string(dir.join("comparison.html")).unwrap();
    for link in links(&page) {
        assert!(dir.join(&link).is_file(), "comparison.html links to {link}");
    }
    assert!(page.contains("MNIST and Fashion-MNIST side by side"));
    // Both fixtures' models trained 2 x 100 steps: the page says so for each side.
    assert!(
        page.contains("MNIST settings")
            && page.contains("weaker than the paper's: models trained 200 steps")
            && page.contains("Weakened settings on MNIST and Fashion-MNIST"),
        "{page}"
    );
    assert!(
        page.contains("2 set(s): seed-00, seed-01") && page.contains("1 set(s): seed-00"),
        "the page does not say how many sets"
    );

    // Clean: MNIST base 99.0 and 99.5 %; Fashion-MNIST base 91.2 %, usm 87.1 % with
    // 3.3 % null.
    let clean = csv(&dir.join("tables/comparison_clean.csv"));
    let base = row(&clean, "model", "base");
    close(&base["mnist_accuracy_mean"], 99.25);
    close(&base["fashion-mnist_accuracy_mean"], 91.2);
    assert_eq!(base["mnist_published_accuracy"], "99.23");
    let usm = row(&clean, "model", "usm");
    close(&usm["fashion-mnist_accuracy_mean"], 87.1);
    close(&usm["fashion-mnist_null_rate_mean"], 3.3);
    assert!(page.contains("99.25 ± 0.25") && page.contains("91.20 ± n/a"));
    assert!(page.contains("87.10 ± n/a") && page.contains("3.30 ± n/a"));

    // Threshold: Fashion-MNIST u 20/15/5 of 40, m 6/9/25; MNIST u 77.5 / 15 / 7.5.
    let thr = csv(&dir.join("tables/comparison_threshold.csv"));
    let u = row(&thr, "model", "u");
    close(&u["mnist_correct_mean"], 77.5);
    close(&u["fashion-mnist_misclassified_mean"], 37.5);
    close(&u["fashion-mnist_unclassified_mean"], 12.5);
    close(&u["mnist_published_correct_mean"], 78.8);
    close(
        &row(&thr, "model", "m")["fashion-mnist_misclassified_mean"],
        22.5,
    );
    assert!(page.contains("37.5 ± n/a") && page.contains("22.5 ± n/a"));
    // Published numbers beside MNIST only.
    let header = fs::read_to_string(dir.join("tables/comparison_threshold.csv")).unwrap();
    let header = header.lines().next().unwrap();
    assert!(!header.contains("fashion-mnist_published"), "{header}");
    assert!(page.contains("MNIST published") && !page.contains("Fashion-MNIST published"));
    assert_eq!(
        png_size(&dir.join("figures/compare_threshold_scores.png")),
        (1300, 1200)
    );

    // Geometry of both.
    let corners = csv(&dir.join("tables/comparison_corners.csv"));
    let test = row(&corners, "group", "clean test");
    close(&test["mnist_near_binary_pct"], 81.23);
    close(&test["fashion-mnist_near_binary_pct"], 45.67);
    assert!(page.contains("3.25 ± 0.50") && page.contains("6.75 ± 1.25"));

    // White-box misclassification at each data set's radii.
    let rob = csv(&dir.join("tables/comparison_robust.csv"));
    let m = row(&rob, "model", "m");
    close(&m["mnist_worst-case_eps0.3_mean"], 25.0);
    close(&m["mnist_worst-case_eps0.3_std"], 5.0);
    close(&m["fashion-mnist_worst-case_eps0.2_mean"], 65.0);
    close(&m["fashion-mnist_worst-case_eps0.1_mean"], 35.0);
    assert!(!m.contains_key("fashion-mnist_worst-case_eps0.3_mean"));
    assert!(page.contains("25.0 ± 5.0") && page.contains("65.0 ± n/a"));
    assert!(!page.contains("85.0"));

    // The sweep's curves of both.
    let sweep = fs::read_to_string(dir.join("tables/comparison_sweep.csv")).unwrap();
    assert!(sweep.contains("\nmnist,base,") && sweep.contains("\nfashion-mnist,base,"));

    // From the Fashion-MNIST side the same page, MNIST's columns still first; without
    // MNIST's robust outputs its section says the stage has not run.
    for d in [&m0, &m1] {
        fs::remove_file(d.join("eval/robust_meta.json")).unwrap();
        fs::remove_file(d.join("eval/robust.csv")).unwrap();
        fs::remove_file(d.join("eval/rejection.csv")).unwrap();
    }
    // MNIST's sets now at the paper's settings: only Fashion-MNIST's side is weak.
    for d in [&m0, &m1] {
        set_strength(d, (20, 1875), 1000, None);
    }
    let out = report_with(&fashion, &["--compare-with", mnist.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let page = fs::read_to_string(fashion.join("report/comparison.html")).unwrap();
    assert!(
        page.contains("the paper's training and FGSM study")
            && page.contains("Weakened settings on Fashion-MNIST:")
            && !page.contains("Weakened settings on MNIST"),
        "{page}"
    );
    assert!(
        page.contains("MNIST: the robust stage has not run"),
        "{page}"
    );
    assert!(page.contains("65.0 ± n/a") && page.contains("91.20 ± n/a"));
    let clean = csv(&fashion.join("report/tables/comparison_clean.csv"));
    close(&row(&clean, "model", "base")["mnist_accuracy_mean"], 99.25);

    // Each study's own robustness table has the radii that fit its data set: MNIST's
    // ends at 0.3, Fashion-MNIST's at 0.2 (its 0.3 rows are not shown there either).
    let own = csv(&fashion.join("report/tables/robustness.csv"));
    let m = row(&own, "model", "m");
    close(&m["worst-case_eps0.2_mean"], 65.0);
    assert!(!m.contains_key("worst-case_eps0.3_mean"), "{m:?}");
    let own = csv(&mnist.join("report/tables/robustness.csv"));
    assert!(row(&own, "model", "m").contains_key("worst-case_eps0.3_mean"));
}

#[test]
fn compare_with_the_same_data_set_or_no_data_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    prepare(&a, "mnist");
    make_set(&a, 0);
    prepare(&b, "mnist");
    make_set(&b, 0);
    let out = report_with(&a, &["--compare-with", b.to_str().unwrap()]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains(&b.display().to_string()) && log.contains("same data set"),
        "{log}"
    );
    assert!(!a.join("report/comparison.html").exists());

    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let out = report_with(&a, &["--compare-with", empty.to_str().unwrap()]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains(&empty.display().to_string()) && log.contains("no prepared data"),
        "{log}"
    );
}

#[test]
fn a_set_of_another_data_set_is_refused_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fashion_root(root, 1);
    // A set copied in from the MNIST study.
    make_set(root, 1);
    let out = report(root);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("seed-01") && log.contains("MNIST") && log.contains("Fashion-MNIST"),
        "{log}"
    );
}
