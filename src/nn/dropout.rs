//! Dropout (PyTorch's `nn.Dropout(p)`, `p = PERCENT / 100`) as a dfdx module whose masks come
//! from a word stream the recipe owns and saves, so a resumed run draws the same masks.
//!
//! In training (`forward_mut`, and in a frozen network, which is still a training pass) each
//! value is zeroed when its stream word falls under `p * 2^32` and the rest are scaled by
//! `1 / (1 - p)`; in evaluation (`forward`) the input passes through. The mask is one custom op:
//! forward multiplies, backward multiplies the output's gradient by the same mask.

use std::sync::{Arc, Mutex, PoisonError};

use dfdx::prelude::*;
use dfdx::tensor::Tape;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::frozen::FrozenModule;
use super::ops::{self, put_grad, take_grad};

/// Where dropout masks come from: uniform 32-bit words, one per value.
pub trait MaskWords: Send {
    /// Replaces `out`'s contents with `len` uniform words, moving the stream on.
    fn fill_words(&mut self, out: &mut Vec<u32>, len: usize);
}

impl MaskWords for ChaCha8Rng {
    fn fill_words(&mut self, out: &mut Vec<u32>, len: usize) {
        out.clear();
        out.extend((0..len).map(|_| self.next_u32()));
    }
}

/// A word stream shared by every dropout layer of a network and the recipe that saves it.
pub type MaskSource = Arc<Mutex<dyn MaskWords>>;

/// Dropout of `PERCENT` percent of the values (0 to 99). A layer built by dfdx draws from its own
/// stream seeded 0 (as `Cpu::default()` is); a recipe hands it the run's with `drawing_from`.
/// Clones share the stream.
#[derive(Clone)]
pub struct Dropout<const PERCENT: usize> {
    masks: MaskSource,
}

impl<const PERCENT: usize> Dropout<PERCENT> {
    /// The share of values dropped.
    pub const RATE: f32 = {
        assert!(PERCENT < 100, "dropout must keep some values");
        PERCENT as f32 / 100.0
    };

    /// This layer drawing its masks from `masks`.
    pub fn drawing_from(masks: MaskSource) -> Self {
        Dropout { masks }
    }

    /// `len` multipliers, 0 or `1 / (1 - RATE)`, from the next `len` words of the stream.
    fn mask(&self, len: usize) -> Vec<f32> {
        let rate = Self::RATE;
        let cut = (f64::from(rate) * 4_294_967_296.0) as u64;
        let keep = 1.0 / (1.0 - rate);
        let mut words = Vec::new();
        // A panic elsewhere while the stream was held leaves it whole (a draw is one call).
        let mut stream = self.masks.lock().unwrap_or_else(PoisonError::into_inner);
        stream.fill_words(&mut words, len);
        words
            .iter()
            .map(|&w| if u64::from(w) >= cut { keep } else { 0.0 })
            .collect()
    }

    /// The training pass: a fresh mask, applied on the tape.
    fn forward_op<S: Shape, T: Tape<f32, Cpu>>(
        &self,
        x: Tensor<S, f32, Cpu, T>,
    ) -> Result<Tensor<S, f32, Cpu, T>, CpuError> {
        let (mut y, x, mut tape) = ops::take_input(x)?;
        let mask = self.mask(y.len());
        for (v, m) in y.iter_mut().zip(&mask) {
            *v *= m;
        }
        let out = ops::made(x.device(), y, *x.shape())?;
        if T::OWNS_TAPE {
            let (x_ghost, out_ghost) = (x.ghost(), out.ghost());
            tape.add_backward_op(move |grads| {
                let dy: Vec<f32> = take_grad!(grads, out_ghost);
                let dx = grads.get_or_alloc_mut(&x_ghost)?;
                for ((g, d), m) in dx.iter_mut().zip(&dy).zip(&mask) {
                    *g += d * m;
                }
                put_grad!(grads, out_ghost, dy);
                Ok(())
            });
        }
        Ok(out.put_tape(tape))
    }
}

