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
        let n = labels.size()[0];
        let correct = predictions
            .eq_tensor(labels)
            .sum(Kind::Int64)
            .int64_value(&[]);
        // A label is never the null class, so a null prediction is never also correct.
        let unclassified = predictions.eq(NULL_CLASS).sum(Kind::Int64).int64_value(&[]);
        Self {
            n,
            correct,
            misclassified: n - correct - unclassified,
            unclassified,
        }
    }

    /// Outcomes for each row of predictions `[G,N]` against the same labels `[N]`.
    pub fn per_row(predictions: &Tensor, labels: &Tensor) -> Result<Vec<Self>> {
        let n = labels.size()[0];
        let sum = |t: Tensor| Vec::<i64>::try_from(t.sum_dim_intlist(1, false, Kind::Int64));
        let correct = sum(predictions.eq_tensor(&labels.unsqueeze(0)))?;
        let unclassified = sum(predictions.eq(NULL_CLASS))?;
        Ok(correct
            .into_iter()
            .zip(unclassified)
            .map(|(correct, unclassified)| Self {
                n,
                correct,
                misclassified: n - correct - unclassified,
                unclassified,
            })
            .collect())
    }

    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.n as f64
    }

    pub fn null_rate(&self) -> f64 {
        self.unclassified as f64 / self.n as f64
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
}
