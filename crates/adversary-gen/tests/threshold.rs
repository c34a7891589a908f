//! Properties of every acquired image's epsilon threshold, checked by classifying the
//! images again, apart from the search that found them.

use adversary_gen::acquire::acquire;
use adversary_gen::synthetic;
use nullclass::artifacts::SetDir;
use nullclass::dataset::DataSet;
use nullclass::dataset::Mnist;
use nullclass::fgsm::{self, SearchConfig};
use nullclass::model::LoadedModel;
use nullclass::nulls::Variant;
use tch::{Device, Kind, Tensor};

fn all(t: &Tensor) -> bool {
    t.all().int64_value(&[]) != 0
}

#[test]
fn threshold_properties_on_every_acquired_image() {
    let tmp = tempfile::tempdir().unwrap();
    synthetic::write_set(tmp.path(), 3, 96, 9).unwrap();
    let set = SetDir::new(tmp.path(), 3);
    let model = LoadedModel::load(&set.model(&Variant::all()[0]), Device::Cpu).unwrap();
    let test = Mnist::load(&DataSet::Mnist.file(tmp.path()))
        .unwrap()
        .test(Device::Cpu);
    let search = SearchConfig {
        chunk: 128,
        ..Default::default()
    };

    let n = 40;
    let got = acquire(&model.net, &test, n, 16, &search).unwrap();
    let c = got.counts;
    assert_eq!(c.acquired, n);
    assert!(c.skipped_wrong > 0, "{c:?}");
    assert_eq!(c.acquired + c.skipped_wrong + c.discarded_no_flip, c.walked);

    let (x, g, y) = (&got.images, &got.signs, &got.labels);
    let thr = &got.threshold;
    let low = &got.lower;
    let predict = |eps: &Tensor| fgsm::classify(&model.net, &fgsm::perturb(x, g, eps), 5);
    assert!(
        all(&predict(thr).ne_tensor(y)),
        "the threshold image is classified correctly"
    );
    assert!(
        all(&predict(low).eq_tensor(y)),
        "the bracket's lower end is misclassified"
    );
    assert!(
        all(&(thr - low).le(f64::from(1e-3f32))),
        "bracket wider than 1e-3"
    );
    assert!(all(&thr.gt(0.0).logical_and(&thr.le(1.0))));
    assert!(all(&low.lt_tensor(thr)));
    let zero = Tensor::zeros([n], (Kind::Float, Device::Cpu));
    assert!(
        fgsm::perturb(x, g, &zero).equal(x),
        "epsilon 0 changes the source"
    );
    for eps in [
        thr,
        &(thr * 1.5),
        &Tensor::ones([n], (Kind::Float, Device::Cpu)),
    ] {
        let adv = fgsm::perturb(x, g, eps);
        assert!(
            all(&adv.ge(0.0).logical_and(&adv.le(1.0))),
            "pixels outside [0, 1]"
        );
    }
    assert!(all(&g.abs().eq(1.0).logical_or(&g.eq(0.0))));
    // Sources are the test images at the recorded indices, in test-set order.
    assert!(test.images.index_select(0, &got.test_indices).equal(x));
    assert!(test.labels.index_select(0, &got.test_indices).equal(y));
    let idx: Vec<i64> = Vec::try_from(&got.test_indices).unwrap();
    assert!(idx.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(*idx.last().unwrap(), c.walked - 1);

    // Lockstep batches give the same answer whatever their size.
    let other = acquire(
        &model.net,
        &test,
        n,
        7,
        &SearchConfig {
            chunk: 33,
            ..search.clone()
        },
    )
    .unwrap();
    assert!(other.threshold.equal(thr));
    assert!(other.test_indices.equal(&got.test_indices));
    assert_eq!(other.counts, c);
}

#[test]
fn discarded_images_flip_nowhere_and_too_many_fails() {
    let tmp = tempfile::tempdir().unwrap();
    synthetic::write_set(tmp.path(), 5, 40, 4).unwrap();
    let set = SetDir::new(tmp.path(), 5);
    let model = LoadedModel::load(&set.model(&Variant::all()[0]), Device::Cpu).unwrap();
    let test = Mnist::load(&DataSet::Mnist.file(tmp.path()))
        .unwrap()
        .test(Device::Cpu);
    // A grid that stops at 0.01 leaves most images unflipped.
    let search = SearchConfig {
        max_eps: 0.01,
        ..Default::default()
    };
    let signs = fgsm::signed_gradient(&model.net, &test.images, &test.labels, 64);
    let r =
        fgsm::threshold_search(&model.net, &test.images, &signs, &test.labels, &search).unwrap();
    let discarded = r.status.eq(fgsm::NO_FLIP).nonzero().squeeze_dim(1);
    assert!(discarded.size()[0] > 0);
    for &eps in &search.first_grid() {
        let x = test.images.index_select(0, &discarded);
        let g = signs.index_select(0, &discarded);
        let pred = fgsm::classify(&model.net, &fgsm::perturb_all(&x, &g, eps), 64);
        assert!(
            all(&pred.eq_tensor(&test.labels.index_select(0, &discarded))),
            "eps {eps} flips a discarded image"
        );
    }
    let wrong = r.status.eq(fgsm::WRONG_CLEAN);
    let clean = fgsm::classify(&model.net, &test.images, 64);
    assert!(wrong.equal(&clean.ne_tensor(&test.labels)));

    let err = acquire(&model.net, &test, 40, 16, &search)
        .unwrap_err()
        .to_string();
    assert!(err.contains("could be acquired"), "{err}");
}
