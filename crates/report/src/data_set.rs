//! Which data set a study root holds, and the words the page uses for it: the
//! report's study is MNIST's, so its published numbers and its word "digit" fit
//! MNIST only; a Fashion-MNIST study says "class" and is never set beside them.

use std::path::Path;

use anyhow::{bail, Result};
use nullclass::dataset::DataSet;

use crate::sets::Set;

/// The data set of a study and how the report knew it, for the provenance.
#[derive(Clone, Debug, PartialEq)]
pub struct Known {
    pub dataset: DataSet,
    pub how: String,
}

/// The data sets whose prepared file or manifest lies under `root/data`.
pub fn prepared(root: &Path) -> Vec<DataSet> {
    DataSet::ALL
        .into_iter()
        .filter(|d| d.file(root).is_file() || d.manifest(root).is_file())
        .collect()
}

/// The data set of the study under `root`: its prepared data when there is any, else
/// what the sets' JSONs record (MNIST when they record nothing: made before there was
/// a second data set). Every set must agree with it: the tools refuse to mix data
/// sets, so a set that does not was copied in by hand, and averaging it in would
/// mislead.
pub fn of_study(root: &Path, sets: &[Set]) -> Result<Known> {
    let known = match prepared(root).as_slice() {
        [one] => {
            let file = one.file(root);
            let file = if file.is_file() {
                file
            } else {
                one.manifest(root)
            };
            Known {
                dataset: *one,
                how: format!("prepared data {}", file.display()),
            }
        }
        [] => match sets.first() {
            Some(first) => Known {
                dataset: first.dataset,
                how: format!(
                    "recorded in {}'s JSONs (no prepared data under {})",
                    first.name,
                    root.join("data").display()
                ),
            },
            None => Known {
                dataset: DataSet::Mnist,
                how: "no prepared data and no set: MNIST assumed".into(),
            },
        },
        _ => bail!(
            "{} holds two prepared data sets ({} and {}); one study root holds one data set",
            root.display(),
            DataSet::Mnist.file(root).display(),
            DataSet::FashionMnist.file(root).display()
        ),
    };
    for set in sets {
        if set.dataset != known.dataset {
            bail!(
                "{} was made from {}, but the study under {} is {} ({}): data sets cannot be mixed",
                root.join(&set.name).display(),
                set.dataset.title(),
                root.display(),
                known.dataset.title(),
                known.how
            );
        }
    }
    Ok(known)
}

/// The data set of the study `other` that `report study --compare-with` sets beside
/// the one under `root` (of data set `ours`): it must hold prepared data, and of the
/// other data set.
pub fn of_other(other: &Path, ours: DataSet) -> Result<DataSet> {
    let found = match prepared(other).as_slice() {
        [one] => *one,
        [] => bail!(
            "--compare-with {}: no prepared data set there (neither {} nor {}): give the other data set's study root",
            other.display(),
            DataSet::Mnist.file(other).display(),
            DataSet::FashionMnist.file(other).display()
        ),
        _ => bail!(
            "--compare-with {}: it holds two prepared data sets; one study root holds one",
            other.display()
        ),
    };
    if found == ours {
        bail!(
            "--compare-with {}: it holds {}, the same data set as this study: compare with the other data set's study root",
            other.display(),
            found.title()
        );
    }
    Ok(found)
}

/// The words of the page that depend on the data set.
pub trait Words {
    /// Whether the report's published numbers are of this data set (MNIST's).
    fn published(self) -> bool;
    /// One class in prose: "digit" or "class".
    fn class(self) -> &'static str;
    /// The test images in prose: "digits" or "images".
    fn items(self) -> &'static str;
    /// The L-inf radii white-box attacks are commonly judged at on this data set:
    /// 0.3 is MNIST's, too large for Fashion-MNIST, whose images it can turn into
    /// another class outright.
    fn attack_radii(self) -> &'static [f64];
}

impl Words for DataSet {
    fn published(self) -> bool {
        self == DataSet::Mnist
    }

    fn class(self) -> &'static str {
        self.class_word()
    }

    fn items(self) -> &'static str {
        match self {
            DataSet::Mnist => "digits",
            DataSet::FashionMnist => "images",
        }
    }

    fn attack_radii(self) -> &'static [f64] {
        match self {
            DataSet::Mnist => &[0.1, 0.2, 0.3],
            DataSet::FashionMnist => &[0.1, 0.2],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_root_must_hold_the_other_data_set() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let err = of_other(root, DataSet::Mnist).unwrap_err().to_string();
        assert!(err.contains(&root.display().to_string()), "{err}");
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(DataSet::Mnist.manifest(root), "{}").unwrap();
        let err = of_other(root, DataSet::Mnist).unwrap_err().to_string();
        assert!(
            err.contains("same data set") && err.contains("MNIST"),
            "{err}"
        );
        assert_eq!(
            of_other(root, DataSet::FashionMnist).unwrap(),
            DataSet::Mnist
        );
        assert_eq!(of_study(root, &[]).unwrap().dataset, DataSet::Mnist);
        std::fs::write(DataSet::FashionMnist.file(root), "").unwrap();
        assert!(of_study(root, &[]).is_err());
    }
}
