//! Device choice (`auto`, `cpu`, `cuda` or `cuda:N`) and the TF32 policy, resolved
//! loudly: every tool prints what it got and why, e.g.
//! `device: auto -> cuda:0 (NVIDIA H200); tf32 off` or
//! `device: auto -> cpu: libtorch_cuda.so could not be loaded: <dlerror text>`.
//! A long run must never drift to the CPU unannounced.
//!
//! The linker drops libtorch_cuda.so from our binaries (nothing names a symbol in
//! it), so CUDA would never register. Loading it at run time, only when a GPU may
//! be used, keeps one binary working both on GPU machines and on CPU-only ones
//! whose torch has no CUDA libraries. `NULLCLASS_CUDA_LIB=/path/libtorch_cuda.so`
//! makes that path the only one tried (to pick a library, or, in tests, to simulate
//! a missing one).
//!
//! TF32: tch 0.24 exposes no TF32 switch (torch-sys's C API has none), so the policy
//! works through the environment variables the libraries read when CUDA starts,
//! set in-process before libtorch_cuda.so is loaded: `off` sets
//! `NVIDIA_TF32_OVERRIDE=0` (cuBLAS and cuDNN then never use TF32, whatever torch
//! asks), `on` sets `TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1` (matmuls may use TF32 too;
//! cuDNN convolutions do by default).

use std::ffi::{c_char, CStr};
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use anyhow::{bail, Result};
use libloading::os::unix::Library;
use serde::Serialize;
use tch::{Cuda, Device};

/// Overrides where libtorch_cuda.so is looked for (the only path then tried).
pub const CUDA_LIB_ENV: &str = "NULLCLASS_CUDA_LIB";

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

/// Whether cuBLAS and cuDNN may compute float32 work in TF32 (10-bit mantissa).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tf32 {
    On,
    Off,
}

impl FromStr for Tf32 {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "on" => Ok(Self::On),
            "off" => Ok(Self::Off),
            _ => Err(format!("unknown TF32 policy {s:?}: use on or off")),
        }
    }
}

impl std::fmt::Display for Tf32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::On => "on",
            Self::Off => "off",
        })
    }
}

/// A resolved device, the TF32 policy in force and the line printed about them.
#[derive(Clone, Debug)]
pub struct ResolvedDevice {
    pub device: Device,
    pub tf32: Tf32,
    /// `auto -> cuda:0 (NVIDIA H200); tf32 off`, without the `device: ` prefix.
    pub description: String,
}

impl ResolvedDevice {
    /// `cpu` or `cuda:N`, as the JSONs record it.
    pub fn name(&self) -> String {
        device_name(self.device)
    }
}

impl DeviceChoice {
    /// The tch device (`auto` is the first GPU when one is usable, else the CPU) with
    /// the TF32 policy applied. Prints `<tool>: device: ...` to stderr (once per
    /// distinct outcome in a process). A CUDA device that cannot be had is an error
    /// that says why.
    pub fn resolve(self, tf32: Tf32) -> Result<ResolvedDevice> {
        let resolved = self.resolve_quietly(tf32)?;
        announce(&resolved.description);
        Ok(resolved)
    }

    fn resolve_quietly(self, tf32: Tf32) -> Result<ResolvedDevice> {
        let cpu = |why: String| ResolvedDevice {
            device: Device::Cpu,
            tf32,
            description: format!("{self} -> cpu{why}; tf32 {tf32} (no effect on the CPU)"),
        };
        if self == Self::Cpu {
            return Ok(cpu(" (asked for)".to_string()));
        }
        apply_tf32(tf32)?;
        let count = match cuda_status() {
            Err(why) => {
                if let Self::Cuda(n) = self {
                    bail!("--device cuda:{n} cannot be honoured: {why}");
                }
                return Ok(cpu(format!(": {why}")));
            }
            Ok(count) => count,
        };
        let n = match self {
            Self::Cuda(n) => n,
            _ => 0,
        };
        if n >= count {
            bail!(
                "--device cuda:{n} cannot be honoured: {count} CUDA devices are usable \
                 (cuda:0 to cuda:{})",
                count - 1
            );
        }
        let name = gpu_name(n).map(|g| format!(" ({g})")).unwrap_or_default();
        let tf32_how = match tf32 {
            Tf32::On => "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1; cuDNN's default",
            Tf32::Off => "NVIDIA_TF32_OVERRIDE=0",
        };
        Ok(ResolvedDevice {
            device: Device::Cuda(n),
            tf32,
            description: format!(
                "{self} -> cuda:{n}{name}, {count} usable; tf32 {tf32} ({tf32_how})"
            ),
        })
    }
}

/// A short name for logs and JSON: `cpu` or `cuda:N`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(n) => format!("cuda:{n}"),
        _ => "cpu".to_string(),
    }
}

/// Prints `<program>: device: <description>` unless this process printed it already
/// (a stage that resolves once per set, or twice on its way, says it once).
fn announce(description: &str) {
    static PRINTED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut printed = PRINTED.lock().unwrap_or_else(|e| e.into_inner());
    if printed.iter().any(|p| p == description) {
        return;
    }
    printed.push(description.to_string());
    let program = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "nullclass".to_string());
    eprintln!("{program}: device: {description}");
}

