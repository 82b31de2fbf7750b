//! The trainer: dfdx models, losses, the optimiser, checkpoints and the training loop.
//!
//! Nothing here knows a front end: the loop talks through `protocol` messages only.

#[cfg(test)]
#[path = "alarm_runs/tests.rs"]
mod alarm_runs;
pub mod bce_step;
pub mod cgan;
pub mod checkpoint;
pub mod dcgan;
pub mod gan;
pub mod nets;
pub mod noise;
pub mod presets;
pub mod reference;
pub mod schedule;
#[cfg(test)]
pub(crate) mod testing;
pub mod trainer;
pub mod tuned;
pub mod wgan_gp;

pub use trainer::{TrainError, TrainJob, spawn};
