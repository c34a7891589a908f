//! Many models trained in lockstep as one wide network (the fast path of the
//! trainer). Their random numbers come from [`crate::streams`]: every batch of every
//! model has its own 32-bit key, derived from the model's seed and the step, and
//! every random number of that batch (digit indices, null flags and types, null
//! pixels, dropout masks) is a hash of the key and a counter. A model therefore sees
//! the same numbers whether it is trained alone or beside 239 others, on any device,
//! and the numbers of all models come from the same few kernels.
//!
//! - [`batches`]: the batches of method-notes.md (digits without replacement within
//!   a batch, Binomial nulls, uniform / shuffled / mixed nulls) for many models at
//!   once, from those streams, on the data's device, without host round trips.
//! - [`net`]: K copies of the MNIST CNN as one network: parameters stacked `[K,...]`,
//!   grouped convolutions and batched matmuls, per-model dropout masks, each model's
//!   slice saved under the usual names.
//! - [`adam`]: PyTorch's Adam over the stacked parameters in few passes over memory.

pub mod adam;
pub mod batches;
pub mod net;
