//! `.npy` files that open with plain `numpy.load`: tensors in, tensors or plain
//! vectors out.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use anyhow::{bail, Context, Result};
use npyz::WriterBuilder;
use tch::{Device, Kind, Tensor};

use crate::artifacts::write_atomic;

/// Writes a CPU copy of `t` (float32, float64, int64, int32, uint8 or bool as uint8).
pub fn write(path: &Path, t: &Tensor) -> Result<()> {
    let t = t.to_device(Device::Cpu).contiguous();
    let shape: Vec<u64> = t.size().iter().map(|&d| d as u64).collect();
    let flat = t.flatten(0, -1);
    let ctx = || format!("cannot convert a tensor for {}", path.display());
    match t.kind() {
        Kind::Float => write_vec(
            path,
            &shape,
            &Vec::<f32>::try_from(&flat).with_context(ctx)?,
        ),
        Kind::Double => write_vec(
            path,
            &shape,
            &Vec::<f64>::try_from(&flat).with_context(ctx)?,
        ),
        Kind::Int64 => write_vec(
            path,
            &shape,
            &Vec::<i64>::try_from(&flat).with_context(ctx)?,
        ),
        Kind::Int => write_vec(
            path,
            &shape,
            &Vec::<i32>::try_from(&flat).with_context(ctx)?,
        ),
        Kind::Uint8 | Kind::Bool => {
            let v = Vec::<u8>::try_from(&flat.to_kind(Kind::Uint8)).with_context(ctx)?;
            write_vec(path, &shape, &v)
        }
        k => bail!("cannot write a {k:?} tensor to {}", path.display()),
    }
}

fn write_vec<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[u64], data: &[T]) -> Result<()> {
    write_atomic(path, |tmp| {
        let file = BufWriter::new(
            File::create(tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
        );
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(file)
            .begin_nd()?;
        w.extend(data.iter().copied())?;
        w.finish()?;
        Ok(())
    })
    .with_context(|| format!("cannot write {}", path.display()))
}

/// The values of an `.npy` file in its own dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    U8(Vec<u8>),
}

/// A C-order `.npy` array as plain vectors: for readers that need no tensors (the
/// report draws from artifacts without torch).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<i64>,
    pub values: Values,
}

impl Array {
    /// numpy's name of the dtype.
    pub fn dtype(&self) -> &'static str {
        match self.values {
            Values::F32(_) => "float32",
            Values::F64(_) => "float64",
            Values::I64(_) => "int64",
            Values::I32(_) => "int32",
            Values::U8(_) => "uint8",
        }
    }

    /// The values as f64 (exact for every dtype but int64 beyond 2^53).
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.values {
            Values::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Values::F64(v) => v.clone(),
            Values::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Values::I32(v) => v.iter().map(|&x| x as f64).collect(),
            Values::U8(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }
}

/// Reads a C-order `.npy` of float32, float64, int64, int32 or uint8.
pub fn read_array(path: &Path) -> Result<Array> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let npy = npyz::NpyFile::new(BufReader::new(file))
        .with_context(|| format!("{} is not a readable .npy file", path.display()))?;
    if npy.order() != npyz::Order::C {
        bail!("{}: only C-order arrays are supported", path.display());
    }
    let shape: Vec<i64> = npy.shape().iter().map(|&d| d as i64).collect();
    let descr = npy
        .dtype()
        .descr()
        .trim_matches(|c| c == '\'' || c == '"')
        .to_string();
    let ctx = || format!("{}: data shorter than its header says", path.display());
    let values = match descr.as_str() {
        "<f4" => Values::F32(npy.into_vec::<f32>().with_context(ctx)?),
        "<f8" => Values::F64(npy.into_vec::<f64>().with_context(ctx)?),
        "<i8" => Values::I64(npy.into_vec::<i64>().with_context(ctx)?),
        "<i4" => Values::I32(npy.into_vec::<i32>().with_context(ctx)?),
        "|u1" => Values::U8(npy.into_vec::<u8>().with_context(ctx)?),
        other => bail!("{}: unsupported dtype {other}", path.display()),
    };
    Ok(Array { shape, values })
}

/// Reads a C-order `.npy` of float32, float64, int64, int32 or uint8 into a CPU tensor.
pub fn read(path: &Path) -> Result<Tensor> {
    let a = read_array(path)?;
    let t = match &a.values {
        Values::F32(v) => Tensor::from_slice(v),
        Values::F64(v) => Tensor::from_slice(v),
        Values::I64(v) => Tensor::from_slice(v),
        Values::I32(v) => Tensor::from_slice(v),
        Values::U8(v) => Tensor::from_slice(v),
    };
    Ok(t.view(a.shape.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_kinds() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [
            Kind::Float,
            Kind::Double,
            Kind::Int64,
            Kind::Int,
            Kind::Uint8,
        ] {
            let t = Tensor::arange(24, (kind, Device::Cpu)).view([2, 3, 4]);
            let p = dir.path().join(format!("{kind:?}.npy"));
            write(&p, &t).unwrap();
            let back = read(&p).unwrap();
            assert_eq!(back.kind(), kind);
            assert!(back.equal(&t), "{kind:?}");
        }
    }

    #[test]
    fn bad_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk.npy");
        std::fs::write(&p, b"junk").unwrap();
        let err = format!("{:#}", read(&p).unwrap_err());
        assert!(err.contains("junk.npy"), "{err}");
    }
}
