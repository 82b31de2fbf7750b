//! The DCGAN preset: a convolutional generator and discriminator in the manner of Radford et al.
//! (2016), sized for 28x28 digits, trained with the reference's losses, Adam beta1 0.5, and
//! samples drawn from a running average of G's weights.
//!
//! Both networks are dfdx models built from `nn`'s layers (channels-last images; the ReLUs,
//! LeakyReLUs and tanh fused into the layer before them). D sees the real and the fake half of a
//! step in one pass, its batch norm taking each half's statistics apart as two PyTorch calls
//! would. (Twice the channels learned no faster in the first two epochs and cost four times as
//! much.) Tensors are saved under the names and in the layouts of the equivalent PyTorch
//! `nn.Sequential`s (`G_INDICES`, `D_INDICES`).
//!
//! `ConvGan` is the training engine of this preset and of the conditional one (`cgan`), which
//! brings its own discriminator through `ConvDiscriminator`.

use std::collections::BTreeMap;
use std::time::Instant;

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::*;

use super::gan::{Batch, DeviceError, Gan, GanState, PhaseTimes, StateError, StepLosses, counter};
use super::reference::{D_OPT_PREFIX, D_PREFIX, D_STEPS, G_OPT_PREFIX, G_PREFIX, G_STEPS, IMAGE};
use crate::config::Preset;
use crate::nn::adam::Adam;
use crate::nn::average::{ema_decay, ema_update};
use crate::nn::ops::{self, put_grad, take_grad};
use crate::nn::params::{self, NamedTensor, Names};
use crate::nn::{
    BatchNorm2d, Constant, Conv2d, ConvTranspose2d, Dense, Flatten, Frozen, Identity, LeakyRelu,
    Relu, Tanh, Unflatten, kernels,
};

pub use super::reference::LATENT;

/// Channels of G at 7x7 and 14x14, and of D at 14x14 and 7x7.
pub const G7: usize = 64;
pub const G14: usize = 32;
pub const D14: usize = 32;
pub const D7: usize = 64;
/// G's dense output and D's dense input: a 7x7 image of 64 channels.
pub const G_DENSE: usize = 7 * 7 * G7;
pub const D_DENSE: usize = 7 * 7 * D7;
/// DCGAN's Adam betas: a smaller beta1 damps the oscillation between the two players.
pub const BETAS: [f64; 2] = [0.5, 0.999];
/// The decay of the generator's weight average: a horizon of about a thousand steps.
pub const EMA_DECAY: f32 = 0.999;
/// Where the generator's weight average is saved.
pub const EMA_PREFIX: &str = "ema.model.";

pub const ARCHITECTURE: &str = "dcgan G 100-dense7x7x64-bn-convT32-bn-convT1 tanh; \
     D conv32-conv64-bn-dense1 leaky0.2; k4 s2 p1";

/// The generator for `Z` inputs: dense to a 7x7x64 image, batch norm and ReLU, transposed
/// convolution to 14x14x32, batch norm and ReLU, transposed convolution to 28x28x1 and tanh.
pub type Generator<const Z: usize> = (
    Dense<Z, G_DENSE, Identity>,
    Unflatten<G_DENSE, G7, 7>,
    BatchNorm2d<G7, Relu>,
    ConvTranspose2d<G7, G14, 4, 2, 1, 7, 14, Identity>,
    BatchNorm2d<G14, Relu>,
    ConvTranspose2d<G14, 1, 4, 2, 1, 14, 28, Tanh>,
);

/// Where PyTorch's `nn.Sequential(Linear, Unflatten, BatchNorm2d, ReLU, ConvTranspose2d,
/// BatchNorm2d, ReLU, ConvTranspose2d, Tanh)` puts each element of `Generator`.
pub const G_INDICES: &[&str] = &["0", "1", "2", "4", "5", "7"];

/// The discriminator's layers up to its features: convolution to 14x14x32 and LeakyReLU,
/// convolution to 7x7x64, batch norm (real and fake halves apart) and LeakyReLU, flattened
/// channels-first.
pub type Features = FeaturesOn<f32, Cpu>;

