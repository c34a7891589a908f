//! Batches of method-notes.md ("Training regime", "Null sample types") for many
//! models at once, drawn from the counter-based streams of [`crate::streams`].
//!
//! G batches are built by the same kernels whatever G is, and batch g reads only its
//! own key, so a model's batches are bit-identical whether it is trained alone
//! (G = 1) or in a stack. Each null type is generated for every slot of the batches
//! whose variant uses it (and only those), then selected per slot; since each type
//! has its own counters, generating it for fewer batches shifts nothing.

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

use crate::dataset::Split;
use crate::model::NULL_CLASS;
use crate::nulls::{Batch, NullConfig, NullType, Variant};
use crate::streams::{self, batch_keys, batch_salt, below, below_scalar, bits, Domain, Purpose};

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

/// The batches (rows) of a stack whose variant draws one null type.
enum Users {
    None,
    All,
    /// Row indices on the device, and on the host for [`NullPlan::repeat_rows`].
    Rows(Tensor, Vec<i64>),
}

impl Users {
    fn from_rows(rows: Vec<i64>, g: i64, device: Device) -> Self {
        if rows.is_empty() {
            Self::None
        } else if rows.len() as i64 == g {
            Self::All
        } else {
            Self::Rows(Tensor::from_slice(&rows).to_device(device), rows)
        }
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
    /// Per type, the batches whose variant uses it: only those generate it.
    users: [Users; 3],
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
        let mut rows: [Vec<i64>; 3] = Default::default();
        for (row, v) in variants.iter().enumerate() {
            let t = v.null_types();
            for slot in 0..3 {
                types.push(t.get(slot % t.len().max(1)).map_or(0, |x| x.code()));
            }
            for x in t {
                rows[x.code() as usize].push(row as i64);
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
            users: rows.map(|r| Users::from_rows(r, g, device)),
            tile_sizes: Tensor::from_slice(&config.tile_sizes).to_device(device),
            n_tiles: config.tile_sizes.len() as i64,
        })
    }

    pub fn uses(&self, t: NullType) -> bool {
        !matches!(self.users[t.code() as usize], Users::None)
    }

    /// `[G]` the shuffled-null tile size of each batch of `keys`.
    fn tile_size(&self, keys: &Tensor) -> Tensor {
        let pick = below_scalar(&bits(keys, Purpose::TileSize, 1), self.n_tiles).view([-1]);
        self.tile_sizes.index_select(0, &pick)
    }

    /// Each row repeated `times` times in place (row k becomes rows k*times..).
    pub fn repeat_rows(&self, times: i64) -> Self {
        let rep = |t: &Tensor| t.repeat_interleave_self_int(times, 0, None);
        let device = self.types.device();
        let g = self.types.size()[0] * times;
        let users = self.users.each_ref().map(|u| match u {
            Users::None => Users::None,
            Users::All => Users::All,
            Users::Rows(_, rows) => Users::from_rows(
                rows.iter()
                    .flat_map(|r| (0..times).map(move |j| r * times + j))
                    .collect(),
                g,
                device,
            ),
        });
        Self {
            types: rep(&self.types),
            n_types: rep(&self.n_types),
            threshold: rep(&self.threshold),
            users,
            tile_sizes: self.tile_sizes.shallow_clone(),
            n_tiles: self.n_tiles,
        }
    }
}

/// Which slots of G batches are nulls, and of which type.
struct NullSlots {
    /// `[G,B]` bool.
    is_null: Tensor,
    /// `[G,B]` type code of each slot (meaningful where `is_null`).
    code: Tensor,
}

