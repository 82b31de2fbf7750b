//! The one training step of the BCE recipes (reference, tuned, dcgan, cgan): G(z) on G's tape;
//! D's step on the real and the (detached) fake batch, as one batch of 2B rows (`Together`, the
//! MLP recipes) or as two passes side by side (`Apart`, the conv recipes); D's update; then
//! G's step through the updated D, frozen, on the non-saturating loss BCE(D(G(z)), 1).
//!
//! G and D run in training mode (`ModuleMut`: a batch norm may update its running statistics;
//! a layer that has none, as `Dense`, is its own `ModuleMut`), D in G's step frozen
//! (`FrozenModule`). What differs between recipes comes in through the types, G's input (noise,
//! or noise joined with a one-hot label), how D's inputs are made from the images (with the
//! labels for a conditional D), and the target D is taught for real images (1, or 0.9 with
//! label smoothing).

use std::time::Instant;

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::*;

use super::gan::{DeviceError, PhaseTimes, StepLosses};
use super::nets::Nets;
use crate::nn::frozen::{Constant, Freeze, FrozenModule};
use crate::nn::loss::{Target, bce_with_logits, mean_sigmoid};
use crate::nn::{batch_norm, deferred, kernels, ops, params};

/// The tape every training pass records on.
pub type Taped = OwnedTape<f32, Cpu>;

/// A batch of rows of `N` values on the tape.
pub type Rows<const N: usize> = Tensor<(usize, Const<N>), f32, Cpu, Taped>;

/// D's logits, one per row.
pub type Logits = Rows<1>;

/// What D's step measured: its loss and the mean probability it gave each batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DMeasured {
    pub loss: f32,
    pub real: f32,
    pub fake: f32,
}

/// What D's step gives: D's gradients, what it measured, and G's fakes (detached).
pub type DStepped<Img> = (Gradients<f32, Cpu>, DMeasured, Tensor<Img, f32, Cpu>);

/// How D's step takes the real and the (detached) fake batch: it runs D on them in training
/// mode and gives D's gradients (on `grads`), what it measured, and the fakes, which
/// `make_fake` makes (G's pass, on this thread: its tape stays here).
pub trait DStep<D, Img: Shape> {
    fn gradients(
        self,
        d: &mut D,
        grads: Gradients<f32, Cpu>,
        make_fake: impl FnOnce() -> Result<Tensor<Img, f32, Cpu>, CpuError>,
    ) -> Result<DStepped<Img>, CpuError>;
}

/// The real rows then the fake ones as one batch, made by `both` from the fakes and the
/// gradients (the MLP recipes).
pub struct Together<Both> {
    pub both: Both,
    /// What D is taught for real rows (1, or 0.9 with label smoothing).
    pub real_target: f32,
}

impl<D, Img, X, Both> DStep<D, Img> for Together<Both>
where
    Img: Shape,
    D: ModuleMut<X, Output = Logits, Error = CpuError>,
    Both: FnOnce(Tensor<Img, f32, Cpu>, Gradients<f32, Cpu>) -> Result<X, CpuError>,
{
    fn gradients(
        self,
        d: &mut D,
        grads: Gradients<f32, Cpu>,
        make_fake: impl FnOnce() -> Result<Tensor<Img, f32, Cpu>, CpuError>,
    ) -> Result<DStepped<Img>, CpuError> {
        let fake = make_fake()?;
        let batch = fake.shape().concrete()[0];
        let logits = d.try_forward_mut((self.both)(fake.clone(), grads)?)?;
        let groups = [
            Target {
                rows: batch,
                value: self.real_target,
            },
            Target {
                rows: batch,
                value: 0.0,
            },
        ];
        let (loss, parts) = bce_with_logits(logits, &groups)?;
        let (real_logits, fake_logits) = parts.logits.split_at(batch);
        let measured = DMeasured {
            loss: parts.means.iter().sum(),
            real: mean_sigmoid(real_logits),
            fake: mean_sigmoid(fake_logits),
        };
        Ok((loss.backward(), measured, fake))
    }
}

/// The real and the fake batch apart, as PyTorch's two calls `D(x)` and `D(G(z))` (the conv
/// recipes): each its own pass and gradients, then the fake batch's gradients added to the real
/// one's. `real` makes D's input for the real batch and `fake` for the fakes, each on a tape
/// from the gradients given. A batch norm normalises each batch with its own statistics, which
/// its running statistics then follow, the real batch's first (as after PyTorch's two calls).
///
/// The real batch's pass needs no fakes, so it is offered to the pool's other thread at once
/// while this one makes the fakes (G's pass) and then runs the fake batch's pass
/// (`kernels::beside`): the two threads work through G's pass and D's first pass together
/// without handing work over op by op, and the thread that ends first takes over pieces of the
/// other's products and passes. On one thread the passes run one after the other: the same
/// sums either way.
pub struct Apart<Real, Fake> {
    pub real: Real,
    pub fake: Fake,
    pub real_target: f32,
}

