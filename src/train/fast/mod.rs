//! The fast reference step: the same networks and maths as the plain dfdx step, as fused kernels
//! over flat buffers.

pub mod reference;
