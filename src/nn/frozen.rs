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

/// `FrozenModule` for a tuple of layers, each frozen in turn: the last element's type, then
/// each element's type, its index and (from the second on) the element before it.
macro_rules! frozen_tuple {
    ($last:ident; $first:ident 0 $(, $m:ident $i:tt after $prev:ident)*) => {
        impl<X, $first $(, $m)*> FrozenModule<X> for ($first, $($m,)*)
        where
            $first: FrozenModule<X>,
            $($m: FrozenModule<$prev::Output>,)*
        {
            type Output = $last::Output;
            fn try_forward_frozen(&self, x: X) -> Result<Self::Output, CpuError> {
                let x = self.0.try_forward_frozen(x)?;
                $(let x = self.$i.try_forward_frozen(x)?;)*
                Ok(x)
            }
        }
    };
}

frozen_tuple!(M1; M1 0);
frozen_tuple!(M2; M1 0, M2 1 after M1);
frozen_tuple!(M3; M1 0, M2 1 after M1, M3 2 after M2);
frozen_tuple!(M4; M1 0, M2 1 after M1, M3 2 after M2, M4 3 after M3);
frozen_tuple!(M5; M1 0, M2 1 after M1, M3 2 after M2, M4 3 after M3, M5 4 after M4);
frozen_tuple!(M6; M1 0, M2 1 after M1, M3 2 after M2, M4 3 after M3, M5 4 after M4, M6 5 after M5);
