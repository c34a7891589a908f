//! `evaluator robust` on a tiny synthetic set attacked by `adversary-gen robust`, and
//! the confidence-rejection threshold.

use std::fs;
use std::path::Path;

use adversary_gen::synthetic;
use evaluator::robust::{self, reject, tau_for_rate};
use nullclass::artifacts::SetDir;
use nullclass::device::{DeviceChoice, Tf32};
use tch::{Device, Kind, Tensor};

fn attack(root: &Path, seed: u64, n: i64) -> serde_json::Value {
    let config = adversary_gen::robust::Config {
        artifacts: root.to_path_buf(),
        seed,
        n,
        device: DeviceChoice::Cpu,
        tf32: Tf32::Off,
        eps_step: 0.15,
        eps_max: 0.3,
        step: 0.02,
        steps: 4,
        restarts: 1,
        no_random_start: false,
        no_targeted: false,
        apgd_n_iter: 5,
        apgd_n_restarts: 1,
        apgd_odi_steps: 0,
        apgd_n_target_classes: 2,
        square_n_queries: 20,
        square_p_init: 0.8,
        max_eps: 1.0,
        chunk: 500,
        threads: Some(1),
    };
    let dir = adversary_gen::robust::run(&config).unwrap();
    serde_json::from_str(&fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap()
}

fn evaluate(root: &Path, seed: u64) -> anyhow::Result<std::path::PathBuf> {
    robust::run(&robust::Config {
        artifacts: root.to_path_buf(),
        seed,
        device: DeviceChoice::Cpu,
        tf32: Tf32::Off,
        chunk: 7,
        threads: Some(1),
    })
}

/// CSV rows as string fields, header checked.
fn rows(path: &Path, header: &str) -> Vec<Vec<String>> {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(header), "{}", path.display());
    lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn int(s: &str) -> i64 {
    s.parse().unwrap()
}

#[test]
fn scores_every_attack_model_and_eps() {
    let tmp = tempfile::tempdir().unwrap();
    synthetic::write_set(tmp.path(), 5, 48, 7).unwrap();
    let n = 12;
    let meta = attack(tmp.path(), 5, n);
    let out = evaluate(tmp.path(), 5).unwrap();
    assert!(out.join(robust::META_FILE).exists());

    let table = rows(&out.join("robust.csv"), robust::ROBUST_HEADER);
    // 7 attacks (the worst case included) x (0 + 2 radii) x (8 models + 7 rejectors).
    assert_eq!(table.len(), 7 * 3 * 15);
    for r in &table {
        assert_eq!(int(&r[3]), n);
        assert_eq!(int(&r[4]) + int(&r[5]) + int(&r[6]), n, "{r:?}");
    }
    let find = |attack: &str, model: &str, eps: &str| -> Vec<i64> {
        let r = table
            .iter()
            .find(|r| r[0] == attack && r[1] == model && r[2] == eps)
            .unwrap_or_else(|| panic!("no row {attack} {model} {eps}"));
        r[4..7].iter().map(|s| int(s)).collect()
    };
    // The sources are images the baseline gets right, whatever the attack.
    const ATTACKS: [&str; 6] = [
        "fgsm-transfer",
        "pgd-transfer",
        "pgd-adaptive",
        "fgsm-adaptive",
        "apgd",
        "square",
    ];
    for attack in ATTACKS.iter().chain(&["worst-case"]) {
        assert_eq!(find(attack, "base", "0.0"), [n, 0, 0]);
        for m in ["u", "usm", "reject-m"] {
            assert_eq!(find(attack, m, "0.0"), find("pgd-transfer", m, "0.0"));
        }
    }
    // The evaluator's recount agrees with what the attacker saw on each model.
    for stat in meta["attacks"].as_array().unwrap() {
        let (attack, model) = (
            stat["attack"].as_str().unwrap(),
            stat["model"].as_str().unwrap(),
        );
        let eps = format!("{:?}", stat["eps"].as_f64().unwrap() as f32);
        assert_eq!(
            find(attack, model, &eps)[1],
            stat["successes"].as_i64().unwrap(),
            "{attack} {model} {eps}"
        );
    }

    // The worst case breaks every image some attack breaks, and some attack breaks
    // each image it counts.
    for m in ["base", "m", "usm", "reject-m"] {
        for eps in ["0.15", "0.3"] {
            let worst = find("worst-case", m, eps)[1];
            let best = ATTACKS.iter().map(|a| find(a, m, eps)[1]).max().unwrap();
            let total: i64 = ATTACKS.iter().map(|a| find(a, m, eps)[1]).sum();
            assert!(
                worst >= best && worst <= total,
                "{m} {eps}: {worst} vs {best}..{total}"
            );
        }
    }
    let errors = rows(&out.join("robust_error.csv"), robust::ROBUST_ERROR_HEADER);
    assert_eq!(errors.len(), 3 * 16);
    for r in &errors {
        let (clean, robust) = (int(&r[3]), int(&r[4]));
        assert_eq!(int(&r[2]), n);
        assert!(clean <= robust && robust <= n, "{r:?}");
        if r[1] == "0.0" {
            assert_eq!(clean, robust, "{r:?}");
        }
        if r[0] != robust::KEEP_CORRECT_NAME {
            // At least the worst case's wrong digits, at most those plus every
            // clean error.
            let w = find("worst-case", &r[0], &r[1]);
            assert!(robust >= w[1] && robust <= w[1] + clean, "{r:?} vs {w:?}");
            let c = find("worst-case", &r[0], "0.0");
            assert_eq!(clean, c[1] + c[2], "{r:?}");
        }
        let rule = match r[0].as_str() {
            "base" => "none".to_string(),
            m if m.starts_with("reject-") => r[5].clone(),
            _ => "null".to_string(),
        };
        assert_eq!(r[5], rule);
    }
    assert!(errors.iter().any(|r| r[0] == "base" && r[3] == "0"));

    let rejection = rows(&out.join("rejection.csv"), robust::REJECTION_HEADER);
    assert_eq!(rejection.len(), 7);
    for r in &rejection {
        assert_eq!(r[0], format!("reject-{}", r[1]));
        let (target, got, n_test): (f64, f64, f64) = (
            r[2].parse().unwrap(),
            r[4].parse().unwrap(),
            r[5].parse().unwrap(),
        );
        assert!(
            (target - got).abs() * n_test <= 1.0 + 1e-9,
            "rejection rate {got} vs null rate {target}"
        );
    }

    let gradients = rows(&out.join("gradients.csv"), robust::GRADIENT_HEADER);
    // 2 radii x (transfer PGD + 8 x (PGD, APGD, Square)), and the 8 margin-FGSM
    // gradients.
    assert_eq!(gradients.len(), 2 * (1 + 8 * 3) + 8);
    for r in &gradients {
        assert!(int(&r[4]) >= 0 && int(&r[4]) <= n, "{r:?}");
    }

    let margin = rows(&out.join("fgsm_margin.csv"), robust::MARGIN_HEADER);
    assert_eq!(margin.len(), 8);
    for r in &margin {
        assert_eq!(int(&r[1]), n);
        assert_eq!(int(&r[2]) + int(&r[3]) + int(&r[4]), n, "{r:?}");
    }
    assert_eq!(margin[0][4], "0", "the baseline is right on every source");
}

#[test]
fn a_changed_model_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    synthetic::write_set(tmp.path(), 6, 48, 7).unwrap();
    attack(tmp.path(), 6, 6);
    let set = SetDir::new(tmp.path(), 6);
    let usm = set.dir.join("models/usm.safetensors");
    synthetic::hashed_model(99).vs.save(&usm).unwrap();
    let err = format!("{:#}", evaluate(tmp.path(), 6).unwrap_err());
    assert!(
        err.contains("usm") && err.contains("rerun adversary-gen robust"),
        "{err}"
    );
    assert!(!set.eval_dir().join(robust::META_FILE).exists());
}

