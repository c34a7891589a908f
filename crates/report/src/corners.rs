//! The pixel geometry of a study (`evaluator corners`): how near its images lie to
//! the corners of the pixel hypercube, the number behind the report's explanation of
//! why mixed nulls work (section 6: MNIST images are "nearly binary").

use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};
use serde::Deserialize;

use crate::csv_rows;
use crate::tables::Grid;

/// Written by `evaluator corners --artifacts ROOT`, relative to ROOT.
pub const FILE: &str = "geometry/corners.csv";
/// The evaluator's header (evaluator/src/corners.rs).
pub const HEADER: [&str; 5] = [
    "group",
    "images",
    "near_binary_share",
    "mean_l2_to_corner",
    "std_l2_to_corner",
];

/// What the numbers mean, for every page that shows them.
pub const DEFINITIONS: &str = "Near-binary share: the share of all pixels within 0.1 of 0 or of 1. Distance to the nearest corner: the L2 (Euclidean) distance of an image to the nearest corner of the pixel hypercube [0,1]^784, the image with every pixel rounded to 0 or 1, that is sqrt(sum over pixels of min(x, 1 - x)^2); mean and population std over the group's images (L2, not L-inf: one grey pixel puts any image near 0.5 in L-inf).";

/// One group of images (clean train, clean test, mixed nulls, FGSM threshold images).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Group {
    pub group: String,
    pub images: u64,
    /// A fraction in [0, 1].
    pub near_binary_share: f64,
    pub mean_l2_to_corner: f64,
    pub std_l2_to_corner: f64,
}

pub fn path(root: &Path) -> PathBuf {
    root.join(FILE)
}

/// The groups of `root`'s corners.csv; `Ok(None)` when the file is not there (the
/// stage did not run), an error naming the file when it is there but unusable.
pub fn read(root: &Path) -> Result<Option<Vec<Group>>> {
    let path = path(root);
    if !path.is_file() {
        return Ok(None);
    }
    let mut groups = Vec::new();
    for (line, g) in csv_rows::read::<Group>(&path, &HEADER)? {
        ensure!(
            g.images > 0
                && (0.0..=1.0).contains(&g.near_binary_share)
                && g.mean_l2_to_corner >= 0.0
                && g.std_l2_to_corner >= 0.0,
            "{}: row {line}: need images > 0, a share in [0, 1] and distances >= 0",
            path.display()
        );
        groups.push(g);
    }
    ensure!(!groups.is_empty(), "{}: no rows", path.display());
    Ok(Some(groups))
}

/// The near-binary share as a display percentage.
pub fn share_text(g: &Group) -> String {
    format!("{:.1}", 100.0 * g.near_binary_share)
}

/// Mean ± std of the distance, for display.
pub fn distance_text(g: &Group) -> String {
    format!("{:.2} ± {:.2}", g.mean_l2_to_corner, g.std_l2_to_corner)
}

/// The CSV (full precision, the share in percent) and display grids of one study.
pub fn grids(groups: &[Group]) -> (Grid, Grid) {
    let mut csv = Grid::new(&[
        "group",
        "images",
        "near_binary_pct",
        "mean_l2_to_corner",
        "std_l2_to_corner",
    ]);
    let mut display = Grid::new(&[
        "images",
        "count",
        "pixels near 0 or 1 (%)",
        "L2 to nearest corner, mean ± std",
    ]);
    for g in groups {
        csv.rows.push(vec![
            g.group.clone(),
            g.images.to_string(),
            crate::tables::num(100.0 * g.near_binary_share),
            crate::tables::num(g.mean_l2_to_corner),
            crate::tables::num(g.std_l2_to_corner),
        ]);
        display.rows.push(vec![
            g.group.clone(),
            g.images.to_string(),
            share_text(g),
            distance_text(g),
        ]);
    }
    (csv, display)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_checks_and_shows() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        assert!(read(root).unwrap().is_none());
        std::fs::create_dir_all(root.join("geometry")).unwrap();
        std::fs::write(
            path(root),
            "group,images,near_binary_share,mean_l2_to_corner,std_l2_to_corner\nclean test,10,0.8126,2.5,0.25\n",
        )
        .unwrap();
        let g = read(root).unwrap().unwrap();
        assert_eq!(share_text(&g[0]), "81.3");
        assert_eq!(distance_text(&g[0]), "2.50 ± 0.25");
        std::fs::write(
            path(root),
            "group,images,near_binary_share,mean_l2_to_corner,std_l2_to_corner\nclean test,10,81.25,2.5,0.25\n",
        )
        .unwrap();
        let err = format!("{:#}", read(root).unwrap_err());
        assert!(err.contains("row 2"), "{err}");
    }
}
