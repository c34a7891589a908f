//! `prepare` on tiny hand-built IDX files: good ones (raw and gzipped) land in the
//! safetensors file intact, and each kind of broken file fails with its own error,
//! naming the file, and leaves no output behind.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use dataset_prep::idx::{build, IdxError};
use dataset_prep::{prepare, SplitSizes};
use flate2::write::GzEncoder;
use flate2::Compression;
use nullclass::dataset::DataSet;
use nullclass::dataset::Mnist;
use tch::Tensor;

const SIZES: SplitSizes = SplitSizes { train: 3, test: 2 };
const TRAIN_LABELS: [u8; 3] = [5, 0, 9];
const TEST_LABELS: [u8; 2] = [7, 2];

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS_FILE: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS_FILE: &str = "t10k-labels-idx1-ubyte";

/// A temporary MNIST folder and output root.
struct Fixture {
    _tmp: tempfile::TempDir,
    mnist: PathBuf,
    out: PathBuf,
}

impl Fixture {
    /// A folder holding a good tiny set, raw or gzipped.
    fn good(gzip: bool) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mnist = tmp.path().join("mnist");
        let out = tmp.path().join("artifacts");
        fs::create_dir(&mnist).unwrap();
        let fixture = Fixture {
            _tmp: tmp,
            mnist,
            out,
        };
        let files = [
            (TRAIN_IMAGES, build::images(&build::pixels(3), 3, 28, 28)),
            (TRAIN_LABELS_FILE, build::labels(&TRAIN_LABELS)),
            (TEST_IMAGES, build::images(&build::pixels(2), 2, 28, 28)),
            (TEST_LABELS_FILE, build::labels(&TEST_LABELS)),
        ];
        for (name, bytes) in files {
            fixture.put(name, &bytes, gzip);
        }
        fixture
    }

    /// Writes `name` (or `name.gz`), removing the other form so only this one is read.
    fn put(&self, name: &str, bytes: &[u8], gzip: bool) {
        let raw = self.mnist.join(name);
        let gz = self.mnist.join(format!("{name}.gz"));
        let _ = fs::remove_file(&raw);
        let _ = fs::remove_file(&gz);
        if gzip {
            let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
            enc.write_all(bytes).unwrap();
            fs::write(gz, enc.finish().unwrap()).unwrap();
        } else {
            fs::write(raw, bytes).unwrap();
        }
    }

    fn prepare(&self) -> anyhow::Result<dataset_prep::manifest::Manifest> {
        prepare(DataSet::Mnist, &self.mnist, &self.out, SIZES)
    }

    /// Runs `prepare`, expects it to fail, checks that nothing was written, and
    /// returns the error.
    fn fails(&self) -> anyhow::Error {
        let err = match self.prepare() {
            Ok(_) => panic!("prepare accepted a broken input"),
            Err(err) => err,
        };
        assert!(
            !DataSet::Mnist.file(&self.out).exists(),
            "failed run left {}",
            DataSet::Mnist.file(&self.out).display()
        );
        assert!(
            !DataSet::Mnist.manifest(&self.out).exists(),
            "failed run left the manifest"
        );
        if self.out.join("data").exists() {
            assert_eq!(
                fs::read_dir(self.out.join("data")).unwrap().count(),
                0,
                "failed run left files"
            );
        }
        err
    }

    fn path(&self, name: &str) -> String {
        self.mnist.join(name).display().to_string()
    }
}

fn idx_error(err: &anyhow::Error) -> &IdxError {
    err.chain()
        .find_map(|e| e.downcast_ref::<IdxError>())
        .unwrap_or_else(|| panic!("not an IDX error: {err:#}"))
}

fn bytes(t: &Tensor) -> Vec<u8> {
    let t = t.flatten(0, -1);
    let mut out = vec![0u8; t.numel()];
    t.copy_data(&mut out, t.numel());
    out
}

