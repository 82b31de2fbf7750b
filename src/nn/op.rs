//! The plumbing every custom op of `nn` shares: reading a Cpu tensor's values, making a tensor
//! from a `Vec` without a copy, and borrowing gradients on the tape.
//!
//! An op copies its inputs' values out, computes its output into a fresh `Vec`, and records a
//! backward closure with `Tape::add_backward_op`; the closure holds (cheap, `Arc`-shared) clones
//! of the tensors it needs and adds into the gradients of its input and parameters.

use dfdx::prelude::*;

/// `t`'s values in row-major order. dfdx 0.13 keeps a tensor's buffer crate-private (its
/// `Tensorlike::data` is not exported), so this is one `memcpy` for a contiguous tensor (the
/// usual case; a strided one is made contiguous by dfdx first).
pub fn values<S: Shape>(t: &Tensor<S, f32, Cpu>) -> Result<Vec<f32>, CpuError> {
    let t = t.clone().try_contiguous()?;
    let mut out = vec![0.0; t.shape().num_elements()];
    t.copy_into(&mut out);
    Ok(out)
}

/// A tensor of `shape` that owns `data` (moved in, not copied).
pub fn tensor_from<S: Shape>(
    dev: &Cpu,
    data: Vec<f32>,
    shape: S,
) -> Result<Tensor<S, f32, Cpu>, CpuError> {
    if data.len() != shape.num_elements() {
        return Err(CpuError::WrongNumElements);
    }
    dev.try_tensor_from_vec(data, shape)
}

/// Moves the gradient of the (ghost) tensor `$t` out of `$grads` (allocating zeros if it has none
/// yet), so an op's backward pass can read it while it writes other gradients; `put_back!`
/// returns it. (Macros, because dfdx does not export the `Tensorlike` trait a function would
/// need to name.)
macro_rules! take_grad {
    ($grads:expr, $t:expr) => {
        std::mem::take::<Vec<f32>>(&mut **$grads.get_or_alloc_mut($t)?)
    };
}

/// Returns a gradient `take_grad!` moved out.
macro_rules! put_back {
    ($grads:expr, $t:expr, $grad:expr) => {
        **$grads.get_or_alloc_mut($t)? = $grad
    };
}

/// Adds the values `$delta` into the gradient of `$t`.
macro_rules! add_grad {
    ($grads:expr, $t:expr, $delta:expr) => {
        for (g, d) in $grads.get_or_alloc_mut($t)?.iter_mut().zip($delta) {
            *g += *d;
        }
    };
}

pub(crate) use {add_grad, put_back, take_grad};

/// Whether parameter gradients are wanted in an op's backward pass: every layer computes its
/// input's gradient, and its parameters' only when it trains (a frozen discriminator in the
/// generator's step does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamGrads {
    Compute,
    Skip,
}
