//! The prepared data set: one safetensors file of uint8 images `[N,28,28]` and uint8
//! labels, train and test, written by `dataset-prep` and read by every other tool.
//! MNIST or Fashion-MNIST (the same IDX format and shapes); which one an artifacts
//! root holds is told by the file's name, and every artifact records it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

pub const IMAGE_SIDE: i64 = 28;
pub const TRAIN_COUNT: i64 = 60_000;
pub const TEST_COUNT: i64 = 10_000;

/// The data sets nullclass studies: 28x28 greyscale, 10 classes, 60,000 + 10,000.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSet {
    /// Older artifacts carry no `dataset` field: they were all MNIST.
    #[default]
    Mnist,
    FashionMnist,
}

impl DataSet {
    pub const ALL: [DataSet; 2] = [DataSet::Mnist, DataSet::FashionMnist];

    /// The name used in flags, file names and JSON.
    pub fn name(self) -> &'static str {
        match self {
            DataSet::Mnist => "mnist",
            DataSet::FashionMnist => "fashion-mnist",
        }
    }

    /// The name for prose and titles.
    pub fn title(self) -> &'static str {
        match self {
            DataSet::Mnist => "MNIST",
            DataSet::FashionMnist => "Fashion-MNIST",
        }
    }

    /// What one of the 10 classes is called in prose: the report's "digit" only
    /// where the classes are digits.
    pub fn class_word(self) -> &'static str {
        match self {
            DataSet::Mnist => "digit",
            DataSet::FashionMnist => "class",
        }
    }

    /// Label `i`'s name, for figures and tables.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            DataSet::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DataSet::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }

    /// The prepared file `ROOT/data/NAME.safetensors` (`data/mnist.safetensors` for
    /// MNIST, as before there was a second data set).
    pub fn file(self, root: &Path) -> PathBuf {
        root.join("data")
            .join(format!("{}.safetensors", self.name()))
    }

    /// The JSON manifest beside [`DataSet::file`].
    pub fn manifest(self, root: &Path) -> PathBuf {
        root.join("data").join(format!("{}.json", self.name()))
    }

    /// Which data set the artifacts root holds: the one whose prepared file exists.
    /// One root holds one data set; none, or both, is an error saying what to do.
    pub fn of_root(root: &Path) -> Result<DataSet> {
        let present: Vec<DataSet> = DataSet::ALL
            .into_iter()
            .filter(|d| d.file(root).exists())
            .collect();
        match present.as_slice() {
            [one] => Ok(*one),
            [] => bail!(
                "{} holds no prepared data set: neither {} nor {} exists (run dataset-prep --artifacts {})",
                root.display(),
                DataSet::Mnist.file(root).display(),
                DataSet::FashionMnist.file(root).display(),
                root.display()
            ),
            _ => bail!(
                "{} holds two prepared data sets ({} and {}); one artifacts root holds one data set, so remove one or use another --artifacts",
                root.display(),
                DataSet::Mnist.file(root).display(),
                DataSet::FashionMnist.file(root).display()
            ),
        }
    }

    /// Fails unless `found` (what an input was made from) is `self` (what this run
    /// works on), naming both and the input.
    pub fn check_same(self, found: DataSet, input: &Path) -> Result<()> {
        if found != self {
            bail!(
                "{} was made from {}, but this run works on {}: data sets cannot be mixed",
                input.display(),
                found.title(),
                self.title()
            );
        }
        Ok(())
    }
}

impl fmt::Display for DataSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DataSet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DataSet::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("unknown data set '{s}' (expected mnist or fashion-mnist)"))
    }
}

/// The `dataset` field of an artifact's JSON (MNIST when absent: written before
/// there was a second data set); an unknown value is an error naming the file.
pub fn recorded(json: &serde_json::Value, file: &Path) -> Result<DataSet> {
    match json.get("dataset") {
        None => Ok(DataSet::Mnist),
        Some(v) => v
            .as_str()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("{}: unknown dataset {v}", file.display())),
    }
}

/// The prepared data set of an artifacts root, loaded.
pub struct Prepared {
    pub dataset: DataSet,
    pub file: PathBuf,
    pub data: Mnist,
}

impl Prepared {
    pub fn open(root: &Path) -> Result<Prepared> {
        let dataset = DataSet::of_root(root)?;
        let file = dataset.file(root);
        let data = Mnist::load(&file)?;
        Ok(Prepared {
            dataset,
            file,
            data,
        })
    }
}

const NAMES: [&str; 4] = ["train_images", "train_labels", "test_images", "test_labels"];

/// A prepared data set as stored on disk (MNIST's layout, whichever set it holds):
/// uint8 tensors on the CPU.
#[derive(Debug)]
pub struct Mnist {
    pub train_images: Tensor,
    pub train_labels: Tensor,
    pub test_images: Tensor,
    pub test_labels: Tensor,
}

/// One split as the models consume it: float images in [0, 1] shaped `[N,1,28,28]`
/// and int64 labels, on the training device.
#[derive(Debug)]
pub struct Split {
    pub images: Tensor,
    pub labels: Tensor,
}