/// Sets the variables cuBLAS, cuDNN and torch read when CUDA starts. The first policy
/// a process applies is the one it keeps: once the libraries have read the
/// environment, changing it would make the recorded policy a lie.
fn apply_tf32(tf32: Tf32) -> Result<()> {
    static APPLIED: OnceLock<Tf32> = OnceLock::new();
    let applied = *APPLIED.get_or_init(|| {
        if tf32 == Tf32::On {
            // Checked again below for every call; nothing to set when it forbids TF32.
            if std::env::var("NVIDIA_TF32_OVERRIDE").as_deref() != Ok("0") {
                std::env::set_var("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "1");
            }
        } else {
            // Before libtorch_cuda.so (and with it cuBLAS and cuDNN) is loaded: they
            // read it once at initialisation. Set while no other thread of ours runs.
            std::env::set_var("NVIDIA_TF32_OVERRIDE", "0");
        }
        tf32
    });
    if applied != tf32 {
        bail!(
            "--tf32 {tf32}: this process already runs with TF32 {applied}, and CUDA reads it once"
        );
    }
    if tf32 == Tf32::On && std::env::var("NVIDIA_TF32_OVERRIDE").as_deref() == Ok("0") {
        bail!(
            "--tf32 on cannot be honoured: NVIDIA_TF32_OVERRIDE=0 in the environment turns TF32 \
             off in cuBLAS and cuDNN; unset it or pass --tf32 off"
        );
    }
    Ok(())
}

/// The loaded libtorch_cuda.so, or why none could be loaded.
fn cuda_library() -> &'static Result<Library, String> {
    static LIB: OnceLock<Result<Library, String>> = OnceLock::new();
    LIB.get_or_init(|| {
        let candidates = match std::env::var(CUDA_LIB_ENV) {
            Ok(path) if !path.is_empty() => vec![path],
            _ => {
                let mut c = vec!["libtorch_cuda.so".to_string()];
                if let Some(dir) = option_env!("NULLCLASS_LIBTORCH_LIB") {
                    c.push(format!("{dir}/libtorch_cuda.so"));
                }
                c
            }
        };
        let mut errors = Vec::new();
        for name in candidates {
            let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
            // SAFETY: libtorch_cuda's initialisers only register CUDA kernels with the
            // libtorch already loaded in this process. Kept loaded for the life of the
            // process (in this static): the registered kernels live in it.
            match unsafe { Library::open(Some(&name), flags) } {
                Ok(lib) => return Ok(lib),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(format!(
            "libtorch_cuda.so could not be loaded: {}",
            errors.join("; ")
        ))
    })
}

/// How many CUDA devices torch can use, or why it can use none.
fn cuda_status() -> Result<usize, String> {
    cuda_library().as_ref().map_err(Clone::clone)?;
    let count = if Cuda::is_available() {
        Cuda::device_count() as usize
    } else {
        0
    };
    if count == 0 {
        return Err(
            "no CUDA device (libtorch_cuda.so loaded, but torch finds no usable GPU)".into(),
        );
    }
    Ok(count)
}

/// The GPU's name from `at::cuda::getDeviceProperties`, whose `cudaDeviceProp` starts
/// with `char name[256]`. tch exposes no such call; the C++ symbol may change with
/// torch versions, and then the name is simply left out.
fn gpu_name(n: usize) -> Option<String> {
    let lib = cuda_library().as_ref().ok()?;
    let index = i8::try_from(n).ok()?;
    // SAFETY: `at::cuda::getDeviceProperties(c10::DeviceIndex)` takes an int8 and
    // returns a pointer to torch's cached cudaDeviceProp: a plain function, called
    // with the C ABI it shares on x86-64 and aarch64, for an index below the count.
    unsafe {
        let get = lib
            .get::<unsafe extern "C" fn(i8) -> *const c_char>(
                b"_ZN2at4cuda19getDevicePropertiesEa\0",
            )
            .ok()?;
        let props = get(index);
        if props.is_null() {
            return None;
        }
        let bytes = std::slice::from_raw_parts(props.cast::<u8>(), 256);
        let end = bytes.iter().position(|&b| b == 0)?;
        CStr::from_bytes_with_nul(&bytes[..=end])
            .ok()
            .map(|s| s.to_string_lossy().into_owned())
    }
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
        assert_eq!("on".parse(), Ok(Tf32::On));
        assert_eq!("off".parse(), Ok(Tf32::Off));
        assert!("true".parse::<Tf32>().is_err());
    }

    #[test]
    fn cpu_resolves_to_cpu() {
        let r = DeviceChoice::Cpu.resolve(Tf32::Off).unwrap();
        assert_eq!(r.device, Device::Cpu);
        assert_eq!(r.tf32, Tf32::Off);
        assert_eq!(
            r.description,
            "cpu -> cpu (asked for); tf32 off (no effect on the CPU)"
        );
    }
}
