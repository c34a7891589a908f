//! `trainer bench-convs`: the stacked network's ways of running conv1 and conv2 for
//! K models at once (one grouped convolution, im2col plus one batched matmul, or
//! one convolution per model), timed forward plus backward, printed as a table.
//! A benchmark, not a test: it asserts nothing about speed.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use nullclass::device::{device_name, DeviceChoice, Tf32};
use nullclass::stacked::net::{conv1_stacked, conv2_grouped, conv2_im2col, conv_per_model, Convs};
use tch::{Device, Kind, Tensor};

#[derive(Args, Debug, Clone)]
pub struct Config {
    /// Stack sizes K to time, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "8,240", value_parser = nullclass::flag_ranges::int::<i64>(1..=4096))]
    pub models: Vec<i64>,
    #[arg(long, default_value_t = 32, value_parser = nullclass::flag_ranges::int::<i64>(1..=nullclass::flag_ranges::MAX_SAMPLES))]
    pub batch: i64,
    /// Timed repetitions per cell (after one untimed warm-up).
    #[arg(long, default_value_t = 3, value_parser = nullclass::flag_ranges::int::<usize>(1..=10_000))]
    pub reps: usize,
    /// Skip cells whose tensors would exceed this many GiB (im2col of conv2 at
    /// K = 240 needs about 10).
    #[arg(long, default_value_t = 4.0, value_parser = nullclass::flag_ranges::positive)]
    pub max_gib: f64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Torch intra-op threads (torch's default when absent).
    #[arg(long, value_parser = nullclass::flag_ranges::int::<i32>(1..=nullclass::flag_ranges::MAX_THREADS))]
    pub threads: Option<i32>,
    /// TF32 for float32 convolutions on a GPU: on (what training uses) or off.
    #[arg(long, default_value = "on")]
    pub tf32: Tf32,
}

#[derive(Clone, Copy)]
enum Layer {
    Conv1,
    Conv2,
}

/// Bytes of the tensors one forward plus backward keeps alive (inputs, outputs,
/// their gradients; im2col's columns and their gradient), roughly.
fn footprint(layer: Layer, method: Convs, k: i64, batch: i64) -> f64 {
    let (input, output, cols) = match layer {
        Layer::Conv1 => (784, 32 * 676, 9 * 676),
        Layer::Conv2 => (32 * 676, 64 * 576, 288 * 576),
    };
    let mut floats = 2 * (input + output);
    if method == Convs::Im2col {
        floats += 2 * cols;
    }
    (floats * k * batch * 4) as f64
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Milliseconds per forward plus backward of one layer for K models.
fn time(layer: Layer, method: Convs, k: i64, batch: i64, reps: usize, device: Device) -> f64 {
    let opts = (Kind::Float, device);
    let (x, w, b) = match layer {
        Layer::Conv1 => (
            Tensor::rand([k, batch, 1, 28, 28], opts),
            Tensor::randn([k, 32, 1, 3, 3], opts) * 0.3,
            Tensor::zeros([k, 32], opts),
        ),
        Layer::Conv2 => (
            Tensor::rand([batch, k * 32, 26, 26], opts).set_requires_grad(true),
            Tensor::randn([k, 64, 32, 3, 3], opts) * 0.06,
            Tensor::zeros([k, 64], opts),
        ),
    };
    let (w, b) = (w.set_requires_grad(true), b.set_requires_grad(true));
    // Per model, each model's input is a tensor of its own, as in training (slices
    // of one big leaf would make every slice's backward fill the whole leaf).
    let own: Vec<Tensor> = match (layer, method) {
        (Layer::Conv1, Convs::PerModel) => (0..k).map(|i| x.get(i)).collect(),
        (Layer::Conv2, Convs::PerModel) => (0..k)
            .map(|i| {
                x.narrow(1, i * 32, 32)
                    .contiguous()
                    .detach()
                    .set_requires_grad(true)
            })
            .collect(),
        _ => Vec::new(),
    };
    let run = || {
        let y = match (layer, method) {
            (_, Convs::PerModel) => conv_per_model(&own, &w, &b),
            (Layer::Conv1, m) => conv1_stacked(&x, &w, &b, m),
            (Layer::Conv2, Convs::Grouped) => conv2_grouped(&x, &w, &b),
            (Layer::Conv2, Convs::Im2col) => conv2_im2col(&x, &w, &b),
        };
        // A dense upstream gradient, as the ReLU above passes back (the stride-0
        // gradient of a plain sum sends some backends down slow paths).
        let upstream = y.detach().ones_like();
        (&y * &upstream).sum(Kind::Float).backward();
        for t in [&x, &w, &b].into_iter().chain(&own) {
            let mut g = t.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    };
    run();
    sync(device);
    let start = Instant::now();
    for _ in 0..reps {
        run();
    }
    sync(device);
    1000.0 * start.elapsed().as_secs_f64() / reps as f64
}

pub fn run(config: &Config) -> Result<()> {
    if config.models.iter().any(|&k| k <= 0) || config.batch <= 0 || config.reps == 0 {
        bail!("--models, --batch and --reps must be positive");
    }
    if let Some(t) = config.threads {
        if t <= 0 {
            bail!("--threads must be at least 1");
        }
        tch::set_num_threads(t);
    }
    let device = config
        .device
        .resolve(config.tf32)
        .context("--device")?
        .device;
    println!(
        "conv layers of K stacked models, forward + backward, batch {} on {} ({} threads), ms per call (ms per model)",
        config.batch,
        device_name(device),
        tch::get_num_threads()
    );
    println!("| layer | K | grouped | im2col | per-model |");
    println!("|---|---|---|---|---|");
    for &k in &config.models {
        for (layer, name) in [(Layer::Conv1, "conv1"), (Layer::Conv2, "conv2")] {
            let cells: Vec<String> = [Convs::Grouped, Convs::Im2col, Convs::PerModel]
                .into_iter()
                .map(|method| {
                    let gib = footprint(layer, method, k, config.batch) / (1u64 << 30) as f64;
                    if gib > config.max_gib {
                        return format!("skipped (~{gib:.0} GiB)");
                    }
                    let ms = time(layer, method, k, config.batch, config.reps, device);
                    format!("{ms:.1} ({:.2})", ms / k as f64)
                })
                .collect();
            println!("| {name} | {k} | {} |", cells.join(" | "));
        }
    }
    Ok(())
}
