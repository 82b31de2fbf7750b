//! The reference recipe, exactly: G 100 -> 256 -> 512 -> 784 (LeakyReLU 0.2, tanh), D 784 -> 512
//! -> 256 -> 1 logit (LeakyReLU 0.2), BCE with logits, non-saturating G loss, Adam with PyTorch's
//! defaults, trained with plain dfdx autograd.

use std::collections::BTreeMap;

use dfdx::prelude::*;

use super::gan::{self, Batch, DeviceError, Gan, GanState, PhaseTimes, StateError, StepLosses};
use super::layers::LeakyRelu02;
use crate::config::Preset;
use crate::nn::adam::{Adam, pytorch_defaults};
use crate::nn::params::{self, NamedTensor};

pub const LATENT: usize = 100;
pub const IMAGE: usize = 784;

/// The generator as PyTorch's `nn.Sequential` lays it out, so tensor names match (`model.0.weight`).
pub type Generator = (
    Linear<LATENT, 256>,
    LeakyRelu02,
    Linear<256, 512>,
    LeakyRelu02,
    Linear<512, IMAGE>,
    Tanh,
);
pub type Discriminator = (
    Linear<IMAGE, 512>,
    LeakyRelu02,
    Linear<512, 256>,
    LeakyRelu02,
    Linear<256, 1>,
);

type BuiltG = <Generator as BuildOnDevice<Cpu, f32>>::Built;
type BuiltD = <Discriminator as BuildOnDevice<Cpu, f32>>::Built;

/// Parameter name prefixes: the generator's match PyTorch's `model.N.weight`.
pub const G_PREFIX: &str = "model.";
pub const D_PREFIX: &str = "discriminator.model.";
pub const G_OPT_PREFIX: &str = "optimizer.generator.";
pub const D_OPT_PREFIX: &str = "optimizer.discriminator.";
pub const G_STEPS: &str = "optimizer.generator.steps";
pub const D_STEPS: &str = "optimizer.discriminator.steps";
/// Stored in checkpoints; both engines of this recipe hold the same networks.
pub const ARCHITECTURE: &str = "mlp G 100-256-512-784 leaky0.2 tanh; D 784-512-256-1 leaky0.2";

pub struct ReferenceGan {
    dev: Cpu,
    g: BuiltG,
    d: BuiltD,
    g_grads: Gradients<f32, Cpu>,
    d_grads: Gradients<f32, Cpu>,
    opt_g: Adam,
    opt_d: Adam,
    times: PhaseTimes,
}

/// Layer sizes `(in, out)` of the two networks.
pub const G_LAYERS: [(usize, usize); 3] = [(LATENT, 256), (256, 512), (512, IMAGE)];
pub const D_LAYERS: [(usize, usize); 3] = [(IMAGE, 512), (512, 256), (256, 1)];

/// FLOPs of one matrix product per layer over `rows` rows, for the layers in `layers`: the
/// forward pass, a weight gradient and an input gradient each cost this much.
pub fn product_flops(layers: &[(usize, usize)], rows: usize) -> f64 {
    layers
        .iter()
        .map(|&(i, o)| 2.0 * (rows * i * o) as f64)
        .sum()
}

/// Mean of sigmoid over logits, in f64 for a stable sum.
fn mean_probability(logits: &[f32]) -> f32 {
    if logits.is_empty() {
        return f32::NAN;
    }
    let sum: f64 = logits
        .iter()
        .map(|&l| 1.0 / (1.0 + (-(l as f64)).exp()))
        .sum();
    (sum / logits.len() as f64) as f32
}

impl ReferenceGan {
    pub fn new(seed: u64, lr: f64) -> Self {
        let dev = Cpu::seed_from_u64(seed);
        // PyTorch builds G before D; so do we, so both draw from one seeded stream in that order.
        let g = dev.build_module::<Generator, f32>();
        let d = dev.build_module::<Discriminator, f32>();
        let g_grads = g.alloc_grads();
        let d_grads = d.alloc_grads();
        ReferenceGan {
            dev,
            g,
            d,
            g_grads,
            d_grads,
            opt_g: Adam::new(pytorch_defaults(lr), G_PREFIX),
            opt_d: Adam::new(pytorch_defaults(lr), D_PREFIX),
            times: PhaseTimes::default(),
        }
    }

    fn batch_tensor<const N: usize>(
        &self,
        data: &[f32],
        batch: usize,
    ) -> Result<Tensor<(usize, Const<N>), f32, Cpu>, DeviceError> {
        if data.len() != batch * N {
            return Err(DeviceError(format!(
                "expected {batch} x {N} values, got {}",
                data.len()
            )));
        }
        Ok(self
            .dev
            .try_tensor_from_vec(data.to_vec(), (batch, Const::<N>))?)
    }
}

