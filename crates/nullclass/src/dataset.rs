//! The prepared MNIST set: one safetensors file of uint8 images `[N,28,28]` and uint8
//! labels, train and test, written by `dataset-prep` and read by every other tool.

use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};

pub const IMAGE_SIDE: i64 = 28;
pub const TRAIN_COUNT: i64 = 60_000;
pub const TEST_COUNT: i64 = 10_000;

const NAMES: [&str; 4] = ["train_images", "train_labels", "test_images", "test_labels"];

/// MNIST as stored on disk: uint8 tensors on the CPU.
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
            .with_context(|| format!("cannot read the prepared MNIST file {}", ctx()))?;
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
