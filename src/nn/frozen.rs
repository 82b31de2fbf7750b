//! Skipping gradients nobody uses, chosen through the types.
//!
//! - `Frozen(&d)` (or `d.frozen()`): a network that passes gradients through to its input but
//!   records none for its own parameters. D in G's step is one: PyTorch computes D's weight
//!   gradients there and throws them away; here they are never computed.
//! - `Constant(x)`: an input that starts the tape but needs no gradient of its own, so the
//!   first layer skips its input-gradient product (G's noise, D's batch in D's step).
//!
//! A layer opts in by implementing `FrozenModule` (and `Module<Constant<X>>`); tuples of such
//! layers are frozen layer by layer.

use dfdx::prelude::*;

/// A layer or network run with its parameters held fixed: the forward pass of `Module`, a
/// backward pass that only computes the input's gradient.
pub trait FrozenModule<X> {
    type Output;
    fn try_forward_frozen(&self, x: X) -> Result<Self::Output, CpuError>;
}

/// `M` with its parameters frozen; a dfdx `Module` wherever `M` is a `FrozenModule`.
#[derive(Debug, Clone, Copy)]
pub struct Frozen<'a, M>(pub &'a M);

/// `x` as a graph input whose own gradient is not wanted; it still carries the tape.
#[derive(Debug, Clone)]
pub struct Constant<X>(pub X);

/// `net.frozen()` for `Frozen(&net)`.
pub trait Freeze: Sized {
    fn frozen(&self) -> Frozen<'_, Self> {
        Frozen(self)
    }
}

impl<M> Freeze for M {}

impl<M: FrozenModule<X>, X> Module<X> for Frozen<'_, M> {
    type Output = M::Output;
    type Error = CpuError;

    fn try_forward(&self, x: X) -> Result<Self::Output, CpuError> {
        self.0.try_forward_frozen(x)
    }
}

impl<X, M1: FrozenModule<X>> FrozenModule<X> for (M1,) {
    type Output = M1::Output;
    fn try_forward_frozen(&self, x: X) -> Result<Self::Output, CpuError> {
        self.0.try_forward_frozen(x)
    }
}

impl<X, M1: FrozenModule<X>, M2: FrozenModule<M1::Output>> FrozenModule<X> for (M1, M2) {
    type Output = M2::Output;
    fn try_forward_frozen(&self, x: X) -> Result<Self::Output, CpuError> {
        let x = self.0.try_forward_frozen(x)?;
        self.1.try_forward_frozen(x)
    }
}

impl<X, M1, M2, M3> FrozenModule<X> for (M1, M2, M3)
where
    M1: FrozenModule<X>,
    M2: FrozenModule<M1::Output>,
    M3: FrozenModule<M2::Output>,
{
    type Output = M3::Output;
    fn try_forward_frozen(&self, x: X) -> Result<Self::Output, CpuError> {
        let x = self.0.try_forward_frozen(x)?;
        let x = self.1.try_forward_frozen(x)?;
        self.2.try_forward_frozen(x)
    }
}

impl<X, M1, M2, M3, M4> FrozenModule<X> for (M1, M2, M3, M4)
where
    M1: FrozenModule<X>,
    M2: FrozenModule<M1::Output>,
    M3: FrozenModule<M2::Output>,
    M4: FrozenModule<M3::Output>,
{
    type Output = M4::Output;
    fn try_forward_frozen(&self, x: X) -> Result<Self::Output, CpuError> {
        let x = self.0.try_forward_frozen(x)?;
        let x = self.1.try_forward_frozen(x)?;
        let x = self.2.try_forward_frozen(x)?;
        self.3.try_forward_frozen(x)
    }
}

impl<X, M1, M2, M3, M4, M5> FrozenModule<X> for (M1, M2, M3, M4, M5)
where
    M1: FrozenModule<X>,
    M2: FrozenModule<M1::Output>,
    M3: FrozenModule<M2::Output>,
    M4: FrozenModule<M3::Output>,
    M5: FrozenModule<M4::Output>,
{
    type Output = M5::Output;
    fn try_forward_frozen(&self, x: X) -> Result<Self::Output, CpuError> {
        let x = self.0.try_forward_frozen(x)?;
        let x = self.1.try_forward_frozen(x)?;
        let x = self.2.try_forward_frozen(x)?;
        let x = self.3.try_forward_frozen(x)?;
        self.4.try_forward_frozen(x)
    }
}

impl<X, M1, M2, M3, M4, M5, M6> FrozenModule<X> for (M1, M2, M3, M4, M5, M6)
where
    M1: FrozenModule<X>,
    M2: FrozenModule<M1::Output>,
    M3: FrozenModule<M2::Output>,
    M4: FrozenModule<M3::Output>,
    M5: FrozenModule<M4::Output>,
    M6: FrozenModule<M5::Output>,
{
    type Output = M6::Output;
    fn try_forward_frozen(&self, x: X) -> Result<Self::Output, CpuError> {
        let x = self.0.try_forward_frozen(x)?;
        let x = self.1.try_forward_frozen(x)?;
        let x = self.2.try_forward_frozen(x)?;
        let x = self.3.try_forward_frozen(x)?;
        let x = self.4.try_forward_frozen(x)?;
        self.5.try_forward_frozen(x)
    }
}
