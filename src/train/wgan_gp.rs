//! The WGAN-GP preset (Gulrajani et al. 2017): the reference's generator against an MLP critic
//! (784-512-256-1, LeakyReLU 0.2, no sigmoid) trained on the Wasserstein loss with a gradient
//! penalty, five critic updates per generator update, Adam (0.5, 0.9).
//!
//! The penalty is exact (`nn::penalty`: for a LeakyReLU MLP the critic's input gradient is an
//! ordinary forward graph of its weights and slopes, so no gradient of a gradient is needed). The
//! interpolation weights come from the run's `Penalty` noise stream, saved with the state.
//!
//! Each `train_step` is one critic update on its batch; every fifth also updates the generator
//! with that batch's noise. The step's `d_loss` is the critic's loss with the penalty, `g_loss`
//! is `-mean f(G(z))`, and `d_real`/`d_fake` are the mean sigmoid of the critic's values, for
//! display only (a critic's values are not probabilities).

use std::collections::BTreeMap;
use std::time::Instant;

use dfdx::prelude::*;

use super::bce_step::real_then_fake;
use super::gan::{
    Batch, DeviceError, Gan, GanState, IMAGE, LATENT, PhaseTimes, Preset, StateError, StepLosses,
    check_len,
};
use super::nets::{Layout, Nets};
use super::noise::{NoiseKind, NoiseStream};
use super::reference::{Generator, product_flops};
use crate::nn::adam::pytorch_defaults;
use crate::nn::frozen::{Constant, Freeze};
use crate::nn::loss::mean_sigmoid;
use crate::nn::ops;
use crate::nn::params::NamedTensor;
use crate::nn::penalty::{MlpCritic, gradient_penalty};

/// The penalty's weight.
pub const LAMBDA: f32 = 10.0;
/// Critic updates per generator update.
pub const N_CRITIC: u64 = 5;
pub const BETAS: [f64; 2] = [0.5, 0.9];
/// The checkpoint counter prefix of the interpolation stream's position.
const PENALTY_STREAM: &str = "rng.penalty";

/// The reference's discriminator without its sigmoid reading: one value per image.
pub type Critic = MlpCritic<IMAGE, 512, 256>;

/// Both networks' dense layers at PyTorch's `nn.Sequential` indices.
pub const LAYOUT: Layout = Layout {
    g: &["0", "2", "4"],
    d: &["0", "2", "4"],
};

pub struct WganGp {
    nets: Nets<Generator, Critic>,
    penalty_noise: NoiseStream,
    times: PhaseTimes,
}

fn mean(v: &[f32]) -> f32 {
    (v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64) as f32
}

impl WganGp {
    pub fn new(seed: u64, lr: f64) -> Self {
        let dev = Cpu::seed_from_u64(seed);
        let g = dev.build_module::<Generator, f32>();
        let critic = dev.build_module::<Critic, f32>();
        let cfg = AdamConfig {
            betas: BETAS,
            ..pytorch_defaults(lr)
        };
        WganGp {
            nets: Nets::new(dev, g, critic, LAYOUT, cfg, None),
            penalty_noise: NoiseStream::new(seed, NoiseKind::Penalty),
            times: PhaseTimes::default(),
        }
    }

    /// One training step, as `Gan::train_step`.
    fn step(&mut self, b: &Batch) -> Result<StepLosses, DeviceError> {
        let (real, batch) = (b.real, b.count);
        check_len(real, batch, IMAGE)?;
        check_len(b.z, batch, LATENT)?;
        let start = Instant::now();
        let nets = &mut self.nets;
        let z = nets
            .dev
            .try_tensor_from_vec(b.z.to_vec(), (batch, Const::<LATENT>))?;
        // G's tape is kept only when this step also updates G.
        let g_turn = (nets.opt_d.steps() + 1).is_multiple_of(N_CRITIC);
        let (fake, g_tape) = if g_turn {
            let g_grads = std::mem::replace(&mut nets.g_grads, Gradients::leaky());
            let (fake, tape) = nets
                .g
                .try_forward(Constant(z.traced(g_grads)))?
                .split_tape();
            (fake, Some(tape))
        } else {
            (nets.g.try_forward(z)?, None)
        };

        // Critic step: mean f(fake) - mean f(real) on real and fake rows together...
        let d_grads = std::mem::replace(&mut nets.d_grads, Gradients::leaky());
        let values = nets.d.try_forward(real_then_fake(real, &fake, d_grads)?)?;
        let (values, tape) = values.split_tape();
        let read = ops::read(&values)?;
        let (real_values, fake_values) = read.split_at(batch);
        let (mean_real, mean_fake) = (mean(real_values), mean(fake_values));
        let (d_real, d_fake) = (mean_sigmoid(real_values), mean_sigmoid(fake_values));
        let scale = 1.0 / batch as f32;
        let mut signs = vec![-scale; batch];
        signs.resize(2 * batch, scale);
        let signs = nets
            .dev
            .try_tensor_from_vec(signs, (2 * batch, Const::<1>))?;
        let wasserstein = values
            .put_tape(tape)
            .try_mul(signs)?
            .try_sum::<Rank0, _>()?;
        let grads = wasserstein.backward();
        // ... plus the penalty at points between each real digit and its fake.
        let mut eps = Vec::new();
        self.penalty_noise.fill_uniform(&mut eps, batch);
        let fake_values = ops::read(&fake)?;
        let mut x_hat = Vec::with_capacity(batch * IMAGE);
        for ((r, f), &e) in real
            .chunks_exact(IMAGE)
            .zip(fake_values.chunks_exact(IMAGE))
            .zip(&eps)
        {
            x_hat.extend(r.iter().zip(f).map(|(r, f)| e * r + (1.0 - e) * f));
        }
        let x_hat = nets
            .dev
            .try_tensor_from_vec(x_hat, (batch, Const::<IMAGE>))?;
        let gp = gradient_penalty(&nets.d, x_hat.traced(grads), LAMBDA)?;
        let gp_value: f32 = gp.array();
        nets.d_grads = gp.backward();
        nets.opt_d.update_and_zero(&mut nets.d, &mut nets.d_grads)?;
        let d_done = Instant::now();

        // Generator step every N_CRITIC critic steps: minimise -mean f(G(z)) through the
        // updated critic, frozen.
        let g_loss = match g_tape {
            Some(tape) => {
                let values = nets.d.frozen().try_forward(fake.put_tape(tape))?;
                let loss = values.try_mean::<Rank0, _>()?.try_negate()?;
                let g_loss: f32 = loss.array();
                nets.g_grads = loss.backward();
                nets.opt_g.update_and_zero(&mut nets.g, &mut nets.g_grads)?;
                g_loss
            }
            None => -mean_fake,
        };

        self.times = PhaseTimes {
            d: d_done - start,
            g: d_done.elapsed(),
        };
        Ok(StepLosses {
            d_loss: mean_fake - mean_real + gp_value,
            g_loss,
            d_real,
            d_fake,
        })
    }
}