#[test]
fn sources_that_are_not_the_test_images_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    synthetic::write_set(tmp.path(), 7, 48, 7).unwrap();
    attack(tmp.path(), 7, 6);
    let set = SetDir::new(tmp.path(), 7);
    let sources = set.robust_dir().join("source_images.npy");
    let images = nullclass::npy::read(&sources).unwrap();
    // One pixel of one source moved: no longer the test image its index names.
    let moved = images.copy();
    let _ = moved.get(2).get(14).get(14).fill_(0.5);
    assert!(!moved.equal(&images));
    nullclass::npy::write(&sources, &moved).unwrap();
    let err = format!("{:#}", evaluate(tmp.path(), 7).unwrap_err());
    assert!(
        err.contains("source_images.npy") && err.contains("differ from the test images"),
        "{err}"
    );
    assert!(!set.eval_dir().join(robust::META_FILE).exists());
}

#[test]
fn tau_rejects_the_requested_share_within_one_image() {
    // Distinct confidences, plus a block of saturated 1.0s as a trained model gives.
    let n = 997;
    let mut p: Vec<f64> = (0..n - 100)
        .map(|i| 0.1 + 0.9 * ((i * 7919) % 1000) as f64 / 1000.0 * 0.999)
        .collect();
    p.extend(std::iter::repeat_n(1.0, 100));
    let probs = Tensor::from_slice(&p);
    let classes = Tensor::zeros([n as i64], (Kind::Int64, Device::Cpu));
    for k in 0..=60 {
        let rate = k as f64 * 0.0137;
        let tau = tau_for_rate(&probs, rate).unwrap();
        let rejected = reject(&classes, &probs, tau)
            .eq(10)
            .sum(Kind::Int64)
            .int64_value(&[]);
        let wanted = (rate * n as f64).round() as i64;
        assert!(
            (rejected - wanted).abs() <= 1,
            "rate {rate}: rejected {rejected}, wanted {wanted} (tau {tau})"
        );
    }
    assert_eq!(tau_for_rate(&probs, 0.0).unwrap(), 0.0);
    assert!(tau_for_rate(&probs, 1.0).unwrap() > 1.0);
}
