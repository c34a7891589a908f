//! The one CSV reader of the report: the tools and the report must agree on every
//! header, so any other header (even reordered columns) is an error rather than a
//! silent mismatch.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use serde::de::DeserializeOwned;

/// The rows of a CSV whose header must be exactly `header`; each error names the file
/// and the row (numbered as in a text editor, the header being row 1).
pub fn read<R: DeserializeOwned>(path: &Path, header: &[&str]) -> Result<Vec<(usize, R)>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let found: Vec<String> = reader
        .headers()
        .with_context(|| format!("cannot read the header of {}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    ensure!(
        found == header,
        "{}: header is {:?}, expected exactly {:?}",
        path.display(),
        found.join(","),
        header.join(",")
    );
    reader
        .deserialize::<R>()
        .enumerate()
        .map(|(i, row)| {
            let row = row.with_context(|| {
                format!(
                    "{}: row {} does not fit the expected columns",
                    path.display(),
                    i + 2
                )
            })?;
            Ok((i + 2, row))
        })
        .collect()
}
