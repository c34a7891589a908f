//! Shared pieces of the nullclass tools.
//!
//! Only what two or more tools need lives here: the MNIST CNN ([`model`]), the null
//! sample generators ([`nulls`]), the prepared data set ([`dataset`]), artifact paths
//! and atomic writes ([`artifacts`]), device selection ([`device`]), what the later
//! stages share across sets ([`session`]) and the counter-based random streams of
//! training and PGD ([`streams`]); flag checks ([`flag_ranges`]) and folder swaps
//! that survive a kill ([`staged_dir`]); the robust stage's default attack budgets
//! ([`attack_budget`]), which adversary-gen runs and the report checks runs against.

pub mod artifacts;
pub mod attack_budget;
pub mod dataset;
pub mod device;
pub mod fgsm;
pub mod flag_ranges;
pub mod model;
pub mod npy;
pub mod nulls;
pub mod ramp;
pub mod session;
pub mod stacked;
pub mod staged_dir;
pub mod streams;
