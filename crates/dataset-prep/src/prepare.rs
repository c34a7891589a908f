//! Turning the four IDX files into the prepared safetensors file and its manifest.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nullclass::artifacts;
use nullclass::dataset::{DataSet, Mnist};
use tch::Tensor;

use crate::idx;
use crate::manifest::{self, Manifest, SourceEntry};
use crate::source;

/// How many items each split must hold (MNIST's and Fashion-MNIST's are the same).
/// Only tests use anything but [`SplitSizes::MNIST`].
#[derive(Clone, Copy, Debug)]
pub struct SplitSizes {
    pub train: usize,
    pub test: usize,
}

impl SplitSizes {
    pub const MNIST: SplitSizes = SplitSizes {
        train: nullclass::dataset::TRAIN_COUNT as usize,
        test: nullclass::dataset::TEST_COUNT as usize,
    };
}

/// A split's two files, as (role in the manifest, file name).
struct SplitFiles {
    name: &'static str,
    images: (&'static str, &'static str),
    labels: (&'static str, &'static str),
}

const SPLITS: [SplitFiles; 2] = [
    SplitFiles {
        name: "train",
        images: ("train_images", "train-images-idx3-ubyte"),
        labels: ("train_labels", "train-labels-idx1-ubyte"),
    },
    SplitFiles {
        name: "test",
        images: ("test_images", "t10k-images-idx3-ubyte"),
        labels: ("test_labels", "t10k-labels-idx1-ubyte"),
    },
];

/// One split, checked and copied into tensors.
struct Split {
    images: Tensor,
    labels: Tensor,
    sources: [SourceEntry; 2],
}

/// Reads and checks all four files in `source_dir`, then writes
/// [`DataSet::file`] and [`DataSet::manifest`] under `out`. Nothing
/// is written unless every check passes, and a failed manifest write takes the data
/// file back out, so a failed run never leaves a new output behind.
pub fn prepare(
    dataset: DataSet,
    source_dir: &Path,
    out: &Path,
    sizes: SplitSizes,
) -> Result<Manifest> {
    // One root, one data set: preparing the other one here would leave both.
    if let Some(other) = DataSet::ALL
        .into_iter()
        .find(|d| *d != dataset && d.manifest(out).exists())
    {
        bail!(
            "{} already holds {} ({}); prepare {} under another --artifacts",
            out.display(),
            other.title(),
            other.manifest(out).display(),
            dataset.title()
        );
    }
    let train = read_split(dataset, source_dir, &SPLITS[0], sizes.train)?;
    let test = read_split(dataset, source_dir, &SPLITS[1], sizes.test)?;

    let data_path = dataset.file(out);
    let mnist = Mnist {
        train_images: train.images,
        train_labels: train.labels,
        test_images: test.images,
        test_labels: test.labels,
    };
    mnist.save(&data_path)?;

    let manifest_path = dataset.manifest(out);
    let finish = || -> Result<Manifest> {
        let manifest = Manifest {
            tool: env!("CARGO_PKG_NAME"),
            dataset,
            version: env!("CARGO_PKG_VERSION"),
            output: data_path.display().to_string(),
            output_sha256: artifacts::sha256_file(&data_path)?,
            train_count: sizes.train,
            test_count: sizes.test,
            sources: train.sources.into_iter().chain(test.sources).collect(),
        };
        artifacts::write_json(&manifest_path, &manifest)?;
        Ok(manifest)
    };
    finish().inspect_err(|_| {
        // The data file without its manifest would look finished to make.
        let _ = fs::remove_file(&data_path);
    })
}

fn read_split(dataset: DataSet, dir: &Path, files: &SplitFiles, expected: usize) -> Result<Split> {
    let images_src = source::read(dataset, dir, files.images.1)?;
    let labels_src = source::read(dataset, dir, files.labels.1)?;
    let title = dataset.title();
    let images = idx::parse_images(&images_src.bytes).with_context(|| {
        format!(
            "{}: not a valid {title} image file",
            images_src.path.display()
        )
    })?;
    let labels = idx::parse_labels(&labels_src.bytes).with_context(|| {
        format!(
            "{}: not a valid {title} label file",
            labels_src.path.display()
        )
    })?;
    if images.count != labels.len() {
        bail!(
            "count mismatch: {} holds {} images but {} holds {} labels",
            images_src.path.display(),
            images.count,
            labels_src.path.display(),
            labels.len()
        );
    }
    if images.count != expected {
        bail!(
            "wrong count: {} and {} hold {} items, but the {title} {} split has {expected}",
            images_src.path.display(),
            labels_src.path.display(),
            images.count,
            files.name
        );
    }
    let n = images.count as i64;
    let side = idx::SIDE as i64;
    let split = Split {
        images: Tensor::from_slice(images.pixels).view([n, side, side]),
        labels: Tensor::from_slice(labels),
        sources: [
            entry(dataset, files.images, &images_src, images.count),
            entry(dataset, files.labels, &labels_src, labels.len()),
        ],
    };
    Ok(split)
}

fn entry(
    dataset: DataSet,
    (role, name): (&'static str, &str),
    src: &source::Source,
    count: usize,
) -> SourceEntry {
    let sha256 = artifacts::sha256_hex(&src.bytes);
    SourceEntry {
        role,
        path: src.path.display().to_string(),
        gzipped: src.gzipped,
        is_original: manifest::is_original(dataset, name, &sha256),
        sha256,
        uncompressed_bytes: src.bytes.len(),
        count,
    }
}