/// Layer sizes `(in, out)` of the two networks.
const G_LAYERS: [(usize, usize); 3] = [(LATENT, 256), (256, 512), (512, IMAGE)];
const C_LAYERS: [(usize, usize); 3] = [(IMAGE, 512), (512, 256), (256, 1)];

impl Gan for WganGp {
    super::gan::nets_plumbing!();

    fn preset(&self) -> Preset {
        Preset::WganGp
    }

    fn latent_dim(&self) -> usize {
        LATENT
    }

    fn step_flops(&self, b: usize) -> f64 {
        let (g, c) = (&G_LAYERS[..], &C_LAYERS[..]);
        // Critic on 2b rows: forward, weight gradients, input gradients but the first layer's.
        let critic = 2.0 * product_flops(c, 2 * b) + product_flops(&c[1..], 2 * b);
        // Penalty on b rows: a forward pass of the first two layers, the two input-gradient
        // products, and two products each for the weight gradients of layers 1 and 2.
        let pen = 3.0 * product_flops(&c[..2], b) + 2.0 * product_flops(&c[..2], b);
        // The generator step, every N_CRITIC steps.
        let g_step = 2.0 * product_flops(c, b) + product_flops(g, b) + product_flops(&g[1..], b);
        product_flops(g, b) + critic + pen + g_step / N_CRITIC as f64
    }

    fn generate(
        &self,
        z: &[f32],
        _labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError> {
        check_len(z, count, LATENT)?;
        let z = self
            .nets
            .dev
            .try_tensor_from_vec(z.to_vec(), (count, Const::<LATENT>))?;
        Ok(ops::read(&self.nets.g.try_forward(z)?)?)
    }

    fn state(&self) -> GanState {
        let mut state = self.nets.state();
        state
            .counters
            .extend(self.penalty_noise.counters(PENALTY_STREAM));
        state
    }

    fn load_state(
        &mut self,
        state: &BTreeMap<String, NamedTensor>,
        counters: &BTreeMap<String, u64>,
    ) -> Result<(), StateError> {
        let noise = NoiseStream::from_counters(counters, PENALTY_STREAM, NoiseKind::Penalty)
            .map_err(StateError::MissingCounter)?;
        self.nets = self.nets.loaded(state, counters)?;
        self.penalty_noise = noise;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::testing;

    #[test]
    fn critic_separates_real_from_fake_and_generator_steps_every_fifth() {
        let mut gan = WganGp::new(1, 1e-4);
        let losses = testing::train(&mut gan, 20, 32, 1);
        assert!(testing::share_told_apart(&losses, 5) > 0.9, "{losses:?}");
        let c = gan.state().counters;
        assert_eq!(c["optimizer.discriminator.steps"], 20);
        assert_eq!(c["optimizer.generator.steps"], 4);
        assert_eq!(c["rng.penalty.pos_lo"], 20 * 32);
        // The Wasserstein estimate mean f(real) - mean f(fake) grows as the critic learns.
        let first = losses[0].d_loss;
        let last = losses[losses.len() - 1].d_loss;
        assert!(last < first - 0.5, "{first} -> {last}");
    }

    #[test]
    fn a_restored_state_continues_identically() {
        testing::assert_resumes_identically(
            Box::new(WganGp::new(5, 1e-4)),
            Box::new(WganGp::new(99, 1e-4)),
            3,
            32,
        );
    }

    #[test]
    fn a_damaged_state_changes_nothing() {
        testing::assert_damaged_states_change_nothing(Box::new(WganGp::new(2, 1e-4)));
    }
}