impl Split {
    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `n` items (the whole split if it has fewer).
    pub fn head(&self, n: i64) -> Split {
        let n = n.min(self.len());
        Split {
            images: self.images.narrow(0, 0, n),
            labels: self.labels.narrow(0, 0, n),
        }
    }

    /// Items `[start, start + n)`.
    pub fn slice(&self, start: i64, n: i64) -> Split {
        Split {
            images: self.images.narrow(0, start, n),
            labels: self.labels.narrow(0, start, n),
        }
    }
}

impl Mnist {
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors = [
            (NAMES[0], &self.train_images),
            (NAMES[1], &self.train_labels),
            (NAMES[2], &self.test_images),
            (NAMES[3], &self.test_labels),
        ];
        crate::artifacts::write_atomic(path, |tmp| {
            Tensor::write_safetensors(&tensors, tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))
        })
    }

    /// Loads and checks the file: names, dtypes, shapes and label range.
    pub fn load(path: &Path) -> Result<Self> {
        let ctx = || format!("{} (run dataset-prep to make it)", path.display());
        let tensors = Tensor::read_safetensors(path)
            .with_context(|| format!("cannot read the prepared data file {}", ctx()))?;
        let get = |name: &str| -> Result<Tensor> {
            let pos = tensors.iter().position(|(n, _)| n == name);
            match pos {
                Some(i) => Ok(tensors[i].1.shallow_clone()),
                None => bail!("{}: no tensor named {name}", path.display()),
            }
        };
        let mnist = Mnist {
            train_images: get(NAMES[0])?,
            train_labels: get(NAMES[1])?,
            test_images: get(NAMES[2])?,
            test_labels: get(NAMES[3])?,
        };
        for (name, images, labels) in [
            ("train", &mnist.train_images, &mnist.train_labels),
            ("test", &mnist.test_images, &mnist.test_labels),
        ] {
            let n = labels.size().first().copied().unwrap_or(0);
            if images.kind() != Kind::Uint8 || labels.kind() != Kind::Uint8 {
                bail!("{}: {name} tensors must be uint8", path.display());
            }
            if images.size() != [n, IMAGE_SIDE, IMAGE_SIDE] || labels.size() != [n] {
                bail!(
                    "{}: {name} images {:?} and labels {:?} do not fit [N,28,28] and [N]",
                    path.display(),
                    images.size(),
                    labels.size()
                );
            }
            if n > 0 && labels.max().int64_value(&[]) > 9 {
                bail!("{}: {name} labels outside 0-9", path.display());
            }
        }
        Ok(mnist)
    }

    pub fn train(&self, device: Device) -> Split {
        to_split(&self.train_images, &self.train_labels, device)
    }

    pub fn test(&self, device: Device) -> Split {
        to_split(&self.test_images, &self.test_labels, device)
    }
}

fn to_split(images: &Tensor, labels: &Tensor, device: Device) -> Split {
    let n = labels.size()[0];
    let images = images
        .to_device(device)
        .to_kind(Kind::Float)
        .g_div_scalar(255.0)
        .view([n, 1, IMAGE_SIDE, IMAGE_SIDE]);
    Split {
        images,
        labels: labels.to_device(device).to_kind(Kind::Int64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn a_root_holds_the_data_set_whose_file_it_has() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let err = DataSet::of_root(root).unwrap_err().to_string();
        assert!(
            err.contains("mnist.safetensors") && err.contains("dataset-prep"),
            "{err}"
        );
        touch(&DataSet::FashionMnist.file(root));
        assert_eq!(DataSet::of_root(root).unwrap(), DataSet::FashionMnist);
        touch(&DataSet::Mnist.file(root));
        let err = DataSet::of_root(root).unwrap_err().to_string();
        assert!(err.contains("two prepared data sets"), "{err}");
    }

    #[test]
    fn mixing_names_both_data_sets_and_the_input() {
        let input = Path::new("seed-00/models/m.json");
        let err = DataSet::Mnist
            .check_same(DataSet::FashionMnist, input)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Fashion-MNIST")
                && err.contains("works on MNIST")
                && err.contains("m.json"),
            "{err}"
        );
        DataSet::FashionMnist
            .check_same(DataSet::FashionMnist, input)
            .unwrap();
    }

    #[test]
    fn recorded_names_parse_and_old_jsons_are_mnist() {
        let file = Path::new("x.json");
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(recorded(&v("{}"), file).unwrap(), DataSet::Mnist);
        assert_eq!(
            recorded(&v(r#"{"dataset":"fashion-mnist"}"#), file).unwrap(),
            DataSet::FashionMnist
        );
        let err = recorded(&v(r#"{"dataset":"cifar"}"#), file)
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.json") && err.contains("cifar"), "{err}");
        // Serialised as parsed, so a JSON round trip keeps the name.
        for d in DataSet::ALL {
            assert_eq!(serde_json::to_value(d).unwrap(), d.name());
            assert_eq!(d.name().parse::<DataSet>().unwrap(), d);
        }
    }
}
