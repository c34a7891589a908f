//! The FGSM direction: the input gradient against PyTorch's for the same weights
//! (made by scripts/make_fgsm_fixture.py) and its sign against central finite
//! differences.
//!
//! PyTorch's answer is taken on this machine when the venv has torch (as `make test`
//! sets it up): a few of the 4,704 gradient entries depend on the CPU's kernels (on an
//! AMD EPYC 33 entries differ from the Intel-made copy by up to 2 % of the largest,
//! where the logits agree to 1e-7), so only the same machine's PyTorch is a fair
//! reference. Without it the stored copy in tests/fixtures/fgsm is used.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use nullclass::fgsm;
use nullclass::model::LoadedModel;
use nullclass::npy;
use tch::{Device, Kind, Reduction, Tensor};

fn fixture_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join(".venv/bin/python");
        let has_torch = python.exists()
            && Command::new(&python)
                .args(["-c", "import torch"])
                .status()
                .is_ok_and(|s| s.success());
        if !has_torch {
            eprintln!("no torch in .venv: comparing with the stored tests/fixtures/fgsm");
            return root.join("tests/fixtures/fgsm");
        }
        // Kept for the life of the test binary; the OS cleans /tmp.
        let dir = tempfile::tempdir().unwrap().keep();
        let out = Command::new(&python)
            .arg(root.join("scripts/make_fgsm_fixture.py"))
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "make_fgsm_fixture.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn fixture(name: &str) -> Tensor {
    npy::read(&fixture_dir().join(name)).unwrap()
}

/// The fixture script's hashed weights (see its docstring).
fn hashed_model() -> LoadedModel {
    adversary_gen::synthetic::hashed_model(0)
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

#[test]
fn logits_and_gradient_match_pytorch() {
    let m = hashed_model();
    let images = fixture("images.npy");
    let labels = fixture("labels.npy");
    let logits = m.logits(&images);
    let want = fixture("logits.npy");
    let err = max_abs(&(&logits - &want));
    assert!(
        err < 1e-4 * (1.0 + max_abs(&want)),
        "logits differ by {err}"
    );

    let grad = fgsm::input_gradient(&m.net, &images, &labels);
    let want = fixture("grads.npy");
    assert_eq!(grad.size(), want.size());
    let scale = max_abs(&want);
    let err = max_abs(&(&grad - &want));
    assert!(
        err < 1e-4 * scale,
        "gradients differ by {err} (largest {scale})"
    );

    // The direction itself: identical wherever PyTorch's gradient is not tiny.
    let signs = fgsm::signed_gradient(&m.net, &images, &labels, 4);
    let clear = want.abs().gt(1e-3 * scale);
    let disagree = signs
        .ne_tensor(&want.sign())
        .logical_and(&clear)
        .sum(Kind::Int64)
        .int64_value(&[]);
    let checked = clear.sum(Kind::Int64).int64_value(&[]);
    assert!(
        checked > 4000,
        "only {checked} pixels have a clear gradient"
    );
    assert_eq!(
        disagree, 0,
        "{disagree} of {checked} signs differ from PyTorch's"
    );
    // The weights' gradients are not touched by the input gradient.
    assert!(m.vs.variables().values().all(|v| !v.grad().defined()));
}

#[test]
fn sign_matches_central_differences() {
    let mut m = hashed_model();
    let images = fixture("images.npy");
    let labels = fixture("labels.npy");
    let signs = fgsm::signed_gradient(&m.net, &images, &labels, 6);

    // Finite differences in float64, on every 16th pixel of every image.
    m.vs.double();
    let x = images.to_kind(Kind::Double).view([-1, 784]);
    let grad = fgsm::input_gradient(&m.net, &x.view([-1, 28, 28]), &labels).view([-1, 784]);
    let h = 1e-6;
    let k = x.size()[0];
    let pixels: Vec<i64> = (0..784).step_by(16).collect();
    let p = pixels.len() as i64;
    let pix = Tensor::from_slice(&pixels);
    let mut bumps = Vec::new();
    for i in 0..k {
        let base = x.get(i).unsqueeze(0).repeat([p, 1]);
        let step = Tensor::zeros([p, 784], (Kind::Double, Device::Cpu)).scatter_value(
            1,
            &pix.unsqueeze(1),
            h,
        );
        bumps.push(&base + &step);
        bumps.push(&base - &step);
    }
    let batch = Tensor::cat(&bumps, 0);
    let rep_labels = labels.unsqueeze(1).repeat([1, 2 * p]).view([-1]);
    let loss = |x: &Tensor, y: &Tensor| {
        m.logits(x)
            .cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0)
    };
    let losses = loss(&batch, &rep_labels).view([k, 2, p]);
    let at_x = loss(&x, &labels).unsqueeze(1);
    let (up, down) = (losses.select(1, 0), losses.select(1, 1));
    let fd = (&up - &down) / (2.0 * h);
    let analytic = grad.index_select(1, &pix);
    let f32_signs = signs
        .view([-1, 784])
        .index_select(1, &pix)
        .to_kind(Kind::Double);

    let scale = max_abs(&analytic);
    // Where a max-pool window holds a tie (flat background gives many) the loss has a
    // kink and no gradient to check: the one-sided differences disagree there.
    let kink = ((&up - &at_x) - (&at_x - &down)).abs().gt(1e-4 * scale * h);
    let clear = analytic
        .abs()
        .gt(1e-3 * scale)
        .logical_and(&kink.logical_not());
    let checked = clear.sum(Kind::Int64).int64_value(&[]);
    assert!(
        checked > 150,
        "only {checked} sampled pixels have a clear gradient"
    );
    let count = |t: Tensor| t.logical_and(&clear).sum(Kind::Int64).int64_value(&[]);
    assert_eq!(
        count(fd.sign().ne_tensor(&analytic.sign())),
        0,
        "finite differences disagree in sign"
    );
    assert_eq!(
        count(f32_signs.ne_tensor(&fd.sign())),
        0,
        "float32 FGSM signs disagree with finite differences"
    );
    let rel = ((&fd - &analytic).abs() / (analytic.abs() + 1e-3 * scale)).masked_select(&clear);
    assert!(
        rel.max().double_value(&[]) < 1e-3,
        "finite differences off by {}",
        rel.max().double_value(&[])
    );
}
