//! Batches of method-notes.md ("Training regime", "Null sample types") for many
//! models at once, drawn from the counter-based streams of [`super::streams`].
//!
//! G batches are built by the same kernels whatever G is, and batch g reads only its
//! own key, so a model's batches are bit-identical whether it is trained alone
//! (G = 1) or in a stack. Every null type a stack uses is generated for every slot
//! and then selected per slot; a type no model uses is skipped, which shifts
//! nothing since each type has its own counters.

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

use super::streams::{self, batch_keys, batch_salt, below, below_scalar, bits, Domain, Purpose};
use crate::dataset::Split;
use crate::model::NULL_CLASS;
use crate::nulls::{Batch, NullConfig, NullType, Variant};

const PIXELS: i64 = 28 * 28;
/// Chance that a batch's digit draw falls back on a duplicate: see [`DigitDraw`].
const DUPLICATE_RISK: f64 = 1e-30;

/// How the digit slots of a batch are drawn without replacement. Both give every
/// ordered set of distinct indices the same chance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigitDraw {
    /// Draw `batch + extra` indices with replacement and keep the first `batch`
    /// distinct ones. Cheap (no pass over the pool); `extra` is chosen so that fewer
    /// than `batch` distinct ones happen with probability below 1e-30 (the batch
    /// would then hold a repeat).
    Candidates { extra: i64 },
    /// Rank the whole pool by random keys and take the first `batch`: exact, but a
    /// pass over the pool per batch. Used for small pools.
    Ranked,
}

impl DigitDraw {
    /// The cheapest draw whose failure chance is negligible for this pool and batch.
    pub fn choose(pool: i64, batch: i64) -> Self {
        for extra in 1..=batch.max(16) {
            let c = (batch + extra) as f64;
            // Poisson bound on at least extra + 1 colliding pairs among c draws.
            let lambda = c * c / (2.0 * pool as f64);
            let k = extra + 1;
            let log_tail = k as f64 * lambda.ln() - (1..=k).map(|i| (i as f64).ln()).sum::<f64>();
            if log_tail < DUPLICATE_RISK.ln() && lambda < 1.0 {
                return Self::Candidates { extra };
            }
        }
        Self::Ranked
    }
}

/// Per-model null settings of a stack, as tensors rows (one row per batch).
pub struct NullPlan {
    /// `[G,3]` null type codes of each batch's variant, padded by repetition.
    types: Tensor,
    /// `[G,1]` how many types each batch draws from (0 for the baseline).
    n_types: Tensor,
    /// `[G,1]` a slot is null when its 32-bit number is below this.
    threshold: Tensor,
    /// Which types some batch uses: the others are not generated.
    used: [bool; 3],
    tile_sizes: Tensor,
    n_tiles: i64,
}

impl NullPlan {
    /// One row per variant, in order.
    pub fn new(variants: &[Variant], config: &NullConfig, device: Device) -> Result<Self> {
        if !(0.0..=1.0).contains(&config.null_prob) {
            bail!("null probability {} is outside [0, 1]", config.null_prob);
        }
        if config.tile_sizes.is_empty() || config.tile_sizes.iter().any(|t| *t <= 0 || 28 % t != 0)
        {
            bail!("tile sizes {:?} must divide 28", config.tile_sizes);
        }
        let mut types = Vec::with_capacity(variants.len() * 3);
        let mut n_types = Vec::with_capacity(variants.len());
        let mut threshold = Vec::with_capacity(variants.len());
        let mut used = [false; 3];
        for v in variants {
            let t = v.null_types();
            for slot in 0..3 {
                types.push(t.get(slot % t.len().max(1)).map_or(0, |x| x.code()));
            }
            for x in t {
                used[x.code() as usize] = true;
            }
            n_types.push(t.len() as i64);
            let p = if v.is_baseline() {
                0.0
            } else {
                config.null_prob
            };
            threshold.push((p * 4_294_967_296.0).floor() as i64);
        }
        let g = variants.len() as i64;
        Ok(Self {
            types: Tensor::from_slice(&types).view([g, 3]).to_device(device),
            n_types: Tensor::from_slice(&n_types).view([g, 1]).to_device(device),
            threshold: Tensor::from_slice(&threshold)
                .view([g, 1])
                .to_device(device),
            used,
            tile_sizes: Tensor::from_slice(&config.tile_sizes).to_device(device),
            n_tiles: config.tile_sizes.len() as i64,
        })
    }

