//! What every recipe offers the training loop: a step, a generator forward, and its state as
//! named tensors. The loop, checkpoints and the `sample` command see recipes only through this.

use std::collections::BTreeMap;

use crate::nn::params::NamedTensor;

/// Length of the noise vector every recipe's generator starts from.
pub const LATENT: usize = 100;
/// Pixels of one image.
pub const IMAGE: usize = crate::data::DIGIT_PIXELS;

/// A model recipe. What each one is (name, default rate, architecture, how it is built) is
/// declared once, in the registry `train::presets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The reference MLP GAN, exactly as the PyTorch program has it.
    Reference,
    /// The reference's MLPs trained as the literature recommends for this size: Adam beta1 0.5,
    /// one-sided label smoothing, dropout in D.
    Tuned,
    /// A DCGAN: transposed convolutions with batch norm in G, strided convolutions in D.
    Dcgan,
    /// A Wasserstein GAN with an MLP critic and an exact gradient penalty.
    WganGp,
    /// A conditional GAN: G draws the digit it is given, D judges image and digit together.
    Cgan,
}

/// One training batch.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// `count` real images, pixels in [-1, 1].
    pub real: &'a [f32],
    /// The digit each real image shows (conditional recipes learn from them).
    pub labels: &'a [u8],
    /// `count` noise vectors of the recipe's latent size.
    pub z: &'a [f32],
    pub count: usize,
}

/// The numbers one training step reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLosses {
    /// BCE(D(x), 1) + BCE(D(G(z)), 0).
    pub d_loss: f32,
    /// BCE(D(G(z)), 1), the non-saturating generator loss.
    pub g_loss: f32,
    /// Mean D(x) over the real batch, as a probability.
    pub d_real: f32,
    /// Mean D(G(z)) over the fake batch, as a probability, before the discriminator's update.
    pub d_fake: f32,
}

impl StepLosses {
    pub fn all_finite(&self) -> bool {
        [self.d_loss, self.g_loss, self.d_real, self.d_fake]
            .iter()
            .all(|v| v.is_finite())
    }
}

/// The L2 norms of the gradients G's and D's optimisers applied in the last measured step: all
/// of a network's trainable tensors as one vector. `None` for a network that took no update in
/// that step (wgan-gp's G, four steps in five).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GradNorms {
    pub g: Option<f32>,
    pub d: Option<f32>,
}

/// Wall time of the last step's two halves: the discriminator step (including G's forward
/// pass, which it needs) and the generator step.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PhaseTimes {
    pub d: std::time::Duration,
    pub g: std::time::Duration,
}

/// Everything a recipe needs to continue exactly where it was: parameters, optimiser moments and
/// counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GanState {
    pub tensors: Vec<NamedTensor>,
    pub counters: BTreeMap<String, u64>,
}

/// Why a state could not be loaded into a recipe.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Params(#[from] crate::nn::params::ParamError),
    #[error(transparent)]
    Optimiser(#[from] crate::nn::adam::AdamStateError),
    #[error("counter `{0}` is missing")]
    MissingCounter(String),
}

/// A counter from a saved state, or the error naming it.
pub fn counter(counters: &BTreeMap<String, u64>, name: &str) -> Result<u64, StateError> {
    counters
        .get(name)
        .copied()
        .ok_or_else(|| StateError::MissingCounter(name.to_string()))
}

/// `Ok` when `data` holds `batch` rows of `per` values.
pub fn check_len(data: &[f32], batch: usize, per: usize) -> Result<(), DeviceError> {
    if data.len() == batch * per {
        Ok(())
    } else {
        Err(DeviceError(format!(
            "expected {batch} x {per} values, got {}",
            data.len()
        )))
    }
}

/// A failure inside the numeric library.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the tensor library failed: {0}")]
pub struct DeviceError(pub String);

impl From<dfdx::tensor::CpuError> for DeviceError {
    fn from(e: dfdx::tensor::CpuError) -> Self {
        DeviceError(e.to_string())
    }
}

/// A trainable GAN recipe.
pub trait Gan {
    fn preset(&self) -> Preset;
    /// Length of one noise vector.
    fn latent_dim(&self) -> usize;
    /// Pixels per image the discriminator takes.
    fn image_len(&self) -> usize {
        28 * 28
    }
    /// One discriminator step then one generator step.
    fn train_step(&mut self, batch: &Batch) -> Result<StepLosses, DeviceError>;
    /// How long the last `train_step`'s D and G halves took.
    fn phase_times(&self) -> PhaseTimes;
    /// Whether the next `train_step`s measure their gradients' norms (a pass over the
    /// gradients; training itself is the same either way).
    fn measure_grad_norms(&mut self, on: bool);
    /// The gradient norms of the last `train_step`, if it measured them.
    fn grad_norms(&self) -> GradNorms;
    /// Floating-point operations of one training step of `batch` images, as this engine
    /// computes it (matrix products only: 2 per multiply-add).
    fn step_flops(&self, batch: usize) -> f64;
    /// The generator's images (pixels in [-1, 1]) for `count` noise vectors; `labels` names the
    /// digit each should show, for conditional recipes (others ignore it).
    fn generate(
        &self,
        z: &[f32],
        labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError>;
    /// Whether the generator takes the digit to draw.
    fn is_conditional(&self) -> bool {
        false
    }
    /// Conditional recipes: images for `count` noise vectors, image `i` asked for digit `from`
    /// with weight `1 - mix[i]` and `to` with weight `mix[i]` in its one-hot input (a digit
    /// morphing into another). Others say they take no digit.
    fn generate_blended(
        &self,
        _z: &[f32],
        _digits: (u8, u8),
        _mix: &[f32],
    ) -> Result<Vec<f32>, DeviceError> {
        Err(DeviceError(
            "this preset's generator does not take a digit".to_string(),
        ))
    }
    /// Sets the learning rate of both optimisers (schedules change it as training goes).
    fn set_lr(&mut self, lr: f64);
    /// The full training state.
    fn state(&self) -> GanState;
    /// Restores a state written by `state`; checks everything before changing anything.
    fn load_state(
        &mut self,
        state: &BTreeMap<String, NamedTensor>,
        counters: &BTreeMap<String, u64>,
    ) -> Result<(), StateError>;
}

/// The `Gan` methods every recipe shares that keeps its networks in `nets` (a `Nets`), the
/// last step's times in `times` and has a `step(&mut self, &Batch)`: written once, expanded
/// inside each recipe's `impl Gan`.
macro_rules! nets_plumbing {
    () => {
        fn train_step(
            &mut self,
            b: &$crate::train::gan::Batch,
        ) -> Result<$crate::train::gan::StepLosses, $crate::train::gan::DeviceError> {
            $crate::nn::kernels::in_pool(|| self.step(b))
        }

        fn phase_times(&self) -> $crate::train::gan::PhaseTimes {
            self.times
        }

        fn measure_grad_norms(&mut self, on: bool) {
            self.nets.measure_grad_norms(on);
        }

        fn grad_norms(&self) -> $crate::train::gan::GradNorms {
            self.nets.grad_norms()
        }

        fn set_lr(&mut self, lr: f64) {
            self.nets.set_lr(lr);
        }
    };
}

pub(crate) use nets_plumbing;