/// `Features` of another dtype or device, as dfdx's `TensorCollection::To` names it.
pub type FeaturesOn<E, D> = (
    Conv2d<1, D14, 4, 2, 1, 28, 14, LeakyRelu, E, D>,
    Conv2d<D14, D7, 4, 2, 1, 14, 7, Identity, E, D>,
    BatchNorm2d<D7, LeakyRelu, 2, E, D>,
    Flatten<D_DENSE, D7, 7>,
);

/// The unconditional discriminator: the features, then one dense logit.
pub type Discriminator = (
    Conv2d<1, D14, 4, 2, 1, 28, 14, LeakyRelu>,
    Conv2d<D14, D7, 4, 2, 1, 14, 7, Identity>,
    BatchNorm2d<D7, LeakyRelu, 2>,
    Flatten<D_DENSE, D7, 7>,
    Dense<D_DENSE, 1, Identity>,
);

/// Where PyTorch's `nn.Sequential(Conv2d, LeakyReLU, Conv2d, BatchNorm2d, LeakyReLU, Flatten,
/// Linear)` puts each element of `Discriminator`.
pub const D_INDICES: &[&str] = &["0", "2", "3", "5", "6"];

/// A batch of digits as one-channel 28x28 images.
pub type Images<T> = Tensor<(usize, Const<28>, Const<28>, Const<1>), f32, Cpu, T>;
/// One logit per image.
pub type Logits<T> = Tensor<(usize, Const<1>), f32, Cpu, T>;
/// The tape of a training pass.
pub type Taped = OwnedTape<f32, Cpu>;

/// What `ConvGan` needs of a discriminator beyond its tensors: how it is built and named, what
/// the generator is fed, and its two passes. The unconditional and the conditional preset
/// differ only here.
pub trait ConvDiscriminator: TensorCollection<f32, Cpu> + Clone + Send + Sync {
    const PRESET: Preset;
    const ARCHITECTURE: &'static str;
    /// Whether the generator is told which digit to draw.
    const CONDITIONAL: bool;
    /// Drawn from `dev`'s stream with DCGAN's initialisation.
    fn build(dev: &Cpu) -> Self;
    /// The saved names of its tensors.
    fn names() -> Names;
    /// The generator's input rows for `count` noise vectors `z` (checked) and the digits asked
    /// for, if any (checked; each of 0-9 in turn when none are named).
    fn generator_input(
        z: &[f32],
        labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError>;
    /// The training pass over a batch of real then fake images (batch norm's groups), each
    /// judged for its digit in `labels`: parameter gradients, none for the images.
    fn train_logits(
        &mut self,
        x: Constant<Images<Taped>>,
        labels: &[u8],
    ) -> Result<Logits<Taped>, CpuError>;
    /// The frozen pass of the generator's step: gradients for the images only.
    fn frozen_logits(&self, x: Images<Taped>, labels: &[u8]) -> Result<Logits<Taped>, CpuError>;
}

/// `data` has `batch` rows of `per` values, or the error saying what came instead.
pub(crate) fn check_len(data: &[f32], batch: usize, per: usize) -> Result<(), DeviceError> {
    if data.len() == batch * per {
        Ok(())
    } else {
        Err(DeviceError(format!(
            "expected {batch} x {per} values, got {}",
            data.len()
        )))
    }
}

/// DCGAN's initialisation of a dense layer: weights normal(0, 0.02) from `dev`'s stream, biases 0.
pub fn dcgan_dense<const I: usize, const O: usize, A>(dev: &Cpu, layer: &mut Dense<I, O, A>) {
    let w: Tensor<Rank2<O, I>, f32, Cpu> = dev.sample_normal();
    layer.weight = w * crate::nn::conv::INIT_STD;
    layer.bias = dev.zeros();
}

impl ConvDiscriminator for Discriminator {
    const PRESET: Preset = Preset::Dcgan;
    const ARCHITECTURE: &'static str = ARCHITECTURE;
    const CONDITIONAL: bool = false;

    fn build(dev: &Cpu) -> Self {
        let mut d = dev.build_module::<Discriminator, f32>();
        dcgan_dense(dev, &mut d.4);
        d
    }

    fn names() -> Names {
        Names::sequential(D_PREFIX, D_INDICES)
    }