impl Gan for ReferenceGan {
    fn preset(&self) -> Preset {
        Preset::Reference
    }

    fn architecture(&self) -> String {
        ARCHITECTURE.to_string()
    }

    fn latent_dim(&self) -> usize {
        LATENT
    }

    fn train_step(&mut self, b: &Batch) -> Result<StepLosses, DeviceError> {
        let start = std::time::Instant::now();
        let batch = b.count;
        let real = self.batch_tensor::<IMAGE>(b.real, batch)?;
        let z = self.batch_tensor::<LATENT>(b.z, batch)?;
        let ones = self.dev.try_ones_like(&(batch, Const::<1>))?;
        let zeros = self.dev.try_zeros_like(&(batch, Const::<1>))?;

        // G(z) once, on G's tape; the D step sees it detached, the G step with the tape.
        let g_grads = std::mem::replace(&mut self.g_grads, Gradients::leaky());
        let fake = self.g.try_forward(z.traced(g_grads))?;
        let (fake, g_tape) = fake.split_tape();

        // D step: BCE(D(x), 1) + BCE(D(G(z)), 0), gradients summed over both terms.
        let d_grads = std::mem::replace(&mut self.d_grads, Gradients::leaky());
        let real_logits = self.d.try_forward(real.traced(d_grads))?;
        let d_real = mean_probability(&real_logits.as_vec());
        let real_loss = binary_cross_entropy_with_logits_loss(real_logits, ones.clone());
        let real_loss_value = real_loss.array();
        let d_grads = real_loss.backward();
        let fake_logits = self.d.try_forward(fake.clone().traced(d_grads))?;
        let d_fake = mean_probability(&fake_logits.as_vec());
        let fake_loss = binary_cross_entropy_with_logits_loss(fake_logits, zeros);
        let fake_loss_value = fake_loss.array();
        self.d_grads = fake_loss.backward();
        self.opt_d.update_and_zero(&mut self.d, &mut self.d_grads)?;
        let d_done = std::time::Instant::now();

        // G step: BCE(D(G(z)), 1) through the updated D, as PyTorch's loop does.
        let logits = self.d.try_forward(fake.put_tape(g_tape))?;
        let g_loss = binary_cross_entropy_with_logits_loss(logits, ones);
        let g_loss_value = g_loss.array();
        self.g_grads = g_loss.backward();
        self.opt_g.update_and_zero(&mut self.g, &mut self.g_grads)?;
        self.times = PhaseTimes {
            d: d_done - start,
            g: d_done.elapsed(),
        };

        Ok(StepLosses {
            d_loss: real_loss_value + fake_loss_value,
            g_loss: g_loss_value,
            d_real,
            d_fake,
        })
    }

    fn phase_times(&self) -> PhaseTimes {
        self.times
    }

    fn step_flops(&self, b: usize) -> f64 {
        let (g, d) = (&G_LAYERS[..], &D_LAYERS[..]);
        // dfdx traces every input it starts a tape from, so it also computes the input
        // gradients of the first layers, and D's weight gradients in the G step.
        let d_step = 2.0 * (3.0 * product_flops(d, b));
        let g_step = 3.0 * product_flops(d, b) + 2.0 * product_flops(g, b);
        product_flops(g, b) + d_step + g_step
    }

