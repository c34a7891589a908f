//! `trainer train-set`: the models of a set (or of several sets) trained in
//! lockstep as one wide network (the fast path of issue 7). Each model keeps its own
//! batches, nulls, dropout masks and Adam state, drawn from the same streams as
//! `trainer train` draws them, and gets exactly the artifacts `trainer train`
//! writes (JSON key `training_path` says which path trained it).

use anyhow::{bail, Result};
use clap::Args;
use nullclass::flag_ranges::MAX_SEED;
use nullclass::nulls::Variant;
use nullclass::stacked::net::{Convs, Dropout, StackedCnn};
use tch::Device;

use crate::train::{train_models, ModelSpec, Settings, Trainee};

#[derive(Args, Debug, Clone)]
pub struct Config {
    /// First set seed.
    #[arg(long, value_parser = nullclass::flag_ranges::int::<u64>(0..=nullclass::flag_ranges::MAX_SEED))]
    pub seed: u64,
    /// Sets trained together: seeds seed..seed+sets, all in one stack.
    #[arg(long, default_value_t = 1, value_parser = nullclass::flag_ranges::int::<u64>(1..=1000))]
    pub sets: u64,
    /// Which models of each set, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "base,u,s,m,us,um,sm,usm")]
    pub variants: Vec<Variant>,
    /// How the convolutions run: grouped (one grouped convolution per layer), im2col
    /// (conv1 as im2col + batched matmul, conv2 grouped) or per-model; auto takes
    /// grouped on GPUs and per-model on CPUs, where grouped kernels are slower.
    #[arg(long, default_value = "auto")]
    pub convs: String,
    #[command(flatten)]
    pub settings: Settings,
}

impl Trainee for StackedCnn {
    fn var_store(&self) -> &tch::nn::VarStore {
        &self.vs
    }

    fn forward(&self, xs: &tch::Tensor, dropout: Option<&Dropout>) -> tch::Tensor {
        StackedCnn::forward(self, xs, dropout)
    }

    fn model_tensors(&self, k: i64) -> Vec<(String, tch::Tensor)> {
        StackedCnn::model_tensors(self, k)
    }
}

pub fn run(config: &Config) -> Result<()> {
    if config.sets == 0 || config.variants.is_empty() {
        bail!("--sets and --variants must name at least one model");
    }
    if config.seed + (config.sets - 1) > MAX_SEED as u64 {
        bail!(
            "--seed {} with --sets {} goes past the largest set seed, {MAX_SEED}",
            config.seed,
            config.sets
        );
    }
    let mut specs = Vec::new();
    for seed in config.seed..config.seed + config.sets {
        for (i, variant) in config.variants.iter().enumerate() {
            if config.variants[..i].contains(variant) {
                bail!("variant {variant} listed twice");
            }
            specs.push(ModelSpec {
                seed,
                variant: variant.clone(),
            });
        }
    }
    let device = config.settings.device.resolve(config.settings.tf32)?.device;
    let convs = match config.convs.as_str() {
        "auto" if device == Device::Cpu => Convs::PerModel,
        "auto" => Convs::Grouped,
        other => other.parse::<Convs>().map_err(anyhow::Error::msg)?,
    };
    let path = format!("stacked-{convs}");
    train_models(&config.settings, &specs, &path, |models, device| {
        if let Device::Cuda(_) = device {
            // Shapes never change during a run: let cuDNN time its algorithms once.
            tch::Cuda::cudnn_set_benchmark(true);
        }
        let vars: Vec<_> = models.iter().map(|m| m.vs.variables()).collect();
        Ok(Box::new(StackedCnn::from_models(&vars, device, convs)?))
    })
}
