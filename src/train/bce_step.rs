//! The one training step of the BCE recipes (reference, tuned, dcgan, cgan): G(z) on G's tape;
//! D on the real and the (detached) fake batch as one batch of 2B rows; D's update; then G's
//! step through the updated D, frozen, on the non-saturating loss BCE(D(G(z)), 1).
//!
//! G and D run in training mode (`ModuleMut`: a batch norm may update its running statistics;
//! a layer that has none, as `Dense`, is its own `ModuleMut`), D in G's step frozen
//! (`FrozenModule`). What differs between recipes comes in through the types and two small
//! closures: G's input
//! (noise, or noise joined with a one-hot label), how D's inputs are made from the images (with
//! the labels for a conditional D, marking the two halves for a batch norm that takes each
//! half's statistics apart), and the target D is taught for real images (1, or 0.9 with label
//! smoothing).

use std::time::Instant;

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::*;

use super::gan::{DeviceError, PhaseTimes, StepLosses};
use super::nets::Nets;
use crate::nn::frozen::{Constant, Freeze, FrozenModule};
use crate::nn::loss::{Target, bce_with_logits, mean_sigmoid};
use crate::nn::ops;

/// The tape every training pass records on.
pub type Taped = OwnedTape<f32, Cpu>;

/// A batch of rows of `N` values on the tape.
pub type Rows<const N: usize> = Tensor<(usize, Const<N>), f32, Cpu, Taped>;

/// D's logits, one per row.
pub type Logits = Rows<1>;

/// How D's inputs are made from the images, for one step.
pub struct DInputs<Both, Fake> {
    /// From the detached fake batch and D's gradients: D's input for its own step, the real
    /// rows then the fake rows, on a tape made from those gradients.
    pub both: Both,
    /// From G's output on G's tape: D's input for G's step.
    pub fake: Fake,
}

/// One step, as `Gan::train_step` reports it, and how long its halves took.
#[allow(clippy::type_complexity)]
pub fn bce_step<G, D, X, Img, Both, Fake, MakeBoth, MakeFake>(
    nets: &mut Nets<G, D>,
    g_input: Tensor<X, f32, Cpu>,
    real_target: f32,
    inputs: DInputs<MakeBoth, MakeFake>,
) -> Result<(StepLosses, PhaseTimes), DeviceError>
where
    X: Shape,
    Img: Shape,
    G: TensorCollection<f32, Cpu>
        + Clone
        + ModuleMut<
            Constant<Tensor<X, f32, Cpu, Taped>>,
            Output = Tensor<Img, f32, Cpu, Taped>,
            Error = CpuError,
        >,
    D: TensorCollection<f32, Cpu>
        + Clone
        + ModuleMut<Both, Output = Logits, Error = CpuError>
        + FrozenModule<Fake, Output = Logits>,
    MakeBoth: FnOnce(Tensor<Img, f32, Cpu>, Gradients<f32, Cpu>) -> Result<Both, CpuError>,
    MakeFake: FnOnce(Tensor<Img, f32, Cpu, Taped>) -> Result<Fake, CpuError>,
{
    let start = Instant::now();
    let batch = g_input.shape().concrete()[0];

    // G(z), kept on G's tape for G's step; D's step sees it detached.
    let g_grads = std::mem::replace(&mut nets.g_grads, Gradients::leaky());
    let fake = nets.g.try_forward_mut(Constant(g_input.traced(g_grads)))?;
    let (fake, g_tape) = fake.split_tape();

    // D's step on real and fake rows together.
    let d_grads = std::mem::replace(&mut nets.d_grads, Gradients::leaky());
    let logits = nets
        .d
        .try_forward_mut((inputs.both)(fake.clone(), d_grads)?)?;
    let groups = [
        Target {
            rows: batch,
            value: real_target,
        },
        Target {
            rows: batch,
            value: 0.0,
        },
    ];
    let (d_loss, d_parts) = bce_with_logits(logits, &groups)?;
    nets.d_grads = d_loss.backward();
    nets.opt_d.update_and_zero(&mut nets.d, &mut nets.d_grads)?;
    let (real_logits, fake_logits) = d_parts.logits.split_at(batch);
    let (d_real, d_fake) = (mean_sigmoid(real_logits), mean_sigmoid(fake_logits));
    let d_done = Instant::now();

    // G's step through the updated D, whose own gradients nobody needs.
    let logits = nets
        .d
        .frozen()
        .try_forward((inputs.fake)(fake.put_tape(g_tape))?)?;
    let ones = [Target {
        rows: batch,
        value: 1.0,
    }];
    let (g_loss, g_parts) = bce_with_logits(logits, &ones)?;
    nets.g_grads = g_loss.backward();
    nets.opt_g.update_and_zero(&mut nets.g, &mut nets.g_grads)?;
    nets.update_average()?;

    let losses = StepLosses {
        d_loss: d_parts.means.iter().sum(),
        g_loss: g_parts.means[0],
        d_real,
        d_fake,
    };
    let times = PhaseTimes {
        d: d_done - start,
        g: d_done.elapsed(),
    };
    Ok((losses, times))
}

/// D's input for its step in the plain case: the real rows then the fake ones, as one batch
/// on a tape from `grads`, a `Constant` (nobody needs its gradient).
pub fn real_then_fake<const N: usize>(
    real: &[f32],
    fake: &Tensor<(usize, Const<N>), f32, Cpu>,
    grads: Gradients<f32, Cpu>,
) -> Result<Constant<Rows<N>>, CpuError> {
    let rows = fake.shape().0;
    let mut both = Vec::with_capacity(2 * rows * N);
    both.extend_from_slice(real);
    both.extend_from_slice(&ops::read(fake)?);
    let both = ops::made(fake.device(), both, (2 * rows, Const::<N>))?;
    Ok(Constant(both.traced(grads)))
}