fn check_good(fixture: &Fixture, gzip: bool) {
    let manifest = fixture.prepare().unwrap();
    let mnist = Mnist::load(&DataSet::Mnist.file(&fixture.out)).unwrap();
    assert_eq!(mnist.train_images.size(), [3, 28, 28]);
    assert_eq!(mnist.test_images.size(), [2, 28, 28]);
    assert_eq!(bytes(&mnist.train_images), build::pixels(3));
    assert_eq!(bytes(&mnist.test_images), build::pixels(2));
    assert_eq!(bytes(&mnist.train_labels), TRAIN_LABELS);
    assert_eq!(bytes(&mnist.test_labels), TEST_LABELS);

    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(DataSet::Mnist.manifest(&fixture.out)).unwrap())
            .unwrap();
    assert_eq!(json["train_count"], 3);
    assert_eq!(json["test_count"], 2);
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    let sources = json["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 4);
    let roles: Vec<_> = sources
        .iter()
        .map(|s| s["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["train_images", "train_labels", "test_images", "test_labels"]
    );
    let train_labels = &sources[1];
    assert_eq!(train_labels["gzipped"], gzip);
    assert_eq!(train_labels["count"], 3);
    // Of the uncompressed bytes, whichever form was read.
    let expected_sha = nullclass::artifacts::sha256_hex(&build::labels(&TRAIN_LABELS));
    assert_eq!(train_labels["sha256"], expected_sha);
    assert_eq!(train_labels["is_original"], false);
    assert!(train_labels["path"]
        .as_str()
        .unwrap()
        .ends_with(if gzip { ".gz" } else { "ubyte" }));
    assert_eq!(manifest.sources[1].sha256, expected_sha);
    assert_eq!(
        json["output_sha256"],
        nullclass::artifacts::sha256_file(&DataSet::Mnist.file(&fixture.out)).unwrap()
    );
}

#[test]
fn raw_files_round_trip() {
    check_good(&Fixture::good(false), false);
}

#[test]
fn gzipped_files_round_trip() {
    check_good(&Fixture::good(true), true);
}

#[test]
fn raw_file_wins_over_gzipped() {
    let fixture = Fixture::good(false);
    // A broken .gz beside a good raw file is never opened.
    fs::write(
        fixture.mnist.join(format!("{TRAIN_IMAGES}.gz")),
        b"not gzip",
    )
    .unwrap();
    fixture.prepare().unwrap();
}

#[test]
fn truncated_images() {
    let fixture = Fixture::good(false);
    let mut file = build::images(&build::pixels(3), 3, 28, 28);
    file.truncate(file.len() - 100);
    fixture.put(TRAIN_IMAGES, &file, false);
    let err = fixture.fails();
    assert!(matches!(
        idx_error(&err),
        IdxError::Truncated { count: 3, .. }
    ));
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&fixture.path(TRAIN_IMAGES)) && msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn truncated_gzipped_labels() {
    let fixture = Fixture::good(true);
    let file = build::labels(&TEST_LABELS);
    fixture.put(TEST_LABELS_FILE, &file[..file.len() - 1], true);
    let err = fixture.fails();
    assert!(matches!(idx_error(&err), IdxError::Truncated { .. }));
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&fixture.path(&format!("{TEST_LABELS_FILE}.gz"))),
        "{msg}"
    );
}

#[test]
fn header_cut_short() {
    let fixture = Fixture::good(false);
    fixture.put(TEST_IMAGES, &build::images(&[], 2, 28, 28)[..12], false);
    let err = fixture.fails();
    assert_eq!(
        idx_error(&err),
        &IdxError::NoHeader {
            len: 12,
            header: 16
        }
    );
    assert!(
        format!("{err:#}").contains(&fixture.path(TEST_IMAGES)),
        "{err:#}"
    );
}

#[test]
fn trailing_bytes() {
    let fixture = Fixture::good(false);
    let mut file = build::labels(&TRAIN_LABELS);
    file.push(0);
    fixture.put(TRAIN_LABELS_FILE, &file, false);
    let err = fixture.fails();
    assert!(matches!(idx_error(&err), IdxError::TrailingBytes { .. }));
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&fixture.path(TRAIN_LABELS_FILE)) && msg.contains("trailing bytes"),
        "{msg}"
    );
}

#[test]
fn wrong_magic() {
    let fixture = Fixture::good(false);
    // The label file put where the image file belongs.
    fixture.put(TEST_IMAGES, &build::labels(&TEST_LABELS), false);
    let err = fixture.fails();
    assert_eq!(
        idx_error(&err),
        &IdxError::WrongMagic {
            found: 2049,
            expected: 2051
        }
    );
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&fixture.path(TEST_IMAGES)) && msg.contains("wrong magic"),
        "{msg}"
    );
}

#[test]
fn gzip_named_as_raw() {
    let fixture = Fixture::good(true);
    let gz = fixture.mnist.join(format!("{TRAIN_LABELS_FILE}.gz"));
    fs::rename(&gz, fixture.mnist.join(TRAIN_LABELS_FILE)).unwrap();
    let err = fixture.fails();
    assert!(matches!(idx_error(&err), IdxError::WrongMagic { .. }));
    assert!(format!("{err:#}").contains(".gz suffix"), "{err:#}");
}