impl<const PERCENT: usize> Default for Dropout<PERCENT> {
    fn default() -> Self {
        Dropout::drawing_from(Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(0))))
    }
}

impl<const PERCENT: usize> std::fmt::Debug for Dropout<PERCENT> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dropout<{PERCENT}>")
    }
}

impl<const PERCENT: usize> ZeroSizedModule for Dropout<PERCENT> {}

impl<const PERCENT: usize, S: Shape, T: Tape<f32, Cpu>> Module<Tensor<S, f32, Cpu, T>>
    for Dropout<PERCENT>
{
    type Output = Tensor<S, f32, Cpu, T>;
    type Error = CpuError;

    /// Evaluation: the input as it is.
    fn try_forward(&self, x: Tensor<S, f32, Cpu, T>) -> Result<Self::Output, CpuError> {
        Ok(x)
    }
}

impl<const PERCENT: usize, S: Shape, T: Tape<f32, Cpu>> ModuleMut<Tensor<S, f32, Cpu, T>>
    for Dropout<PERCENT>
{
    type Output = Tensor<S, f32, Cpu, T>;
    type Error = CpuError;

    fn try_forward_mut(&mut self, x: Tensor<S, f32, Cpu, T>) -> Result<Self::Output, CpuError> {
        self.forward_op(x)
    }
}

impl<const PERCENT: usize, S: Shape, T: Tape<f32, Cpu>> FrozenModule<Tensor<S, f32, Cpu, T>>
    for Dropout<PERCENT>
{
    type Output = Tensor<S, f32, Cpu, T>;

    /// A frozen network is still training: a fresh mask.
    fn try_forward_frozen(&self, x: Tensor<S, f32, Cpu, T>) -> Result<Self::Output, CpuError> {
        self.forward_op(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rows<T> = Tensor<(usize, Const<3>), f32, Cpu, T>;

    fn source(seed: u64) -> MaskSource {
        Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed)))
    }

    #[test]
    fn drops_about_its_rate_keeps_the_mean_and_evaluation_passes_through() {
        let dev: Cpu = Default::default();
        let mut drop = Dropout::<30>::drawing_from(source(7));
        let x: Rows<NoneTape> = dev.ones_like(&(2000, Const));
        let y = drop.forward_mut(x.clone()).as_vec();
        let zeros = y.iter().filter(|&&v| v == 0.0).count();
        let share = zeros as f64 / y.len() as f64;
        assert!((share - 0.3).abs() < 0.02, "{share}");
        assert!(y.iter().all(|&v| v == 0.0 || v == 1.0 / (1.0 - 0.3f32)));
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
        assert!((mean - 1.0).abs() < 0.05, "{mean}");
        assert_eq!(drop.forward(x.clone()).as_vec(), x.as_vec());
    }

    #[test]
    fn masks_follow_the_shared_stream_and_the_gradient_takes_the_same_mask() {
        let dev: Cpu = Default::default();
        let shared = source(3);
        let a = Dropout::<50>::drawing_from(shared.clone());
        let b = a.clone();
        let x: Rows<NoneTape> = dev.sample_normal_like(&(8, Const));
        let r: Rows<NoneTape> = dev.sample_normal_like(&(8, Const));
        let y = a.try_forward_frozen(x.clone().leaky_traced()).unwrap();
        let yv = y.as_vec();
        let grads = (y * r.clone()).sum().backward();
        let (dx, xv, rv) = (grads.get(&x).as_vec(), x.as_vec(), r.as_vec());
        for i in 0..xv.len() {
            let m = if yv[i] == 0.0 { 0.0 } else { 2.0 };
            assert_eq!(yv[i], xv[i] * m);
            assert_eq!(dx[i], rv[i] * m, "gradient {i}");
        }
        // The clone drew the next words of the same stream: the same as a fresh stream's second
        // draw.
        let next = b.try_forward_frozen(x.clone()).unwrap().as_vec();
        let fresh = Dropout::<50>::drawing_from(source(3));
        fresh.try_forward_frozen(x.clone()).unwrap();
        assert_eq!(fresh.try_forward_frozen(x).unwrap().as_vec(), next);
    }
}