    pub fn uses(&self, t: NullType) -> bool {
        self.used[t.code() as usize]
    }

    /// `[G]` the shuffled-null tile size of each batch of `keys`.
    fn tile_size(&self, keys: &Tensor) -> Tensor {
        let pick = below_scalar(&bits(keys, Purpose::TileSize, 1), self.n_tiles).view([-1]);
        self.tile_sizes.index_select(0, &pick)
    }

    /// Each row repeated `times` times in place (row k becomes rows k*times..).
    pub fn repeat_rows(&self, times: i64) -> Self {
        let rep = |t: &Tensor| t.repeat_interleave_self_int(times, 0, None);
        Self {
            types: rep(&self.types),
            n_types: rep(&self.n_types),
            threshold: rep(&self.threshold),
            used: self.used,
            tile_sizes: self.tile_sizes.shallow_clone(),
            n_tiles: self.n_tiles,
        }
    }
}

/// A pool of digit images prepared for drawing: flat images and a by-label index,
/// so that mixed nulls draw their second image among other labels in one step.
pub struct Pool {
    images: Tensor,
    labels: Tensor,
    len: i64,
    by_label: Tensor,
    class_start: Tensor,
    class_count: Tensor,
    classes: i64,
}

impl Pool {
    pub fn new(split: &Split) -> Self {
        let len = split.len();
        let labels = split.labels.shallow_clone();
        let class_count = labels.bincount::<Tensor>(None, 10);
        let class_start = class_count.cumsum(0, Kind::Int64) - &class_count;
        let by_label = labels.argsort_stable(true, 0, false);
        let classes = class_count.gt(0).sum(Kind::Int64).int64_value(&[]);
        Self {
            images: split.images.view([len, PIXELS]),
            labels,
            len,
            by_label,
            class_start,
            class_count,
            classes,
        }
    }

    pub fn len(&self) -> i64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `[G,B]` pool indices, distinct within each batch.
    pub fn draw_digits(&self, keys: &Tensor, batch: i64, draw: DigitDraw) -> Tensor {
        let device = keys.device();
        match draw {
            DigitDraw::Ranked => {
                bits(keys, Purpose::Digits, self.len)
                    .topk(batch, 1, false, true)
                    .1
            }
            DigitDraw::Candidates { extra } => {
                let c = batch + extra;
                let cand = below_scalar(&bits(keys, Purpose::Digits, c), self.len);
                let earlier = Tensor::ones([c, c], (Kind::Bool, device)).tril(-1);
                let repeat = cand
                    .unsqueeze(2)
                    .eq_tensor(&cand.unsqueeze(1))
                    .logical_and_(&earlier)
                    .any_dim(2, false);
                // Firsts keep their position as score, repeats go after all of them.
                let score = Tensor::arange(c, (Kind::Int64, device)).view([1, c])
                    + repeat.to_kind(Kind::Int64) * c;
                let first = score.topk(batch, 1, false, true).1;
                cand.gather(1, &first, false)
            }
        }
    }

    /// `[G,B,784]` means of two images with different labels: the second is uniform
    /// among the images of other labels, which is what redrawing until the labels
    /// differ gives.
    fn mixed(&self, keys: &Tensor, batch: i64) -> Tensor {
        let g = keys.size()[0];
        let a = below_scalar(&bits(keys, Purpose::MixedA, batch), self.len).view([-1]);
        let la = self.labels.index_select(0, &a);
        let start = self.class_start.index_select(0, &la).view([g, batch]);
        let count = self.class_count.index_select(0, &la).view([g, batch]);
        let others = count.g_mul_scalar(-1) + self.len;
        let r = below(&bits(keys, Purpose::MixedB, batch), &others);
        let pos = &r + r.ge_tensor(&start).to_kind(Kind::Int64) * &count;
        let b = self.by_label.index_select(0, &pos.view([-1]));
        ((self.images.index_select(0, &a) + self.images.index_select(0, &b)) * 0.5)
            .view([g, batch, PIXELS])
    }

