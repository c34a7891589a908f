//! Scoring predictions: correct, misclassified (another digit) or unclassified (the
//! null class), and the CSV rows that carry them.

use anyhow::Result;
use nullclass::model::{LoadedModel, NULL_CLASS};
use serde::Serialize;
use tch::{Kind, Tensor};

/// Outcome counts over a set of images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    pub n: i64,
    pub correct: i64,
    pub misclassified: i64,
    pub unclassified: i64,
}

impl Outcomes {
    /// Outcomes from predicted classes and digit labels (int64 `[N]`, same device).
    pub fn of(predictions: &Tensor, labels: &Tensor) -> Self {
        let pair = Self::on_device(predictions, labels);
        Self::from_pair(
            labels.size()[0],
            pair.int64_value(&[0]),
            pair.int64_value(&[1]),
        )
    }

    /// `[correct, unclassified]` (int64 `[2]`) left on the predictions' device, so
    /// that many can be read back at once ([`PendingOutcomes`]).
    pub fn on_device(predictions: &Tensor, labels: &Tensor) -> Tensor {
        let correct = predictions.eq_tensor(labels).sum(Kind::Int64);
        // A label is never the null class, so a null prediction is never also correct.
        let unclassified = predictions.eq(NULL_CLASS).sum(Kind::Int64);
        Tensor::stack(&[correct, unclassified], 0)
    }

    fn from_pair(n: i64, correct: i64, unclassified: i64) -> Self {
        Self {
            n,
            correct,
            misclassified: n - correct - unclassified,
            unclassified,
        }
    }

    /// `[correct, unclassified]` for each row of predictions `[G,N]` (int64 `[G,2]`),
    /// left on the device.
    pub fn per_row_on_device(predictions: &Tensor, labels: &Tensor) -> Tensor {
        let sum = |t: Tensor| t.sum_dim_intlist(1, false, Kind::Int64);
        let correct = sum(predictions.eq_tensor(&labels.unsqueeze(0)));
        let unclassified = sum(predictions.eq(NULL_CLASS));
        Tensor::stack(&[correct, unclassified], 1)
    }

    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.n as f64
    }

    pub fn null_rate(&self) -> f64 {
        self.unclassified as f64 / self.n as f64
    }
}

/// Counts gathered on the device and read back to the host in one copy: on a GPU
/// every read waits for all queued work, so a set reads once, at its end.
#[derive(Default)]
pub struct PendingOutcomes {
    /// Each entry: images per row and `[rows, 2]` (correct, unclassified).
    parts: Vec<(i64, Tensor)>,
    rows: usize,
}

impl PendingOutcomes {
    /// Adds `[rows, 2]` counts over `n` images each (from [`Outcomes::on_device`] or
    /// [`Outcomes::per_row_on_device`]); returns the index of the first row.
    pub fn push(&mut self, n: i64, pairs: Tensor) -> usize {
        let pairs = pairs.view([-1, 2]);
        let first = self.rows;
        self.rows += pairs.size()[0] as usize;
        self.parts.push((n, pairs));
        first
    }

    /// Every row pushed, in order.
    pub fn read(&self) -> Result<Vec<Outcomes>> {
        if self.parts.is_empty() {
            return Ok(Vec::new());
        }
        let all: Vec<&Tensor> = self.parts.iter().map(|(_, t)| t).collect();
        let flat = Vec::<i64>::try_from(Tensor::cat(&all, 0).flatten(0, -1))?;
        let mut pairs = flat.chunks_exact(2);
        let mut out = Vec::with_capacity(self.rows);
        for (n, t) in &self.parts {
            for _ in 0..t.size()[0] {
                let p = pairs
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("counts read back short"))?;
                out.push(Outcomes::from_pair(*n, p[0], p[1]));
            }
        }
        Ok(out)
    }
}