    fn generate(
        &self,
        z: &[f32],
        _labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError> {
        let z = self.batch_tensor::<LATENT>(z, count)?;
        Ok(self.g.try_forward(z)?.as_vec())
    }

    fn set_lr(&mut self, lr: f64) {
        self.opt_g.cfg.lr = lr;
        self.opt_d.cfg.lr = lr;
    }

    fn state(&self) -> GanState {
        let g = params::export(&self.g, G_PREFIX);
        let d = params::export(&self.d, D_PREFIX);
        let mut tensors = self.opt_g.export(G_OPT_PREFIX, &g);
        tensors.extend(self.opt_d.export(D_OPT_PREFIX, &d));
        tensors.splice(0..0, g.into_iter().chain(d));
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
        let (g_steps, d_steps) = (
            gan::counter(counters, G_STEPS)?,
            gan::counter(counters, D_STEPS)?,
        );
        // Check and stage everything on copies, then swap in, so a bad state changes nothing.
        let mut g = self.g.clone();
        let mut d = self.d.clone();
        params::import(&mut g, G_PREFIX, state)?;
        params::import(&mut d, D_PREFIX, state)?;
        let g_params = params::export(&g, G_PREFIX);
        let d_params = params::export(&d, D_PREFIX);
        let mut opt_g = self.opt_g.clone();
        let mut opt_d = self.opt_d.clone();
        opt_g.import(G_OPT_PREFIX, &g_params, state, g_steps)?;
        opt_d.import(D_OPT_PREFIX, &d_params, state, d_steps)?;
        self.g_grads = g.alloc_grads();
        self.d_grads = d.alloc_grads();
        (self.g, self.d, self.opt_g, self.opt_d) = (g, d, opt_g, opt_d);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{self, Split};
    use crate::train::noise::{NoiseKind, NoiseStream};

    /// Runs `steps` steps of batch 64 over the first 256 real training digits.
    fn train(gan: &mut ReferenceGan, steps: usize, seed: u64) -> Vec<StepLosses> {
        let set = data::load(None, Split::Train).unwrap().take(256);
        let order = data::epoch_order(set.len(), seed, 1);
        let mut noise = NoiseStream::new(seed, NoiseKind::Train);
        let (mut real, mut z) = (Vec::new(), Vec::new());
        (0..steps)
            .map(|i| {
                let idx = data::batch_indices(&order, 64, (i % 4) as u64).unwrap();
                data::fill_batch(&set, idx, &mut real).unwrap();
                noise.fill(&mut z, idx.len() * LATENT);
                let labels = vec![0u8; idx.len()];
                let batch = Batch {
                    real: &real,
                    labels: &labels,
                    z: &z,
                    count: idx.len(),
                };
                gan.train_step(&batch).unwrap()
            })
            .collect()
    }

    #[test]
    fn losses_start_near_chance_and_move() {
        let mut gan = ReferenceGan::new(1, 2e-4);
        let losses = train(&mut gan, 24, 1);
        let first = losses[0];
        // An untrained D says ~0.5 to everything: BCE ln 2 per term.
        assert!(
            (first.d_loss - 2.0 * std::f32::consts::LN_2).abs() < 0.1,
            "{first:?}"
        );
        assert!((first.d_real - 0.5).abs() < 0.05 && (first.d_fake - 0.5).abs() < 0.05);
        let last = losses[losses.len() - 1];
        assert!(losses.iter().all(StepLosses::all_finite));
        // D quickly learns to tell real from fake: its loss falls, G's rises.
        assert!(last.d_loss < first.d_loss - 0.2, "{first:?} -> {last:?}");
        assert!(last.g_loss > first.g_loss + 0.03, "{first:?} -> {last:?}");
        assert!(last.d_real > last.d_fake);
    }

    #[test]
    fn the_same_seed_gives_the_same_losses() {
        let a = train(&mut ReferenceGan::new(3, 2e-4), 5, 3);
        let b = train(&mut ReferenceGan::new(3, 2e-4), 5, 3);
        let c = train(&mut ReferenceGan::new(4, 2e-4), 5, 4);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn leaky_slope_is_the_reference_one() {
        // A network built from the type must use slope 0.2 (dfdx's default would be 0.05).
        let gan = ReferenceGan::new(1, 2e-4);
        let z = vec![0.0f32; LATENT];
        let out = gan.generate(&z, None, 1).unwrap();
        assert_eq!(out.len(), IMAGE);
        assert!(out.iter().all(|v| (-1.0..=1.0).contains(v)));
    }

    #[test]
    fn a_restored_state_continues_identically() {
        let mut a = ReferenceGan::new(5, 2e-4);
        train(&mut a, 3, 5);
        let state = a.state();
        let map: BTreeMap<String, NamedTensor> = state
            .tensors
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect();
        let mut b = ReferenceGan::new(99, 2e-4);
        b.load_state(&map, &state.counters).unwrap();
        let z = NoiseStream::new(1, NoiseKind::Samples).draw(4 * LATENT);
        assert_eq!(
            a.generate(&z, None, 4).unwrap(),
            b.generate(&z, None, 4).unwrap()
        );
        assert_eq!(train(&mut a, 3, 6), train(&mut b, 3, 6));
        assert_eq!(a.state(), b.state());
    }

    #[test]
    fn generator_tensors_have_pytorch_names_and_shapes() {
        let state = ReferenceGan::new(1, 2e-4).state();
        let g: Vec<(&str, &[usize])> = state
            .tensors
            .iter()
            .filter(|t| t.name.starts_with("model."))
            .map(|t| (t.name.as_str(), t.shape.as_slice()))
            .collect();
        assert_eq!(
            g,
            [
                ("model.0.weight", &[256, 100][..]),
                ("model.0.bias", &[256][..]),
                ("model.2.weight", &[512, 256][..]),
                ("model.2.bias", &[512][..]),
                ("model.4.weight", &[784, 512][..]),
                ("model.4.bias", &[784][..]),
            ]
        );
    }
}