    fn generator_input(z: &[f32], _: Option<&[u8]>, count: usize) -> Result<Vec<f32>, DeviceError> {
        check_len(z, count, LATENT)?;
        Ok(z.to_vec())
    }

    fn train_logits(
        &mut self,
        x: Constant<Images<Taped>>,
        _: &[u8],
    ) -> Result<Logits<Taped>, CpuError> {
        self.try_forward_mut(x)
    }

    fn frozen_logits(&self, x: Images<Taped>, _: &[u8]) -> Result<Logits<Taped>, CpuError> {
        Frozen(self).try_forward(x)
    }
}

/// Binary cross-entropy with logits, as one custom op: the sum over `targets` of the mean loss
/// of each block of rows (`targets[i]` the target of the `i`-th block of `logits.len() /
/// targets.len()` rows), so a real-then-fake batch gives `BCE(real, 1) + BCE(fake, 0)`. Also
/// returns the mean sigmoid of each block.
fn bce_blocks(
    logits: Logits<Taped>,
    targets: &[f32],
) -> Result<(Tensor<Rank0, f32, Cpu, Taped>, Vec<f32>), CpuError> {
    let (values, logits, mut tape) = ops::take_input(logits)?;
    let per = values.len() / targets.len().max(1);
    if per == 0 || per * targets.len() != values.len() {
        return Err(CpuError::WrongNumElements);
    }
    let mut grad = vec![0.0f32; values.len()];
    let mut loss = 0.0;
    let mut probabilities = Vec::with_capacity(targets.len());
    for ((l, g), &t) in values
        .chunks_exact(per)
        .zip(grad.chunks_exact_mut(per))
        .zip(targets)
    {
        loss += kernels::bce_with_logits(l, t, g, 1.0 / per as f32);
        let sum: f64 = l.iter().map(|&x| kernels::sigmoid(x) as f64).sum();
        probabilities.push((sum / per as f64) as f32);
    }
    let out = logits.device().try_tensor_from_vec(vec![loss], ())?;
    let (l_ghost, out_ghost) = (logits.ghost(), out.ghost());
    tape.add_backward_op(move |grads| {
        let d: Vec<f32> = take_grad!(grads, out_ghost);
        let scale = d.first().copied().unwrap_or(0.0);
        for (g, &v) in grads.get_or_alloc_mut(&l_ghost)?.iter_mut().zip(&grad) {
            *g += scale * v;
        }
        put_grad!(grads, out_ghost, d);
        Ok(())
    });
    Ok((out.put_tape(tape), probabilities))
}

/// The convolutional GAN with `Z` generator inputs and discriminator `D`: the DCGAN preset
/// (`Dcgan`), and the conditional preset (`cgan::Cgan`).
pub struct ConvGan<const Z: usize, D: ConvDiscriminator> {
    dev: Cpu,
    g: Generator<Z>,
    d: D,
    opt_g: Adam,
    opt_d: Adam,
    /// A running average of G's weights, which draws the samples.
    ema: Generator<Z>,
    /// Gradient buffers kept between steps (allocated once, zeroed by each update).
    g_grads: Option<Gradients<f32, Cpu>>,
    d_grads: Option<Gradients<f32, Cpu>>,
    times: PhaseTimes,
}

/// The unconditional preset.
pub type Dcgan = ConvGan<LATENT, Discriminator>;

/// G's saved names.
fn g_names() -> Names {
    Names::sequential(G_PREFIX, G_INDICES)
}

/// The trainable tensors among `tensors`: batch norm's running statistics are buffers, which
/// have no optimiser moments (PyTorch's distinction).
fn trainable(tensors: &[NamedTensor]) -> Vec<NamedTensor> {
    tensors
        .iter()
        .filter(|t| !t.name.ends_with(".running_mean") && !t.name.ends_with(".running_var"))
        .cloned()
        .collect()
}

impl Dcgan {
    /// Weights drawn from dfdx's stream seeded with `seed`, G before D.
    pub fn new(seed: u64, lr: f64) -> Self {
        ConvGan::build(seed, lr)
    }
}

impl<const Z: usize, D: ConvDiscriminator> ConvGan<Z, D> {
    /// Weights drawn from dfdx's stream seeded with `seed`, G before D.
    pub fn build(seed: u64, lr: f64) -> Self {
        crate::nn::memory::keep_freed_memory();
        let dev = Cpu::seed_from_u64(seed);
        let mut g = dev.build_module::<Generator<Z>, f32>();
        dcgan_dense(&dev, &mut g.0);
        let d = D::build(&dev);
        let adam = |names| {
            Adam::new(
                AdamConfig {
                    lr,
                    betas: BETAS,
                    eps: 1e-8,
                    weight_decay: None,
                },
                names,
            )
        };
        ConvGan {
            opt_g: adam(g_names()),
            opt_d: adam(D::names()),
            ema: g.clone(),
            g,
            d,
            dev,
            g_grads: None,
            d_grads: None,
            times: PhaseTimes::default(),
        }
    }

