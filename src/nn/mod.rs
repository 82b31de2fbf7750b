//! The engine every recipe and the judge are built from: dfdx modules with compile-time shapes,
//! their fast kernels (as dfdx custom ops) and the saveable optimiser.
//!
//! Nothing here knows a recipe, a front end or a file format.

pub mod kernels;
pub mod activation;
pub mod conv;
pub mod op;
pub mod batch_norm;
