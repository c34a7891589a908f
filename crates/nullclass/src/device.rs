//! Device choice: `auto`, `cpu`, `cuda` or `cuda:N`.
//!
//! The linker drops libtorch_cuda.so from our binaries (nothing names a symbol in
//! it), so CUDA would never register. Loading it at run time, only when a GPU may
//! be used, keeps one binary working both on GPU machines and on CPU-only ones
//! whose torch has no CUDA libraries.

use std::str::FromStr;
use std::sync::Once;

use anyhow::{bail, Result};
use tch::{Cuda, Device};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("unknown device {s:?}: use auto, cpu, cuda or cuda:N")),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// The tch device: `auto` is the first GPU when one is usable, else the CPU.
    pub fn resolve(self) -> Result<Device> {
        if self == Self::Cpu {
            return Ok(Device::Cpu);
        }
        register_cuda();
        let count = if Cuda::is_available() {
            Cuda::device_count() as usize
        } else {
            0
        };
        match self {
            Self::Auto if count > 0 => Ok(Device::Cuda(0)),
            Self::Auto | Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(n) if n < count => Ok(Device::Cuda(n)),
            Self::Cuda(n) => {
                bail!("device cuda:{n} asked for, but {count} CUDA device(s) are usable")
            }
        }
    }
}

/// A short name for logs and JSON: `cpu` or `cuda:N`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(n) => format!("cuda:{n}"),
        _ => "cpu".to_string(),
    }
}

fn register_cuda() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut candidates = vec!["libtorch_cuda.so".to_string()];
        if let Some(dir) = option_env!("NULLCLASS_LIBTORCH_LIB") {
            candidates.push(format!("{dir}/libtorch_cuda.so"));
        }
        for name in candidates {
            let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
            // SAFETY: libtorch_cuda's initialisers only register CUDA kernels with the
            // libtorch already loaded in this process.
            if let Ok(lib) = unsafe { libloading::os::unix::Library::open(Some(&name), flags) } {
                // Kept loaded for the life of the process: the registered kernels live in it.
                std::mem::forget(lib);
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_choices() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert!("gpu".parse::<DeviceChoice>().is_err());
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn cpu_resolves_to_cpu() {
        assert_eq!(DeviceChoice::Cpu.resolve().unwrap(), Device::Cpu);
    }
}