    /// One training step, as `Gan::train_step`.
    fn step(&mut self, b: &Batch) -> Result<StepLosses, DeviceError> {
        let (real, batch) = (b.real, b.count);
        check_len(real, batch, IMAGE)?;
        let start = Instant::now();
        // Fakes are drawn for the labels of the real digits they are shown beside.
        let input = D::generator_input(b.z, D::CONDITIONAL.then_some(b.labels), batch)?;
        let z = self.dev.try_tensor_from_vec(input, (batch, Const::<Z>))?;
        let g_grads = match self.g_grads.take() {
            Some(g) => g,
            None => self.g.try_alloc_grads()?,
        };
        let fake = self.g.try_forward_mut(Constant(z.traced(g_grads)))?;
        let (fake_values, fake, g_tape) = ops::take_input(fake)?;

        // D step: real and fake images in one pass, batch norm keeping them apart.
        let mut both = Vec::with_capacity(2 * batch * IMAGE);
        both.extend_from_slice(real);
        both.extend_from_slice(&fake_values);
        let labels2: Vec<u8> = b.labels.iter().chain(b.labels).copied().collect();
        let both = self
            .dev
            .try_tensor_from_vec(both, (2 * batch, Const, Const, Const))?;
        let d_grads = match self.d_grads.take() {
            Some(g) => g,
            None => self.d.try_alloc_grads()?,
        };
        let logits = self
            .d
            .train_logits(Constant(both.traced(d_grads)), &labels2)?;
        let (d_loss, d_probs) = bce_blocks(logits, &[1.0, 0.0])?;
        let d_loss_value = ops::read(&d_loss.retaped::<NoneTape>())?[0];
        let mut d_grads = d_loss.backward();
        self.opt_d.update_and_zero(&mut self.d, &mut d_grads)?;
        self.d_grads = Some(d_grads);
        let d_done = Instant::now();

        // G step through the updated, frozen D.
        let logits = self.d.frozen_logits(fake.put_tape(g_tape), b.labels)?;
        let (g_loss, _) = bce_blocks(logits, &[1.0])?;
        let g_loss_value = ops::read(&g_loss.retaped::<NoneTape>())?[0];
        let mut g_grads = g_loss.backward();
        self.opt_g.update_and_zero(&mut self.g, &mut g_grads)?;
        self.g_grads = Some(g_grads);
        let decay = ema_decay(EMA_DECAY, self.opt_g.steps());
        ema_update(&mut self.ema, &self.g, decay)?;

        self.times = PhaseTimes {
            d: d_done - start,
            g: d_done.elapsed(),
        };
        Ok(StepLosses {
            d_loss: d_loss_value,
            g_loss: g_loss_value,
            d_real: d_probs[0],
            d_fake: d_probs[1],
        })
    }
}

impl<const Z: usize, D: ConvDiscriminator> Gan for ConvGan<Z, D> {
    fn preset(&self) -> Preset {
        D::PRESET
    }

    fn architecture(&self) -> String {
        D::ARCHITECTURE.to_string()
    }

    fn latent_dim(&self) -> usize {
        LATENT
    }

    fn is_conditional(&self) -> bool {
        D::CONDITIONAL
    }

    fn train_step(&mut self, b: &Batch) -> Result<StepLosses, DeviceError> {
        kernels::in_pool(|| self.step(b))
    }

    fn phase_times(&self) -> PhaseTimes {
        self.times
    }