/// Predicted class (int64 `[M]`) and its softmax probability (`[M]` in `kind`: float32
/// for the saved predictions, float64 where near-1 confidences must stay distinct),
/// `chunk` images at a time.
pub fn predict_with_prob(
    model: &LoadedModel,
    images: &Tensor,
    chunk: i64,
    kind: Kind,
) -> (Tensor, Tensor) {
    let n = images.size()[0];
    let (mut classes, mut probs) = (Vec::new(), Vec::new());
    for s in (0..n).step_by(chunk.max(1) as usize) {
        let logits = model.logits(&images.narrow(0, s, chunk.min(n - s)));
        let (p, c) = logits.to_kind(kind).softmax(1, kind).max_dim(1, false);
        classes.push(c);
        probs.push(p);
    }
    (Tensor::cat(&classes, 0), Tensor::cat(&probs, 0))
}

pub const CLEAN_HEADER: &str = "model,n,accuracy,null_rate";
pub const THRESHOLD_HEADER: &str = "model,n,correct,misclassified,unclassified";
pub const SWEEP_HEADER: &str = "model,eps,n,correct,misclassified,unclassified";

pub fn clean_row(model: &str, c: &Outcomes) -> String {
    format!("{model},{},{},{}", c.n, c.accuracy(), c.null_rate())
}

pub fn threshold_row(model: &str, c: &Outcomes) -> String {
    format!(
        "{model},{},{},{},{}",
        c.n, c.correct, c.misclassified, c.unclassified
    )
}

/// `eps` is printed as its shortest float32 form (0.3, not 0.30000001).
pub fn sweep_row(model: &str, eps: f32, c: &Outcomes) -> String {
    format!(
        "{model},{eps:?},{},{},{},{}",
        c.n, c.correct, c.misclassified, c.unclassified
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_made_counts() {
        let labels = Tensor::from_slice(&[3i64, 3, 1, 0, 7, 9, 2]);
        let preds = Tensor::from_slice(&[3i64, 10, 1, 8, 10, 9, 5]);
        let c = Outcomes::of(&preds, &labels);
        assert_eq!(
            c,
            Outcomes {
                n: 7,
                correct: 3,
                misclassified: 2,
                unclassified: 2
            }
        );
        assert_eq!(threshold_row("us", &c), "us,7,3,2,2");
        assert_eq!(sweep_row("m", 0.3, &c), "m,0.3,7,3,2,2");
        assert_eq!(sweep_row("m", 1.0, &c), "m,1.0,7,3,2,2");
        let clean = Outcomes {
            n: 4,
            correct: 3,
            misclassified: 0,
            unclassified: 1,
        };
        assert_eq!(clean_row("base", &clean), "base,4,0.75,0.25");
    }

    #[test]
    fn device_counts_read_back_in_push_order() {
        let labels = Tensor::from_slice(&[3i64, 3, 1, 0]);
        let a = Tensor::from_slice(&[3i64, 10, 1, 8]);
        let b = Tensor::from_slice(&[10i64, 10, 10, 0]);
        let rows = Tensor::stack(&[&b, &labels, &a], 0);
        let mut pending = PendingOutcomes::default();
        assert_eq!(pending.push(4, Outcomes::on_device(&a, &labels)), 0);
        assert_eq!(
            pending.push(4, Outcomes::per_row_on_device(&rows, &labels)),
            1
        );
        let short = Tensor::from_slice(&[1i64, 10]);
        assert_eq!(
            pending.push(2, Outcomes::on_device(&short, &labels.narrow(0, 1, 2))),
            4
        );
        let got = pending.read().unwrap();
        let expected: Vec<Outcomes> = [
            (&a, &labels),
            (&b, &labels),
            (&labels, &labels),
            (&a, &labels),
        ]
        .into_iter()
        .map(|(p, l)| Outcomes::of(p, l))
        .chain([Outcomes {
            n: 2,
            correct: 0,
            misclassified: 1,
            unclassified: 1,
        }])
        .collect();
        assert_eq!(got, expected);
        assert_eq!(
            got[1],
            Outcomes {
                n: 4,
                correct: 1,
                misclassified: 0,
                unclassified: 3
            }
        );
    }
}