    /// `[G,B,784]` pool images cut into tiles and permuted, one tile size and one
    /// permutation per batch.
    fn shuffled(&self, keys: &Tensor, batch: i64, plan: &NullPlan) -> Tensor {
        let g = keys.size()[0];
        let device = keys.device();
        let tile = plan.tile_size(keys).view([g, 1, 1]);
        let per_side = tile.full_like(28).floor_divide(&tile);
        // A random order of the per_side^2 tile slots: rank random keys, with the
        // slots past per_side^2 keyed above every real one.
        let slots = Tensor::arange(PIXELS, (Kind::Int64, device)).view([1, PIXELS]);
        let outside = slots.ge_tensor(&(&per_side * &per_side).view([g, 1]));
        let perm = (bits(keys, Purpose::TilePerm, PIXELS)
            + outside.to_kind(Kind::Int64) * (1i64 << 32))
            .argsort(1, false);
        let row = Tensor::arange(28, (Kind::Int64, device)).view([1, 28, 1]);
        let col = Tensor::arange(28, (Kind::Int64, device)).view([1, 1, 28]);
        let slot = row.floor_divide(&tile) * &per_side + col.floor_divide(&tile);
        let src = perm
            .gather(1, &slot.view([g, PIXELS]), false)
            .view([g, 28, 28]);
        let src_row = src.floor_divide(&per_side) * &tile + row.remainder_tensor(&tile);
        let src_col = src.remainder_tensor(&per_side) * &tile + col.remainder_tensor(&tile);
        let pixel = (src_row * 28 + src_col)
            .view([g, 1, PIXELS])
            .expand([g, batch, PIXELS], false);
        let images = below_scalar(&bits(keys, Purpose::ShuffleSource, batch), self.len).view([-1]);
        self.images
            .index_select(0, &images)
            .view([g, batch, PIXELS])
            .gather(2, &pixel, false)
    }

    /// The batches whose digit slots hold `idx` `[G,B]`, each slot replaced by a null
    /// with its batch's probability, of a type uniform among its batch's types.
    pub fn batches(&self, keys: &Tensor, idx: &Tensor, plan: &NullPlan) -> Batch {
        let size = idx.size();
        let (g, batch) = (size[0], size[1]);
        let flat = idx.reshape([-1]);
        let mut images = self.images.index_select(0, &flat).view([g, batch, PIXELS]);
        let mut labels = self.labels.index_select(0, &flat).view([g, batch]);
        let is_null = bits(keys, Purpose::NullFlag, batch).lt_tensor(&plan.threshold);
        let which = below(
            &bits(keys, Purpose::NullType, batch),
            &plan.n_types.clamp_min(1),
        );
        let code = plan.types.gather(1, &which, false);
        for t in [NullType::Uniform, NullType::Shuffled, NullType::Mixed] {
            if !plan.uses(t) {
                continue;
            }
            let candidates = match t {
                NullType::Uniform => {
                    streams::unit_float(&bits(keys, Purpose::Uniform, batch * PIXELS))
                        .view([g, batch, PIXELS])
                }
                NullType::Shuffled => self.shuffled(keys, batch, plan),
                NullType::Mixed => self.mixed(keys, batch),
            };
            let mask = is_null.logical_and(&code.eq(t.code()));
            images = candidates.where_self(&mask.unsqueeze(2), &images);
        }
        labels = labels.masked_fill(&is_null, NULL_CLASS);
        let null_types = code.masked_fill(&is_null.logical_not(), -1);
        Batch {
            images: images.view([g, batch, 1, 28, 28]),
            labels,
            null_types,
        }
    }
}

/// The batches of a stack of models: one per model per training step, and each
/// model's fixed validation set.
pub struct StackBatches {
    pool: Pool,
    plan: NullPlan,
    model_keys: Tensor,
    batch: i64,
    draw: DigitDraw,
}

impl StackBatches {
    /// `torch_seeds[k]` roots model k's streams; `variants[k]` sets its nulls.
    pub fn new(
        pool: &Split,
        variants: &[Variant],
        torch_seeds: &[i64],
        config: &NullConfig,
        batch: i64,
    ) -> Result<Self> {
        if variants.len() != torch_seeds.len() || variants.is_empty() {
            bail!("one torch seed per variant needed");
        }
        let device = pool.images.device();
        let pool = Pool::new(pool);
        if batch <= 0 || batch > pool.len() {
            bail!("batch {batch} does not fit a pool of {} images", pool.len());
        }
        if batch * PIXELS > streams::MAX_DRAWS || pool.len() > streams::MAX_DRAWS {
            bail!(
                "batch {batch} or pool {} too large for the streams",
                pool.len()
            );
        }
        let plan = NullPlan::new(variants, config, device)?;
        if plan.uses(NullType::Mixed) && pool.classes < 2 {
            bail!("mixed nulls need images of at least two labels");
        }
        Ok(Self {
            draw: DigitDraw::choose(pool.len(), batch),
            pool,
            plan,
            model_keys: streams::model_keys(torch_seeds, device),
            batch,
        })
    }