    fn step_flops(&self, b: usize) -> f64 {
        let b = b as f64;
        let dense_g = b * Dense::<Z, G_DENSE, Identity>::product_flops(1);
        let g = dense_g
            + b * ConvTranspose2d::<G7, G14, 4, 2, 1, 7, 14, Identity>::FLOPS_PER_IMAGE
            + b * ConvTranspose2d::<G14, 1, 4, 2, 1, 14, 28, Tanh>::FLOPS_PER_IMAGE;
        let first_d = b * Conv2d::<1, D14, 4, 2, 1, 28, 14, LeakyRelu>::FLOPS_PER_IMAGE;
        let d = first_d
            + b * Conv2d::<D14, D7, 4, 2, 1, 14, 7, Identity>::FLOPS_PER_IMAGE
            + b * Dense::<D_DENSE, 1, Identity>::product_flops(1);
        // D step on 2b: forward, weight gradients, input gradients of all but the first layer.
        let d_step = 2.0 * (3.0 * d - first_d);
        // G step: D forward and input gradients, G weight gradients and input gradients but
        // the dense layer's.
        let g_step = 2.0 * d + 3.0 * g - dense_g;
        g + d_step + g_step
    }

    fn generate(
        &self,
        z: &[f32],
        labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError> {
        let input = D::generator_input(z, labels, count)?;
        let z = self.dev.try_tensor_from_vec(input, (count, Const::<Z>))?;
        let images = kernels::in_pool(|| self.ema.try_forward(z))?;
        Ok(ops::read(&images)?)
    }

    fn set_lr(&mut self, lr: f64) {
        self.opt_g.cfg.lr = lr;
        self.opt_d.cfg.lr = lr;
    }

    fn state(&self) -> GanState {
        let g = params::export_named(&self.g, &g_names());
        let d = params::export_named(&self.d, &D::names());
        let ema = params::export_named(&self.ema, &g_names().with_prefix(EMA_PREFIX));
        let moments_g = self.opt_g.export(G_OPT_PREFIX, &trainable(&g));
        let moments_d = self.opt_d.export(D_OPT_PREFIX, &trainable(&d));
        let tensors = [g, d, ema, moments_g, moments_d].concat();
        let counters = BTreeMap::from([
            (G_STEPS.to_string(), self.opt_g.steps()),
            (D_STEPS.to_string(), self.opt_d.steps()),
        ]);
        GanState { tensors, counters }
    }

    fn load_state(
        &mut self,
        state: &BTreeMap<String, NamedTensor>,
        counters: &BTreeMap<String, u64>,
    ) -> Result<(), StateError> {
        let (g_steps, d_steps) = (counter(counters, G_STEPS)?, counter(counters, D_STEPS)?);
        let (mut g, mut d, mut ema) = (self.g.clone(), self.d.clone(), self.ema.clone());
        params::import_named(&mut g, &g_names(), state)?;
        params::import_named(&mut d, &D::names(), state)?;
        params::import_named(&mut ema, &g_names().with_prefix(EMA_PREFIX), state)?;
        let (mut opt_g, mut opt_d) = (self.opt_g.clone(), self.opt_d.clone());
        let g_params = trainable(&params::export_named(&g, &g_names()));
        let d_params = trainable(&params::export_named(&d, &D::names()));
        opt_g.import(G_OPT_PREFIX, &g_params, state, g_steps)?;
        opt_d.import(D_OPT_PREFIX, &d_params, state, d_steps)?;
        (self.g, self.d, self.ema, self.opt_g, self.opt_d) = (g, d, ema, opt_g, opt_d);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::testing::{self, share_told_apart};

    #[test]
    fn tensors_have_pytorch_names_and_shapes() {
        let state = Dcgan::new(1, 2e-4).state();
        let shapes: BTreeMap<&str, &[usize]> = state
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t.shape.as_slice()))
            .collect();
        for (name, shape) in [
            ("model.0.weight", &[G_DENSE, LATENT][..]),
            ("model.2.running_var", &[G7][..]),
            ("model.4.weight", &[G7, G14, 4, 4][..]),
            ("model.5.weight", &[G14][..]),
            ("model.7.weight", &[G14, 1, 4, 4][..]),
            ("model.7.bias", &[1][..]),
            ("ema.model.7.bias", &[1][..]),
            ("discriminator.model.0.weight", &[D14, 1, 4, 4][..]),
            ("discriminator.model.2.weight", &[D7, D14, 4, 4][..]),
            ("discriminator.model.3.running_mean", &[D7][..]),
            ("discriminator.model.6.weight", &[1, D_DENSE][..]),
            (
                "optimizer.generator.exp_avg.model.4.weight",
                &[G7, G14, 4, 4][..],
            ),
        ] {
            assert_eq!(shapes.get(name), Some(&shape), "{name}");
        }
        // Running statistics are saved but have no optimiser moments.
        assert!(!shapes.contains_key("optimizer.generator.exp_avg.model.2.running_mean"));
        for (name, want) in [("model.4.weight", 0.02), ("model.0.weight", 0.02)] {
            let w = &state.tensors.iter().find(|t| t.name == name).unwrap().data;
            let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
            assert!((std - want).abs() < 0.002, "{name}: {std}");
        }
    }

