//! Walking the test set in order and keeping the first N images that have an FGSM
//! epsilon threshold (method-notes.md, "FGSM with an epsilon threshold").

use anyhow::{bail, Result};
use nullclass::dataset::Split;
use nullclass::fgsm::{self, SearchConfig, FOUND, NO_FLIP, WRONG_CLEAN};
use tch::nn::ModuleT;
use tch::{Kind, Tensor};

/// The N acquired images and what the walk cost, on the model's device.
#[derive(Debug)]
pub struct Acquired {
    /// float32 `[N,1,28,28]` in [0, 1].
    pub images: Tensor,
    /// int64 `[N]`.
    pub labels: Tensor,
    /// int64 `[N]`: positions in the test set.
    pub test_indices: Tensor,
    /// float32 `[N,1,28,28]` in {-1, 0, 1}.
    pub signs: Tensor,
    /// float32 `[N]`.
    pub threshold: Tensor,
    /// float32 `[N]`: the bracket's lower end.
    pub lower: Tensor,
    pub counts: WalkTally,
    /// Most refinement rounds any batch needed.
    pub max_rounds: usize,
    /// Perturbed images classified by the search.
    pub forwards: i64,
}

/// One batch's acquired images.
struct Kept {
    images: Tensor,
    labels: Tensor,
    test_indices: Tensor,
    signs: Tensor,
    threshold: Tensor,
    lower: Tensor,
}

/// What happened to the test images walked before the N-th was acquired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WalkTally {
    pub acquired: i64,
    pub skipped_wrong: i64,
    pub discarded_no_flip: i64,
    /// Test images examined: the three counts above add up to it.
    pub walked: i64,
}

/// How far the walk gets: the counts up to and including the `n`-th acquired image,
/// given each walked image's search status in test-set order.
pub fn tally(statuses: &[i64], n: i64) -> WalkTally {
    let mut c = WalkTally::default();
    for &s in statuses {
        if c.acquired == n {
            break;
        }
        c.walked += 1;
        match s {
            FOUND => c.acquired += 1,
            NO_FLIP => c.discarded_no_flip += 1,
            WRONG_CLEAN => c.skipped_wrong += 1,
            _ => {}
        }
    }
    c
}

/// Runs the threshold search over `test` in order, `batch` images at a time, until
/// `n` images are acquired. Each batch is sized to what is still missing (plus a
/// margin for skipped images), so the walk does little work past the N-th image.
pub fn acquire<M: ModuleT>(
    net: &M,
    test: &Split,
    n: i64,
    batch: i64,
    search: &SearchConfig,
) -> Result<Acquired> {
    let total = test.len();
    let mut statuses: Vec<i64> = Vec::new();
    let mut kept: Vec<Kept> = Vec::new();
    let (mut found, mut start, mut max_rounds, mut forwards) = (0i64, 0i64, 0usize, 0i64);
    while found < n && start < total {
        let missing = n - found;
        let len = batch.min(total - start).min(missing + missing / 8 + 16);
        let part = test.slice(start, len);
        let signs = fgsm::signed_gradient(net, &part.images, &part.labels, search.chunk);
        let result = fgsm::threshold_search(net, &part.images, &signs, &part.labels, search)?;
        max_rounds = max_rounds.max(result.rounds);
        forwards += result.forwards;
        let status: Vec<i64> = Vec::try_from(&result.status)?;
        let idx = result.status.eq(FOUND).nonzero().squeeze_dim(1);
        found += idx.size()[0];
        let test_index =
            Tensor::arange_start(start, start + len, (Kind::Int64, part.labels.device()));
        kept.push(Kept {
            images: part.images.index_select(0, &idx),
            labels: part.labels.index_select(0, &idx),
            test_indices: test_index.index_select(0, &idx),
            signs: signs.index_select(0, &idx),
            threshold: result.threshold.index_select(0, &idx),
            lower: result.lower.index_select(0, &idx),
        });
        statuses.extend(status);
        start += len;
        eprintln!(
            "adversary-gen: walked {start}/{total} test images, acquired {}/{n}",
            found.min(n)
        );
    }
    let counts = tally(&statuses, n);
    if counts.acquired < n {
        bail!(
            "only {} of the {n} images asked for could be acquired from the {total} test images \
             ({} misclassified by the baseline, {} never flipped up to epsilon {}); ask for fewer with --n",
            counts.acquired,
            counts.skipped_wrong,
            counts.discarded_no_flip,
            search.max_eps
        );
    }
    let cat = |pick: fn(&Kept) -> &Tensor| {
        let parts: Vec<&Tensor> = kept.iter().map(pick).collect();
        Tensor::cat(&parts, 0).narrow(0, 0, n)
    };
    Ok(Acquired {
        images: cat(|k| &k.images),
        labels: cat(|k| &k.labels),
        test_indices: cat(|k| &k.test_indices),
        signs: cat(|k| &k.signs),
        threshold: cat(|k| &k.threshold),
        lower: cat(|k| &k.lower),
        counts,
        max_rounds,
        forwards,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_stops_at_the_nth() {
        let s = [
            FOUND,
            WRONG_CLEAN,
            FOUND,
            NO_FLIP,
            FOUND,
            WRONG_CLEAN,
            FOUND,
        ];
        let c = tally(&s, 3);
        assert_eq!(
            c,
            WalkTally {
                acquired: 3,
                skipped_wrong: 1,
                discarded_no_flip: 1,
                walked: 5
            }
        );
        let c = tally(&s, 10);
        assert_eq!(c.acquired, 4);
        assert_eq!(c.walked, 7);
    }
}
