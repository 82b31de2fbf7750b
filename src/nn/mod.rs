//! The engine every recipe and the judge are built from: dfdx modules with compile-time shapes,
//! their fast kernels (as dfdx custom ops) and the saveable optimiser.
//!
//! Nothing here knows a recipe, a front end or a file format.

pub mod dense;
pub mod frozen;
pub mod kernels;
pub mod ops;

pub use dense::{Activation, Dense, Identity, LeakyRelu, Tanh};
pub use frozen::{Constant, Freeze, Frozen, FrozenModule};
pub mod adam;
pub mod average;
pub mod loss;
pub mod params;
pub mod penalty;