#[test]
fn wrong_dimensions() {
    let fixture = Fixture::good(false);
    fixture.put(
        TRAIN_IMAGES,
        &build::images(&vec![0; 3 * 32 * 32], 3, 32, 32),
        false,
    );
    let err = fixture.fails();
    assert_eq!(
        idx_error(&err),
        &IdxError::WrongDimensions { rows: 32, cols: 32 }
    );
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&fixture.path(TRAIN_IMAGES)) && msg.contains("wrong dimensions"),
        "{msg}"
    );
}

#[test]
fn label_out_of_range() {
    let fixture = Fixture::good(false);
    fixture.put(TEST_LABELS_FILE, &build::labels(&[7, 10]), false);
    let err = fixture.fails();
    assert_eq!(
        idx_error(&err),
        &IdxError::LabelOutOfRange {
            index: 1,
            label: 10,
            bad: 1
        }
    );
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&fixture.path(TEST_LABELS_FILE)) && msg.contains("out of range"),
        "{msg}"
    );
}

#[test]
fn image_and_label_counts_differ() {
    let fixture = Fixture::good(false);
    fixture.put(TRAIN_LABELS_FILE, &build::labels(&[5, 0]), false);
    let msg = format!("{:#}", fixture.fails());
    assert!(msg.contains("count mismatch"), "{msg}");
    assert!(msg.contains(&fixture.path(TRAIN_IMAGES)), "{msg}");
    assert!(msg.contains(&fixture.path(TRAIN_LABELS_FILE)), "{msg}");
}

#[test]
fn wrong_count_for_the_split() {
    let fixture = Fixture::good(false);
    // Consistent with each other, but the test split must hold 2.
    fixture.put(
        TEST_IMAGES,
        &build::images(&build::pixels(3), 3, 28, 28),
        false,
    );
    fixture.put(TEST_LABELS_FILE, &build::labels(&[1, 2, 3]), false);
    let msg = format!("{:#}", fixture.fails());
    assert!(
        msg.contains("wrong count") && msg.contains(&fixture.path(TEST_IMAGES)),
        "{msg}"
    );
}

#[test]
fn missing_file() {
    let fixture = Fixture::good(false);
    fs::remove_file(fixture.mnist.join(TEST_LABELS_FILE)).unwrap();
    let msg = format!("{:#}", fixture.fails());
    assert!(
        msg.contains("missing") && msg.contains(&fixture.path(TEST_LABELS_FILE)),
        "{msg}"
    );
}

#[test]
fn corrupt_gzip() {
    let fixture = Fixture::good(true);
    let gz = fixture.mnist.join(format!("{TRAIN_IMAGES}.gz"));
    let mut data = fs::read(&gz).unwrap();
    data.truncate(data.len() / 2);
    fs::write(&gz, data).unwrap();
    let msg = format!("{:#}", fixture.fails());
    assert!(
        msg.contains("cannot decompress") && msg.contains(&gz.display().to_string()),
        "{msg}"
    );
}

/// The real MNIST, if scripts/fetch-mnist.sh has put it in the repository's data/mnist.
#[test]
fn real_mnist_if_present() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    let present = [
        TRAIN_IMAGES,
        TRAIN_LABELS_FILE,
        TEST_IMAGES,
        TEST_LABELS_FILE,
    ]
    .iter()
    .all(|n| dir.join(n).is_file() || dir.join(format!("{n}.gz")).is_file());
    if !present {
        eprintln!(
            "skipped: no MNIST in {} (run scripts/fetch-mnist.sh)",
            dir.display()
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let manifest = prepare(DataSet::Mnist, &dir, out.path(), SplitSizes::MNIST).unwrap();
    assert!(
        manifest.sources.iter().all(|s| s.is_original),
        "{manifest:#?}"
    );
    let mnist = Mnist::load(&DataSet::Mnist.file(out.path())).unwrap();
    assert_eq!(mnist.train_images.size(), [60_000, 28, 28]);
    assert_eq!(mnist.test_images.size(), [10_000, 28, 28]);
    assert_eq!(mnist.train_labels.int64_value(&[0]), 5);
    assert_eq!(mnist.test_labels.int64_value(&[0]), 7);
    // The training set famously holds 6742 ones; a reordering or offset error would
    // keep the shapes and maybe label 0, but not this.
    let ones = mnist
        .train_labels
        .eq(1)
        .sum(tch::Kind::Int64)
        .int64_value(&[]);
    assert_eq!(ones, 6742);
}
