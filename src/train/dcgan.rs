//! The DCGAN preset: a convolutional generator and discriminator in the manner of Radford et al.
//! (2016), sized for 28x28 digits, trained with the reference's losses, Adam beta1 0.5, and
//! samples drawn from a running average of G's weights.
//!
//! Both networks are dfdx models built from `nn`'s layers (channels-last images; the ReLUs,
//! LeakyReLUs and tanh fused into the layer before them). D's step runs D on the real and on the
//! fake batch as two passes side by side (`bce_step::Apart`), as PyTorch's two calls do. (Twice
//! the channels learned no faster in the first two epochs and cost four times as much.) Tensors
//! are saved under the names and in the layouts of the equivalent PyTorch `nn.Sequential`s
//! (`G_INDICES`, `D_INDICES`).
//!
//! `ConvGan` is the training engine of this preset and of the conditional one (`cgan`), which
//! brings its own discriminator through `ConvDiscriminator`.

use std::collections::BTreeMap;

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::*;

use super::bce_step::{Apart, Logits, Taped, bce_step};
pub use super::gan::LATENT;
use super::gan::{
    Batch, DeviceError, Gan, GanState, IMAGE, PhaseTimes, Preset, StateError, StepLosses, check_len,
};
use super::nets::{EMA_DECAY, Layout, Nets};
use crate::nn::params::NamedTensor;
use crate::nn::{
    BatchNorm2d, Constant, Conv2d, ConvTranspose2d, Dense, Flatten, FrozenModule, Identity,
    LeakyRelu, Relu, Tanh, Unflatten, kernels, ops,
};

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
/// convolution to 7x7x64, batch norm and LeakyReLU; channels-last 7x7x64 images, which a head
/// reads flattened channels-first.
pub type Features = FeaturesOn<f32, Cpu>;

/// `Features` of another dtype or device, as dfdx's `TensorCollection::To` names it.
pub type FeaturesOn<E, D> = (
    Conv2d<1, D14, 4, 2, 1, 28, 14, LeakyRelu, E, D>,
    Conv2d<D14, D7, 4, 2, 1, 14, 7, Identity, E, D>,
    BatchNorm2d<D7, LeakyRelu, E, D>,
);

/// The unconditional discriminator: the features, then one dense logit.
pub type Discriminator = (
    Conv2d<1, D14, 4, 2, 1, 28, 14, LeakyRelu>,
    Conv2d<D14, D7, 4, 2, 1, 14, 7, Identity>,
    BatchNorm2d<D7, LeakyRelu>,
    Flatten<D_DENSE, D7, 7>,
    Dense<D_DENSE, 1, Identity>,
);

/// Where PyTorch's `nn.Sequential(Conv2d, LeakyReLU, Conv2d, BatchNorm2d, LeakyReLU, Flatten,
/// Linear)` puts each element of `Discriminator`.
pub const D_INDICES: &[&str] = &["0", "2", "3", "5", "6"];

/// A batch of digits as one-channel 28x28 images.
pub type Images<T> = Tensor<(usize, Const<28>, Const<28>, Const<1>), f32, Cpu, T>;

/// What `ConvGan` needs of a discriminator beyond its tensors and its two passes (training, on
/// `Own`; frozen, on `Fake`): how it is built and named, and how its inputs and the generator's
/// are made. The unconditional and the conditional preset differ only here.
pub trait ConvDiscriminator:
    TensorCollection<f32, Cpu>
    + Clone
    + Send
    + Sync
    + ModuleMut<Self::Own, Output = Logits, Error = CpuError>
    + FrozenModule<Self::Fake, Output = Logits>
{
    /// D's input in its own step, for the real or the fake images (with their digits for a
    /// conditional D); a `Constant`, as nobody needs its gradient.
    type Own;
    /// D's input in G's step: the fakes on G's tape (with their digits).
    type Fake;
    const PRESET: Preset;
    /// Whether the generator is told which digit to draw.
    const CONDITIONAL: bool;
    /// The `nn.Sequential` index of each element of D, naming its tensors in checkpoints.
    const LAYOUT: &'static [&'static str];
    /// G's and D's learning rates as multiples of the run's rate (two time-scale rates).
    const LR_FACTORS: [f64; 2] = [1.0, 1.0];
    /// The decay of the running average of G's weights that samples are drawn from.
    const EMA_DECAY: f32 = EMA_DECAY;
    /// Drawn from `dev`'s stream with DCGAN's initialisation.
    fn build(dev: &Cpu) -> Self;
    /// The generator's input rows for `count` noise vectors `z` (checked) and the digits asked
    /// for, if any (checked; each of 0-9 in turn when none are named).
    fn generator_input(
        z: &[f32],
        labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError>;
    /// `Own` for one of D's batches, with their digits, on a tape from D's gradients.
    fn own(
        images: DBatch,
        labels: &[u8],
        dev: &Cpu,
        grads: Gradients<f32, Cpu>,
    ) -> Result<Self::Own, CpuError>;
    /// `Fake` from the fakes on G's tape and their digits.
    fn fake(fake: Images<Taped>, labels: &[u8]) -> Result<Self::Fake, CpuError>;
}

