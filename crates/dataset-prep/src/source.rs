//! Finding and reading one IDX source file, raw or gzipped.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use nullclass::dataset::DataSet;

/// More than any MNIST file (47 MB) needs; it stops a corrupt or hostile .gz from
/// filling memory before the parser can reject it.
const MAX_BYTES: u64 = 256 << 20;

/// One source file's uncompressed content.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub gzipped: bool,
    pub bytes: Vec<u8>,
}

/// Reads `dir/name`, or `dir/name.gz` if there is no raw file. The raw file wins
/// when both exist, as in the fetch scripts.
pub fn read(dataset: DataSet, dir: &Path, name: &str) -> Result<Source> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let (path, gzipped) = if raw.is_file() {
        (raw, false)
    } else if gz.is_file() {
        (gz, true)
    } else {
        bail!(
            "missing {} file: neither {} nor {} exists (run scripts/fetch-{}.sh {})",
            dataset.title(),
            raw.display(),
            gz.display(),
            dataset.name(),
            dir.display()
        );
    };
    let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    let read = if gzipped {
        MultiGzDecoder::new(file)
            .take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        file.take(MAX_BYTES + 1).read_to_end(&mut bytes)
    };
    read.with_context(|| {
        if gzipped {
            format!(
                "cannot decompress {} (not a valid gzip file?)",
                path.display()
            )
        } else {
            format!("cannot read {}", path.display())
        }
    })?;
    if bytes.len() as u64 > MAX_BYTES {
        bail!(
            "{}: more than {} MiB{}, far larger than any MNIST-format file",
            path.display(),
            MAX_BYTES >> 20,
            if gzipped { " uncompressed" } else { "" }
        );
    }
    Ok(Source {
        path,
        gzipped,
        bytes,
    })
}