    pub fn models(&self) -> i64 {
        self.model_keys.size()[0]
    }

    pub fn pool_len(&self) -> i64 {
        self.pool.len()
    }

    /// The keys `[K]` of every model's batch at training step `step` (counted from
    /// 0 over the whole run); they also key the step's dropout masks.
    pub fn step_keys(&self, step: u64) -> Tensor {
        batch_keys(&self.model_keys, batch_salt(Domain::Train, step))
    }

    /// Every model's training batch for `keys` (from [`Self::step_keys`]): images
    /// `[K,B,1,28,28]`, labels `[K,B]`.
    pub fn train_batch(&self, keys: &Tensor) -> Batch {
        let idx = self.pool.draw_digits(keys, self.batch, self.draw);
        self.pool.batches(keys, &idx, &self.plan)
    }

    /// `[K]` the tile size every model's shuffled nulls use in the batch of `keys`
    /// (one per batch): what `trainer nulls` records beside its samples.
    pub fn tile_sizes(&self, keys: &Tensor) -> Tensor {
        self.plan.tile_size(keys)
    }

    /// Number of batches in the fixed sequential set: the pool in order, in
    /// batches of `batch` (the last may be short).
    pub fn sequential_batches(&self) -> i64 {
        (self.pool.len() + self.batch - 1) / self.batch
    }

    /// Batches `first..first + count` of every model's fixed sequential set (the
    /// validation set of method-notes.md): images `[K,n,1,28,28]` and labels `[K,n]`,
    /// n the items those batches hold. Regenerated on demand, identically each time.
    pub fn sequential(&self, first: i64, count: i64) -> Batch {
        let k = self.models();
        let device = self.model_keys.device();
        let count = count.min(self.sequential_batches() - first);
        let salts: Vec<i64> = (first..first + count)
            .map(|c| batch_salt(Domain::Validation, c as u64))
            .collect();
        let salts = Tensor::from_slice(&salts).to_device(device);
        let keys = streams::hash32(
            &self
                .model_keys
                .view([k, 1])
                .bitwise_xor_tensor(&salts.view([1, count])),
        )
        .view([-1]);
        let start = first * self.batch;
        let items = (count * self.batch).min(self.pool.len() - start);
        // Slots past the pool's end read item 0 and are cut off below; every slot
        // has its own numbers, so the padding changes nothing in the real ones.
        let idx = Tensor::arange_start(start, start + count * self.batch, (Kind::Int64, device));
        let idx = idx
            .masked_fill(&idx.ge(self.pool.len()), 0)
            .view([1, count, self.batch])
            .expand([k, count, self.batch], false)
            .reshape([k * count, self.batch])
            .contiguous();
        let plan = self.plan.repeat_rows(count);
        let b = self.pool.batches(&keys, &idx, &plan);
        let cut = |t: &Tensor, tail: &[i64]| {
            let mut shape = vec![k, count * self.batch];
            shape.extend_from_slice(tail);
            t.reshape(shape.as_slice()).narrow(1, 0, items).contiguous()
        };
        Batch {
            images: cut(&b.images, &[1, 28, 28]),
            labels: cut(&b.labels, &[]),
            null_types: cut(&b.null_types, &[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_draw_choice() {
        assert!(matches!(
            DigitDraw::choose(60_000, 32),
            DigitDraw::Candidates { .. }
        ));
        assert!(matches!(
            DigitDraw::choose(50_000, 32),
            DigitDraw::Candidates { .. }
        ));
        assert_eq!(DigitDraw::choose(40, 32), DigitDraw::Ranked);
        if let DigitDraw::Candidates { extra } = DigitDraw::choose(60_000, 32) {
            assert!(extra <= 32, "{extra}");
        }
    }
}