/// One of D's two batches in its step.
#[derive(Debug, Clone, Copy)]
pub enum DBatch<'a> {
    /// The real images, flat.
    Real(&'a [f32]),
    /// G's fakes, detached.
    Fake(&'a Images<NoneTape>),
}

/// The real images or the fakes as a batch on a tape from `grads`, a `Constant`.
pub fn batch_images(
    images: DBatch,
    dev: &Cpu,
    grads: Gradients<f32, Cpu>,
) -> Result<Constant<Images<Taped>>, CpuError> {
    let data = match images {
        DBatch::Real(real) => real.to_vec(),
        DBatch::Fake(fake) => ops::read(fake)?,
    };
    let rows = data.len() / IMAGE;
    let t = ops::made(dev, data, (rows, Const, Const, Const))?;
    Ok(Constant(t.traced(grads)))
}

/// Both digits of a blend are 0-9.
fn check_labels_pair(from: u8, to: u8) -> Result<(), DeviceError> {
    match [from, to]
        .into_iter()
        .find(|&d| usize::from(d) >= crate::data::CLASSES)
    {
        Some(d) => Err(DeviceError(format!("label {d} is not a digit 0-9"))),
        None => Ok(()),
    }
}

/// DCGAN's initialisation of a dense layer: weights normal(0, 0.02) from `dev`'s stream, biases 0.
pub fn dcgan_dense<const I: usize, const O: usize, A>(dev: &Cpu, layer: &mut Dense<I, O, A>) {
    let w: Tensor<Rank2<O, I>, f32, Cpu> = dev.sample_normal();
    layer.weight = w * crate::nn::conv::INIT_STD;
    layer.bias = dev.zeros();
}

impl ConvDiscriminator for Discriminator {
    type Own = Constant<Images<Taped>>;
    type Fake = Images<Taped>;
    const PRESET: Preset = Preset::Dcgan;
    const CONDITIONAL: bool = false;
    const LAYOUT: &'static [&'static str] = D_INDICES;

    fn build(dev: &Cpu) -> Self {
        let mut d = dev.build_module::<Discriminator, f32>();
        dcgan_dense(dev, &mut d.4);
        d
    }

    fn generator_input(z: &[f32], _: Option<&[u8]>, count: usize) -> Result<Vec<f32>, DeviceError> {
        check_len(z, count, LATENT)?;
        Ok(z.to_vec())
    }

    fn fake(fake: Images<Taped>, _: &[u8]) -> Result<Self::Fake, CpuError> {
        Ok(fake)
    }

    fn own(
        images: DBatch,
        _: &[u8],
        dev: &Cpu,
        grads: Gradients<f32, Cpu>,
    ) -> Result<Self::Own, CpuError> {
        batch_images(images, dev, grads)
    }
}

/// The convolutional GAN with `Z` generator inputs and discriminator `D`: the DCGAN preset
/// (`Dcgan`), and the conditional preset (`cgan::Cgan`).
pub struct ConvGan<const Z: usize, D> {
    nets: Nets<Generator<Z>, D>,
    times: PhaseTimes,
}

