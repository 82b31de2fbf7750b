//! The engine every recipe and the judge are built from: dfdx modules with compile-time shapes,
//! their fast kernels (as dfdx custom ops) and the saveable optimiser.
//!
//! Nothing here knows a recipe, a front end or a file format.

pub mod adam;
pub mod average;
pub mod batch_norm;
pub mod conv;
pub mod conv_wide;
pub mod deferred;
pub mod dense;
pub mod dropout;
pub mod frozen;
pub mod image;
pub mod kernels;
pub mod loss;
pub mod memory;
pub mod norm;
pub mod ops;
pub mod params;
pub mod penalty;
pub mod pool;
pub mod profile;
pub mod projection;
pub mod threads;

pub use batch_norm::{BatchNorm1d, BatchNorm2d, Relu};
pub use conv::{Conv2d, ConvTranspose2d};
pub use dense::{Activation, Dense, Identity, LeakyRelu, Tanh};
pub use dropout::Dropout;
pub use frozen::{Constant, Freeze, Frozen, FrozenModule};
pub use image::{Flatten, Unflatten};
pub use projection::Projection;
