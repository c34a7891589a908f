//! `trainer train-set`: the models of a set (or of several sets) trained in
//! lockstep as one wide network (the fast path of issue 7). Each model keeps its own
//! batches, nulls, dropout masks and Adam state, drawn from the same streams as
//! `trainer train` draws them, and gets exactly the artifacts `trainer train`
//! writes (JSON key `training_path` says which path trained it).
//!
//! With `--only-stale` it trains only the models make would rebuild: `make models`
//! runs one `train-set` per group of sets (a grouped target), and a group whose
//! models are partly up to date retrains the others alone. Every model's numbers
//! come from its own streams, so a model retrained alone gets the weights it got
//! inside the stack (tests/incremental.rs).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use clap::Args;
use nullclass::artifacts::SetDir;
use nullclass::dataset::DataSet;
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
    /// Train only the stale models: those with an artifact missing (checkpoint,
    /// last checkpoint, history or JSON) or whose JSON is older than the prepared
    /// MNIST or a --depends-on file, as make judges its targets. The others are
    /// left as they are.
    #[arg(long)]
    pub only_stale: bool,
    /// More inputs of every model for --only-stale, comma-separated (make passes
    /// its training-settings stamp, .settings/train.txt).
    #[arg(long, value_delimiter = ',', requires = "only_stale")]
    pub depends_on: Vec<PathBuf>,
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
    if config.only_stale {
        specs = stale_models(config, specs)?;
        if specs.is_empty() {
            return Ok(());
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

/// A file's modification time, for --only-stale; `what` names it in errors.
fn modified(path: &Path, what: &str) -> Result<SystemTime> {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| {
            format!(
                "{what} {}: cannot read its modification time",
                path.display()
            )
        })
}

/// Why a model needs training, or None when it is up to date: make's rule (an input
/// newer than the target) on the JSON, which is written after every other artifact.
fn why_stale(
    set: &SetDir,
    variant: &Variant,
    inputs: &[(PathBuf, SystemTime)],
) -> Result<Option<String>> {
    for file in [
        set.model(variant),
        set.model_last(variant),
        set.model_history(variant),
        set.model_json(variant),
    ] {
        if !file.exists() {
            return Ok(Some(format!("{} missing", file.display())));
        }
    }
    let json = set.model_json(variant);
    let built = modified(&json, "model JSON")?;
    Ok(inputs
        .iter()
        .find(|(_, time)| *time > built)
        .map(|(input, _)| format!("{} is newer than {}", input.display(), json.display())))
}

/// The models of `specs` that --only-stale trains; says which are kept and why
/// the others are not.
fn stale_models(config: &Config, specs: Vec<ModelSpec>) -> Result<Vec<ModelSpec>> {
    let root = &config.settings.artifacts;
    let data_file = DataSet::of_root(root)?.file(root);
    let mut inputs = vec![(data_file.clone(), modified(&data_file, "prepared data")?)];
    for file in &config.depends_on {
        inputs.push((file.clone(), modified(file, "--depends-on file")?));
    }
    let total = specs.len();
    let mut stale = Vec::new();
    for spec in specs {
        let set = SetDir::new(root, spec.seed);
        if let Some(why) = why_stale(&set, &spec.variant, &inputs)? {
            eprintln!(
                "train-set: training seed-{:02}/{}: {why}",
                spec.seed, spec.variant
            );
            stale.push(spec);
        }
    }
    eprintln!(
        "train-set: {} of {total} models to train, {} up to date and kept",
        stale.len(),
        total - stale.len()
    );
    Ok(stale)
}