/// The unconditional preset.
pub type Dcgan = ConvGan<LATENT, Discriminator>;

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
        let adam = AdamConfig {
            lr,
            betas: BETAS,
            eps: 1e-8,
            weight_decay: None,
        };
        let layout = Layout {
            g: G_INDICES,
            d: D::LAYOUT,
        };
        let mut nets = Nets::new(dev, g, d, layout, adam, Some(D::EMA_DECAY));
        nets.lr_factors = D::LR_FACTORS;
        nets.set_lr(lr);
        ConvGan {
            nets,
            times: PhaseTimes::default(),
        }
    }

    /// One training step, as `Gan::train_step`.
    fn step(&mut self, b: &Batch) -> Result<StepLosses, DeviceError> {
        let (real, batch) = (b.real, b.count);
        check_len(real, batch, IMAGE)?;
        // Fakes are drawn for the labels of the real digits they are shown beside.
        let input = D::generator_input(b.z, D::CONDITIONAL.then_some(b.labels), batch)?;
        let z = self
            .nets
            .dev
            .try_tensor_from_vec(input, (batch, Const::<Z>))?;
        let dev = self.nets.dev.clone();
        let d_step = Apart {
            real: |grads| D::own(DBatch::Real(real), b.labels, &dev, grads),
            fake: |fake: &Images<NoneTape>, grads| {
                D::own(DBatch::Fake(fake), b.labels, &dev, grads)
            },
            real_target: 1.0,
        };
        let fake = |fake| D::fake(fake, b.labels);
        let (losses, times) = bce_step(&mut self.nets, z, d_step, fake)?;
        self.times = times;
        Ok(losses)
    }
}

impl<const Z: usize, D: ConvDiscriminator> Gan for ConvGan<Z, D> {
    super::gan::nets_plumbing!();

    fn preset(&self) -> Preset {
        D::PRESET
    }

    fn latent_dim(&self) -> usize {
        LATENT
    }

    fn is_conditional(&self) -> bool {
        D::CONDITIONAL
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
        let z = self
            .nets
            .dev
            .try_tensor_from_vec(input, (count, Const::<Z>))?;
        let images = kernels::in_pool_untimed(|| self.nets.sampler().try_forward(z))?;
        Ok(ops::read(&images)?)
    }

    fn generate_blended(
        &self,
        z: &[f32],
        (from, to): (u8, u8),
        mix: &[f32],
    ) -> Result<Vec<f32>, DeviceError> {
        if !D::CONDITIONAL {
            return Err(DeviceError(
                "this preset's generator does not take a digit".to_string(),
            ));
        }
        let count = mix.len();
        // The one-hot rows for `from`, then the weight moved over to `to`.
        let mut input = D::generator_input(z, Some(&vec![from; count]), count)?;
        check_labels_pair(from, to)?;
        for (row, &t) in input.chunks_exact_mut(Z).zip(mix) {
            let onehot = &mut row[LATENT..];
            onehot[usize::from(from)] = 1.0 - t;
            onehot[usize::from(to)] += t;
        }
        let z = self
            .nets
            .dev
            .try_tensor_from_vec(input, (count, Const::<Z>))?;
        let images = kernels::in_pool(|| self.nets.sampler().try_forward(z))?;
        Ok(ops::read(&images)?)
    }

    fn state(&self) -> GanState {
        self.nets.state()
    }

    fn load_state(
        &mut self,
        state: &BTreeMap<String, NamedTensor>,
        counters: &BTreeMap<String, u64>,
    ) -> Result<(), StateError> {
        self.nets = self.nets.loaded(state, counters)?;
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

    #[test]
    fn the_conditional_discriminator_learns() {
        // At equal rates: the cgan preset's G, at sixteen times D's rate, catches up within these
        // few steps.
        let mut gan = crate::train::cgan::new(1, 2e-4);
        gan.nets.lr_factors = [1.0, 1.0];
        gan.set_lr(2e-4);
        let losses = testing::train(&mut gan, 12, 32, 1);
        assert!(testing::share_told_apart(&losses, 4) > 0.9, "{losses:?}");
    }

    #[test]
    fn each_network_learns_at_its_share_of_the_rate_asked_for() {
        let mut cgan = crate::train::cgan::new(1, 4e-4);
        assert_eq!(
            (cgan.nets.opt_g.cfg.lr, cgan.nets.opt_d.cfg.lr),
            (16e-4, 1e-4)
        );
        cgan.set_lr(1e-4);
        assert_eq!(
            (cgan.nets.opt_g.cfg.lr, cgan.nets.opt_d.cfg.lr),
            (4e-4, 2.5e-5)
        );
        let dcgan = Dcgan::new(1, 2e-4);
        assert_eq!(
            (dcgan.nets.opt_g.cfg.lr, dcgan.nets.opt_d.cfg.lr),
            (2e-4, 2e-4)
        );
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