impl<D, Img, X, Real, Fake> DStep<D, Img> for Apart<Real, Fake>
where
    Img: Shape,
    D: TensorCollection<f32, Cpu> + ModuleMut<X, Output = Logits, Error = CpuError> + Clone + Send,
    Real: FnOnce(Gradients<f32, Cpu>) -> Result<X, CpuError> + Send,
    Fake: FnOnce(&Tensor<Img, f32, Cpu>, Gradients<f32, Cpu>) -> Result<X, CpuError>,
{
    fn gradients(
        self,
        d: &mut D,
        grads: Gradients<f32, Cpu>,
        make_fake: impl FnOnce() -> Result<Tensor<Img, f32, Cpu>, CpuError>,
    ) -> Result<DStepped<Img>, CpuError> {
        // One batch's pass on `d` from its input: its gradients, its loss and logits, and the
        // statistics its batch norms found (recorded, not yet followed).
        let pass = |d: &mut D, input: Result<X, CpuError>, target: f32| {
            let (result, found) = batch_norm::recording(d, |d| {
                let logits = d.try_forward_mut(input?)?;
                let rows = logits.shape().0;
                let (loss, parts) = bce_with_logits(
                    logits,
                    &[Target {
                        rows,
                        value: target,
                    }],
                )?;
                Ok::<_, CpuError>((loss.backward(), parts))
            });
            result.map(|(grads, parts)| (grads, parts, found))
        };
        // A clone shares D's tensors, so its gradients are filed under the same tensors.
        let mut twin = d.clone();
        let mut real = None;
        let (real_input, fake_input, real_target) = (self.real, self.fake, self.real_target);
        let fake_side = kernels::beside(
            || {
                let fake = make_fake()?;
                let input = fake_input(&fake, Gradients::leaky());
                Ok::<_, CpuError>((pass(&mut twin, input, 0.0)?, fake))
            },
            || real = Some(pass(d, real_input(grads), real_target)),
        );
        let ((mut fake_grads, fake_parts, fake_found), fake) = fake_side?;
        let (mut grads, real_parts, real_found) = real.ok_or(CpuError::WrongNumElements)??;
        params::add_grads(d, &mut grads, &mut fake_grads)?;
        batch_norm::follow_recorded(d, &real_found)?;
        batch_norm::follow_recorded(d, &fake_found)?;
        let measured = DMeasured {
            loss: real_parts.means[0] + fake_parts.means[0],
            real: mean_sigmoid(&real_parts.logits),
            fake: mean_sigmoid(&fake_parts.logits),
        };
        Ok((grads, measured, fake))
    }
}

/// One step, as `Gan::train_step` reports it, and how long its halves took: `d_step` takes
/// D's step on the real batch and G's (detached) fakes; `fake` makes D's input in G's step
/// from the fakes on G's tape.
pub fn bce_step<G, D, X, Img, Fake, MakeFake>(
    nets: &mut Nets<G, D>,
    g_input: Tensor<X, f32, Cpu>,
    d_step: impl DStep<D, Img>,
    fake: MakeFake,
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
    D: TensorCollection<f32, Cpu> + Clone + FrozenModule<Fake, Output = Logits>,
    MakeFake: FnOnce(Tensor<Img, f32, Cpu, Taped>) -> Result<Fake, CpuError>,
{
    let start = Instant::now();
    let batch = g_input.shape().concrete()[0];

    // G(z), kept on G's tape for G's step; D's step sees it detached.
    let g_grads = std::mem::replace(&mut nets.g_grads, Gradients::leaky());
    let mut g_tape = None;
    let g = &mut nets.g;
    let make_fake = || {
        let fake_images = g.try_forward_mut(Constant(g_input.traced(g_grads)))?;
        let (fake_images, tape) = fake_images.split_tape();
        g_tape = Some(tape);
        Ok(fake_images)
    };

    let d_grads = std::mem::replace(&mut nets.d_grads, Gradients::leaky());
    let (d_grads, d, fake_images) = d_step.gradients(&mut nets.d, d_grads, make_fake)?;
    let g_tape = g_tape.ok_or(CpuError::WrongNumElements)?;
    nets.d_grads = d_grads;
    nets.opt_d.update_and_zero(&mut nets.d, &mut nets.d_grads)?;
    let d_done = Instant::now();

    // G's step through the updated D, whose own gradients nobody needs.
    let logits = nets
        .d
        .frozen()
        .try_forward(fake(fake_images.put_tape(g_tape))?)?;
    let ones = [Target {
        rows: batch,
        value: 1.0,
    }];
    let (g_loss, g_parts) = bce_with_logits(logits, &ones)?;
    // G's layers hand their weights' gradients to the pool's other thread, which would
    // otherwise wait through much of this pass.
    nets.g_grads = deferred::with_deferred(|| g_loss.backward())?;
    nets.opt_g.update_and_zero(&mut nets.g, &mut nets.g_grads)?;
    nets.update_average()?;

    let losses = StepLosses {
        d_loss: d.loss,
        g_loss: g_parts.means[0],
        d_real: d.real,
        d_fake: d.fake,
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
