//! `.npy` artifacts read as plain vectors, each checked for its dtype and shape
//! with an error naming the file: the report reads what the tools wrote and needs
//! no tensors.

use std::path::Path;

use anyhow::{bail, ensure, Result};
use nullclass::npy::{self, Array, Values};

/// Shape with `ANY` for an axis of any length.
pub const ANY: i64 = -1;

fn read(path: &Path, dtype: &str, shape: &[i64]) -> Result<Array> {
    let a = npy::read_array(path)?;
    let fits = a.shape.len() == shape.len()
        && a.shape
            .iter()
            .zip(shape)
            .all(|(&d, &want)| want == ANY || d == want);
    let show = |s: &[i64]| {
        let dims: Vec<String> = s
            .iter()
            .map(|&d| if d == ANY { "N".into() } else { d.to_string() })
            .collect();
        format!("[{}]", dims.join(", "))
    };
    ensure!(
        a.dtype() == dtype && fits,
        "{}: expected {dtype} {}, found {} {:?}",
        path.display(),
        show(shape),
        a.dtype(),
        a.shape
    );
    Ok(a)
}

/// A float32 array of `shape`, flat in C order.
pub fn f32s(path: &Path, shape: &[i64]) -> Result<(Vec<i64>, Vec<f32>)> {
    let a = read(path, "float32", shape)?;
    match a.values {
        Values::F32(v) => Ok((a.shape, v)),
        _ => bail!("{}: not float32", path.display()),
    }
}

/// An int64 array of `shape`, flat in C order.
pub fn i64s(path: &Path, shape: &[i64]) -> Result<(Vec<i64>, Vec<i64>)> {
    let a = read(path, "int64", shape)?;
    match a.values {
        Values::I64(v) => Ok((a.shape, v)),
        _ => bail!("{}: not int64", path.display()),
    }
}

/// Splits flat 28 x 28 images into one vector per image.
pub fn images(flat: &[f32]) -> Vec<Vec<f32>> {
    flat.chunks(784).map(<[f32]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_dtype_and_shape_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        npy::write(&p, &tch::Tensor::from_slice(&[1i64, 2, 3])).unwrap();
        assert_eq!(i64s(&p, &[ANY]).unwrap(), (vec![3], vec![1, 2, 3]));
        assert_eq!(i64s(&p, &[3]).unwrap().1, vec![1, 2, 3]);
        for err in [
            f32s(&p, &[3]).unwrap_err(),
            i64s(&p, &[4]).unwrap_err(),
            i64s(&p, &[3, ANY]).unwrap_err(),
        ] {
            let text = format!("{err:#}");
            assert!(
                text.contains("a.npy") && text.contains("expected"),
                "{text}"
            );
        }
    }
}
