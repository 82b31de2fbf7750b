//! The trainer: dfdx models, losses, the optimiser, checkpoints and the training loop.
//!
//! Nothing here knows a front end: the loop talks through `protocol` messages only.

pub mod adam;
pub mod checkpoint;
pub mod fast;
pub mod gan;
pub mod layers;
pub mod noise;
pub mod params;
pub mod reference;
pub mod trainer;

pub use trainer::{TrainError, TrainJob, spawn};