    #[test]
    fn discriminator_learns_and_generator_moves() {
        let mut gan = Dcgan::new(1, 2e-4);
        let z = crate::train::noise::NoiseStream::new(1, crate::train::noise::NoiseKind::Samples)
            .draw(4 * LATENT);
        let before = gan.generate(&z, None, 4).unwrap();
        assert_eq!(before.len(), 4 * IMAGE);
        let losses = testing::train(&mut gan, 12, 32, 1);
        assert!(share_told_apart(&losses, 4) > 0.9, "{losses:?}");
        let last = losses[losses.len() - 1];
        assert!(last.d_loss < losses[0].d_loss, "{losses:?}");
        let after = gan.generate(&z, None, 4).unwrap();
        assert!(after.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert_eq!(
            after,
            gan.generate(&z, None, 4).unwrap(),
            "evaluation is pure"
        );
        let moved = before
            .iter()
            .zip(&after)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(moved > 0.05, "{moved}");
        // Batch norm's running statistics follow the batches.
        let state = gan.state();
        let rv = &state
            .tensors
            .iter()
            .find(|t| t.name == "model.2.running_var")
            .unwrap()
            .data;
        assert!(rv.iter().any(|&v| (v - 1.0).abs() > 1e-3));
    }

    /// The step's loss is the sum of the two halves' mean BCEs, and its gradient reaches the
    /// logits scaled by the block size, as PyTorch's two `BCEWithLogitsLoss` calls would.
    #[test]
    fn block_bce_matches_its_definition() {
        let dev = Cpu::seed_from_u64(0);
        let l = dev.tensor_from_vec(vec![2.0f32, -1.0, 0.5, 3.0], (4usize, Const::<1>));
        let (loss, probs) = bce_blocks(l.leaky_trace(), &[1.0, 0.0]).unwrap();
        let bce = |x: f64, t: f64| x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
        let want = (bce(2.0, 1.0) + bce(-1.0, 1.0)) / 2.0 + (bce(0.5, 0.0) + bce(3.0, 0.0)) / 2.0;
        assert!((loss.array() as f64 - want).abs() < 1e-5);
        let s = |x: f32| 1.0 / (1.0 + (-x).exp());
        assert!((probs[0] - (s(2.0) + s(-1.0)) / 2.0).abs() < 1e-6);
        let g = loss.backward().get(&l).as_vec();
        let want_g = [
            (s(2.0) - 1.0) / 2.0,
            (s(-1.0) - 1.0) / 2.0,
            s(0.5) / 2.0,
            s(3.0) / 2.0,
        ];
        for (a, b) in g.iter().zip(want_g) {
            assert!((a - b).abs() < 1e-6, "{g:?}");
        }
    }

    #[test]
    fn a_restored_state_continues_identically() {
        testing::assert_resumes_identically(
            Box::new(Dcgan::new(5, 2e-4)),
            Box::new(Dcgan::new(99, 2e-4)),
            2,
            16,
        );
    }

    #[test]
    fn a_damaged_state_changes_nothing() {
        testing::assert_damaged_states_change_nothing(Box::new(Dcgan::new(2, 2e-4)));
    }
}