impl NullSlots {
    fn draw(keys: &Tensor, batch: i64, plan: &NullPlan) -> Self {
        let is_null = bits(keys, Purpose::NullFlag, batch).lt_tensor(&plan.threshold);
        let which = below(
            &bits(keys, Purpose::NullType, batch),
            &plan.n_types.clamp_min(1),
        );
        Self {
            is_null,
            code: plan.types.gather(1, &which, false),
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
        let slots = NullSlots::draw(keys, idx.size()[1], plan);
        self.fill(keys, idx, &slots, plan)
    }

    /// `[G,784]`-per-slot candidates of null type `t` for the batches of `keys`.
    fn candidates(&self, t: NullType, keys: &Tensor, batch: i64, plan: &NullPlan) -> Tensor {
        let g = keys.size()[0];
        match t {
            NullType::Uniform => streams::unit_float(&bits(keys, Purpose::Uniform, batch * PIXELS))
                .view([g, batch, PIXELS]),
            NullType::Shuffled => self.shuffled(keys, batch, plan),
            NullType::Mixed => self.mixed(keys, batch),
        }
    }

    /// The batches whose digit slots hold `idx` `[G,B]` and whose null slots are
    /// `slots`.
    fn fill(&self, keys: &Tensor, idx: &Tensor, slots: &NullSlots, plan: &NullPlan) -> Batch {
        let size = idx.size();
        let (g, batch) = (size[0], size[1]);
        let flat = idx.reshape([-1]);
        let mut images = self.images.index_select(0, &flat).view([g, batch, PIXELS]);
        let mut labels = self.labels.index_select(0, &flat).view([g, batch]);
        let NullSlots { is_null, code } = slots;
        for t in [NullType::Uniform, NullType::Shuffled, NullType::Mixed] {
            let mask = is_null.logical_and(&code.eq(t.code())).unsqueeze(2);
            match &plan.users[t.code() as usize] {
                Users::None => {}
                Users::All => {
                    images = self
                        .candidates(t, keys, batch, plan)
                        .where_self(&mask, &images);
                }
                Users::Rows(rows, _) => {
                    let own = self
                        .candidates(t, &keys.index_select(0, rows), batch, plan)
                        .where_self(&mask.index_select(0, rows), &images.index_select(0, rows));
                    images = images.index_copy(0, rows, &own);
                }
            }
        }
        labels = labels.masked_fill(is_null, NULL_CLASS);
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
        self.sequential_pass(first, count, None)
    }

    /// A walk over the pool that each validation pass continues: see
    /// [`Self::fresh_sequential`].
    pub fn fresh_walk(&self) -> FreshWalk {
        FreshWalk {
            pass: 0,
            next: self.model_keys.zeros_like(),
        }
    }

    /// As [`Self::sequential`], but for pass `walk.pass` of a validation set drawn
    /// as the published code's long-lived test generator draws it: every pass has
    /// its own nulls, and the digit slots take the pool's images in order from where
    /// the model's previous digit slot stopped (wrapping at the end), so the window
    /// moves on from pass to pass by the number of digit slots. A pass is
    /// [`Self::sequential_batches`] full batches (Keras ran 10,000 / 32 = 312.5
    /// validation steps as 313 batches of 32, 10,016 slots). Chunks must come in
    /// order, each pass from batch 0; each model walks on its own.
    pub fn fresh_sequential(&self, first: i64, count: i64, walk: &mut FreshWalk) -> Batch {
        assert!(walk.pass >= 1, "FreshWalk::next_pass starts each pass");
        self.sequential_pass(first, count, Some(walk))
    }

    fn sequential_pass(&self, first: i64, count: i64, walk: Option<&mut FreshWalk>) -> Batch {
        let k = self.models();
        let device = self.model_keys.device();
        let count = count.min(self.sequential_batches() - first);
        // The fixed set is pass 0; fresh passes count from 1.
        let pass = walk.as_ref().map_or(0, |w| w.pass);
        let salts: Vec<i64> = (first..first + count)
            .map(|c| batch_salt(Domain::Validation, pass << 32 | c as u64))
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
        let slots_in = count * self.batch;
        let items = if walk.is_some() {
            slots_in
        } else {
            slots_in.min(self.pool.len() - start)
        };
        let plan = self.plan.repeat_rows(count);
        let slots = NullSlots::draw(&keys, self.batch, &plan);
        let idx = match walk {
            None => {
                // Slots past the pool's end read item 0 and are cut off below; every
                // slot has its own numbers, so the padding changes nothing in the
                // real ones.
                let idx = Tensor::arange_start(start, start + slots_in, (Kind::Int64, device));
                idx.masked_fill(&idx.ge(self.pool.len()), 0)
                    .view([1, count, self.batch])
                    .expand([k, count, self.batch], false)
                    .reshape([k * count, self.batch])
                    .contiguous()
            }
            Some(walk) => {
                let digit = slots
                    .is_null
                    .logical_not()
                    .view([k, slots_in])
                    .to_kind(Kind::Int64);
                let before = digit.cumsum(1, Kind::Int64) - &digit;
                let idx = (walk.next.view([k, 1]) + before).remainder(self.pool.len());
                walk.next = (&walk.next + digit.sum_dim_intlist(1, false, Kind::Int64))
                    .remainder(self.pool.len());
                idx.view([k * count, self.batch])
            }
        };
        let b = self.pool.fill(&keys, &idx, &slots, &plan);
        let cut = |t: &Tensor, tail: &[i64]| {
            let mut shape = vec![k, slots_in];
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

/// Where each model's validation window stands: the pass number and, per model, the
/// pool index its next digit slot takes (`[K]` on the device).
pub struct FreshWalk {
    pass: u64,
    next: Tensor,
}

impl FreshWalk {
    /// Starts the next pass (the first is pass 1: the trainer's epoch number).
    pub fn next_pass(&mut self) {
        self.pass += 1;
    }

    pub fn pass(&self) -> u64 {
        self.pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generating_a_type_for_its_users_only_changes_nothing() {
        // Against generating every used type for every batch and selecting per slot
        // (what the stacks did before): the same bits, in training and validation.
        let device = Device::Cpu;
        tch::manual_seed(3);
        let split = Split {
            images: Tensor::rand([300, 1, 28, 28], (Kind::Float, device)),
            labels: Tensor::arange(300, (Kind::Int64, device)).remainder(10),
        };
        let variants: Vec<Variant> = ["base", "u", "s", "m", "us", "um", "sm", "usm"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let seeds: Vec<i64> = (40..48).collect();
        let config = NullConfig::default();
        let rows = StackBatches::new(&split, &variants, &seeds, &config, 16).unwrap();
        let mut all = StackBatches::new(&split, &variants, &seeds, &config, 16).unwrap();
        assert!(rows.plan.users.iter().all(|u| matches!(u, Users::Rows(..))));
        all.plan.users = [Users::All, Users::All, Users::All];
        let same = |a: &Batch, b: &Batch, what: &str| {
            assert!(a.images.equal(&b.images), "{what}: images differ");
            assert!(a.labels.equal(&b.labels), "{what}: labels differ");
            assert!(
                a.null_types.equal(&b.null_types),
                "{what}: null types differ"
            );
        };
        for step in [0u64, 1, 77] {
            let keys = rows.step_keys(step);
            same(
                &rows.train_batch(&keys),
                &all.train_batch(&keys),
                "training",
            );
        }
        same(
            &rows.sequential(2, 5),
            &all.sequential(2, 5),
            "fixed validation",
        );
        let (mut wr, mut wa) = (rows.fresh_walk(), all.fresh_walk());
        for pass in 1..=2 {
            wr.next_pass();
            wa.next_pass();
            for first in [0, 4] {
                same(
                    &rows.fresh_sequential(first, 4, &mut wr),
                    &all.fresh_sequential(first, 4, &mut wa),
                    &format!("fresh validation pass {pass}"),
                );
            }
        }
    }

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
