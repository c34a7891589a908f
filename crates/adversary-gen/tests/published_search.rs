//! The epsilon-threshold search against a port of the published loop
//! (`fgsm_mnist_model.py`: a 10-point first grid 0, logspace(1e-3, 1, 9); then
//! logspace between the first flipping epsilon and the one before it, 10 points, until
//! the two are closer than 1e-3), on a hand-made model whose prediction flips back and
//! forth along the gradient, so that the first flip a grid sees is often not the
//! first flip there is: both searches must still pick the same threshold per image.

use nullclass::fgsm::{self, SearchConfig, FOUND, NO_FLIP};
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

/// Half the period, in mean pixel value, of the model's class pattern.
const HALF_PERIOD: f64 = 0.013;

/// Class 0 where cos(pi * mean pixel / HALF_PERIOD) > 0, else class 1: along an
/// FGSM direction of all +1 or all -1 the prediction alternates every HALF_PERIOD.
#[derive(Debug)]
struct Stripes;

impl ModuleT for Stripes {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let b = xs.size()[0];
        let c = (xs.view([b, -1]).mean_dim(1, true, Kind::Float)
            * (std::f64::consts::PI / HALF_PERIOD))
            .cos();
        let others = Tensor::full([b, 9], -2.0, (Kind::Float, xs.device()));
        Tensor::cat(&[&c, &(-&c), &others], 1)
    }
}

/// numpy's logspace(a, b, num): 10 ** linspace(a, b, num), the last point exactly b.
fn logspace(a: f64, b: f64, num: usize) -> Vec<f64> {
    let step = (b - a) / (num - 1) as f64;
    (0..num)
        .map(|k| {
            let e = if k == num - 1 { b } else { a + k as f64 * step };
            10f64.powf(e)
        })
        .collect()
}

/// The published loop for one image, line by line; `classify` gives the predictions
/// at a list of epsilons. The bracket (lower, threshold), or None when nothing up to
/// 1 flips the prediction.
fn published_search(classify: impl Fn(&[f64]) -> Vec<i64>, label: i64) -> Option<(f64, f64)> {
    let mut epsilons = logspace(1e-3f64.log10(), 1f64.log10(), 9);
    epsilons.insert(0, 0.0);
    loop {
        let predicted = classify(&epsilons);
        let first = predicted.iter().position(|&p| p != label)?;
        assert_ne!(first, 0, "This line of code should never be hit.");
        if epsilons[first] - epsilons[first - 1] < 1e-3 {
            return Some((epsilons[first - 1], epsilons[first]));
        }
        epsilons = logspace(epsilons[first - 1].log10(), epsilons[first].log10(), 10);
    }
}

#[test]
fn the_search_picks_the_published_loops_threshold_for_every_image() {
    let n = 40;
    let model = Stripes;
    // Constant images a stripe centre plus an offset that keeps the nearest change of
    // class at least 0.003 away (the published loop cannot refine a flip at 1e-3:
    // its next grid would start at log10(0)); half the signs +1, half -1.
    let values: Vec<f32> = (0..n)
        .map(|i| {
            let centre = HALF_PERIOD * (23 + i % 10) as f64;
            let frac = (i as f64 * 0.618_034).fract();
            let offset = -HALF_PERIOD / 2.0 + 0.003 + (HALF_PERIOD - 0.006) * frac;
            (centre + offset) as f32
        })
        .collect();
    let images = Tensor::from_slice(&values)
        .view([n as i64, 1, 1])
        .expand([n as i64, 28, 28], false)
        .contiguous();
    let sign_values: Vec<f32> = (0..n)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let signs = Tensor::from_slice(&sign_values)
        .view([n as i64, 1, 1])
        .expand([n as i64, 28, 28], false)
        .contiguous();
    let labels = fgsm::classify(&model, &images, 64);

    let ours =
        fgsm::threshold_search(&model, &images, &signs, &labels, &SearchConfig::default()).unwrap();
    let status: Vec<i64> = Vec::try_from(&ours.status).unwrap();
    let threshold: Vec<f32> = Vec::try_from(&ours.threshold).unwrap();
    let lower: Vec<f32> = Vec::try_from(&ours.lower).unwrap();
    let label: Vec<i64> = Vec::try_from(&labels).unwrap();

    let mut not_the_first_flip = 0;
    for i in 0..n {
        let (x, g) = (images.get(i as i64), signs.get(i as i64));
        // The image at each epsilon as the tools build it (float32 clip(x + eps * g)).
        let at = |eps: &[f64]| -> Tensor {
            let parts: Vec<Tensor> = eps
                .iter()
                .map(|&e| (&x + &g * f64::from(e as f32)).clamp(0.0, 1.0))
                .collect();
            Tensor::stack(&parts, 0)
        };
        let classify = |eps: &[f64]| -> Vec<i64> {
            Vec::try_from(&fgsm::classify(&model, &at(eps), 64)).unwrap()
        };
        match published_search(classify, label[i]) {
            None => assert_eq!(status[i], NO_FLIP, "image {i}"),
            Some((lo, thr)) => {
                assert_eq!(status[i], FOUND, "image {i}");
                let close = |a: f64, b: f32| (a - f64::from(b)).abs() <= 1e-6 * a.max(1e-3);
                assert!(
                    close(thr, threshold[i]) && close(lo, lower[i]),
                    "image {i}: published bracket ({lo}, {thr}), ours ({}, {})",
                    lower[i],
                    threshold[i]
                );
                // Does some epsilon below the threshold already flip the prediction?
                let below: Vec<f64> = (1..500).map(|k| thr * k as f64 / 500.0).collect();
                if classify(&below).iter().any(|&p| p != label[i]) {
                    not_the_first_flip += 1;
                }
            }
        }
    }
    // The case the model is made for: thresholds that are not the first flip.
    assert!(
        not_the_first_flip >= 5,
        "only {not_the_first_flip} thresholds lie beyond an earlier flip"
    );
}
