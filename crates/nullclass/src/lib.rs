//! Shared pieces of the nullclass tools.
//!
//! Only what two or more tools need lives here: the MNIST CNN ([`model`]), the null
//! sample generators ([`nulls`]), the prepared data set ([`dataset`]), artifact paths
//! and atomic writes ([`artifacts`]) and device selection ([`device`]).

pub mod artifacts;
pub mod dataset;
pub mod device;
pub mod fgsm;
pub mod flag_ranges;
pub mod model;
pub mod npy;
pub mod nulls;
pub mod ramp;
pub mod stacked;
pub mod staged_dir;
