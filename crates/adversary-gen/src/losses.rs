//! What the attacker maximises, per image, from the 11 logits (index 10 = null).
//!
//! Success for the attacker is a digit other than the true label: landing in the null
//! class is a failure. [`margin`] is positive exactly when the attack succeeds, so it
//! is also the yardstick by which the worst case over restarts and targets is kept.

use nullclass::model::NULL_CLASS;
use serde::Serialize;
use tch::{Reduction, Tensor};

/// A loss the attacker climbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// Cross-entropy at the true label: the report's threat model. Against a null
    /// model it is also satisfied by pushing the input into the null class.
    CrossEntropy,
    /// `max_{digit j != y} z_j - max(z_y, z_null)`: untargeted, and steering clear of
    /// the null class.
    Margin,
    /// `z_t - max_{j != t} z_j` with target digit `t = (y + offset) mod 10`.
    Targeted { offset: i64 },
}

impl Loss {
    /// The per-image objective `[B]` for logits `[B, 11]` and labels `[B]`.
    pub fn objective(self, logits: &Tensor, labels: &Tensor) -> Tensor {
        match self {
            Loss::CrossEntropy => {
                logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::None, -100, 0.0)
            }
            Loss::Margin => margin(logits, labels),
            Loss::Targeted { offset } => {
                let targets = (labels + offset).remainder(10);
                target_margin(logits, &targets)
            }
        }
    }
}

/// `logits` with the columns in `index` (`[B]`) set to -inf, so a max skips them.
fn without(logits: &Tensor, index: &Tensor) -> Tensor {
    logits.scatter_value(1, &index.unsqueeze(1), f64::NEG_INFINITY)
}

/// The untargeted margin: best wrong digit minus the better of the label and null.
pub fn margin(logits: &Tensor, labels: &Tensor) -> Tensor {
    let digits = logits.narrow(1, 0, NULL_CLASS);
    let best_wrong = without(&digits, labels).amax(1, false);
    let label = logits.gather(1, &labels.unsqueeze(1), false).squeeze_dim(1);
    let null = logits.select(1, NULL_CLASS);
    best_wrong - label.maximum(&null)
}

/// The targeted margin: the target's logit minus the best other class (null included).
pub fn target_margin(logits: &Tensor, targets: &Tensor) -> Tensor {
    let target = logits
        .gather(1, &targets.unsqueeze(1), false)
        .squeeze_dim(1);
    target - without(logits, targets).amax(1, false)
}

/// Whether each image's logits put a wrong digit on top (the attacker's success).
pub fn succeeded(logits: &Tensor, labels: &Tensor) -> Tensor {
    let pred = logits.argmax(1, false);
    pred.ne_tensor(labels).logical_and(&pred.ne(NULL_CLASS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn to_vec(t: &Tensor) -> Vec<f32> {
        Vec::try_from(t.to_kind(Kind::Float).flatten(0, -1)).unwrap()
    }

    fn logits(rows: &[[f32; 11]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, 11])
    }

    #[test]
    fn margins_by_hand() {
        // Label 0. Row 1: digit 3 wins (success). Row 2: null wins over everything.
        let mut a = [0f32; 11];
        a[0] = 2.0;
        a[3] = 5.0;
        let mut b = [0f32; 11];
        b[0] = 1.0;
        b[7] = 3.0;
        b[10] = 4.0;
        let z = logits(&[a, b]);
        let y = Tensor::from_slice(&[0i64, 0]);
        assert_eq!(to_vec(&margin(&z, &y)), [3.0, -1.0]);
        let s: Vec<bool> = Vec::try_from(succeeded(&z, &y)).unwrap();
        assert_eq!(s, [true, false]);
        // Target 3 (offset 3): row 1 leads by 3; row 2 trails null (4) by 4.
        let t = Loss::Targeted { offset: 3 }.objective(&z, &y);
        assert_eq!(to_vec(&t), [3.0, -4.0]);
        // Target wraps around: label 8, offset 3 -> digit 1.
        let mut c = [0f32; 11];
        c[1] = 2.0;
        let t = Loss::Targeted { offset: 3 }.objective(&logits(&[c]), &Tensor::from_slice(&[8i64]));
        assert_eq!(to_vec(&t), [2.0]);
    }
}
