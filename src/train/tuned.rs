//! The tuned MLP preset: the reference's layer sizes (G 100-256-512-784, D 784-512-256-1,
//! LeakyReLU 0.2) trained the way the GAN literature recommends for this size: batch norm before
//! G's hidden activations (Radford et al. 2016), Adam with beta1 0.5 (ibid.), one-sided label
//! smoothing of the real targets to 0.9 (Salimans et al. 2016), dropout 0.3 after D's hidden
//! layers in both of D's passes of a step, and samples drawn from a running average of G's
//! weights (Yazici et al. 2019). Measured on 2,000 digits after 10 epochs, batch norm in G took
//! the judge's Fréchet distance from 636 to 237 and its score from 5.5 to 6.6.
//!
//! Dropout masks come from the run's `Dropout` noise stream, whose position is saved with the
//! state, so a resumed run draws the same masks.

use std::collections::BTreeMap;
use std::time::Instant;

use dfdx::prelude::*;

use super::dense::Linear;
use super::gan::{
    Batch, DeviceError, Gan, GanState, GradNorms, IMAGE, LATENT, PhaseTimes, Preset, StateError,
    StepLosses, check_len,
};
use super::mlp::{self, Dropout, Mlp, Norms, Output};
use super::noise::{NoiseKind, NoiseStream};
use super::norm::BatchNorm;
use super::param::{self, EMA_DECAY, Optim, Pair};
use crate::nn::kernels;
use crate::nn::loss::mean_sigmoid;
use crate::nn::params::NamedTensor;

/// The target D is taught for real digits (one-sided label smoothing).
pub const REAL_TARGET: f32 = 0.9;
/// The share of D's hidden units dropped in each pass.
pub const DROPOUT: f32 = 0.3;
pub const BETAS: [f64; 2] = [0.5, 0.999];
/// The checkpoint counter prefix of the dropout stream's position.
const DROPOUT_STREAM: &str = "rng.dropout";

pub type Generator = Mlp<LATENT, 256, 512, IMAGE>;
pub type Discriminator = Mlp<IMAGE, 512, 256, 1>;

/// Working memory kept between steps.
#[derive(Default)]
struct Buffers {
    g: mlp::Acts,
    d: mlp::Acts,
    grads: mlp::Grads,
    both: Vec<f32>,
    dlogits: Vec<f32>,
    dfake: Vec<f32>,
}

pub struct Tuned {
    nets: Pair<Generator, Discriminator>,
    dropout: NoiseStream,
    buf: Buffers,
    times: PhaseTimes,
    /// Whether `grad_norms` reports the gradients (each step leaves them in the parameters).
    measuring: bool,
}

/// The reference's generator and discriminator layer types, initialised as dfdx initialises
/// them from `dev` (G first); `d_names` are D's `nn.Sequential` indices.
pub(crate) fn reference_nets(dev: &Cpu, d_names: [&'static str; 3]) -> (Generator, Discriminator) {
    let g = Mlp {
        l1: Linear::dfdx_init(dev),
        l2: Linear::dfdx_init(dev),
        l3: Linear::dfdx_init(dev),
        names: ["0", "2", "4"],
        output: Output::Tanh,
        norms: None,
    };
    let d = Mlp {
        l1: Linear::dfdx_init(dev),
        l2: Linear::dfdx_init(dev),
        l3: Linear::dfdx_init(dev),
        names: d_names,
        output: Output::Linear,
        norms: None,
    };
    (g, d)
}

impl Tuned {
    pub fn new(seed: u64, lr: f64) -> Self {
        let dev = Cpu::seed_from_u64(seed);
        let (mut g, d) = reference_nets(&dev, ["0", "3", "6"]);
        g.names = ["0", "3", "6"];
        g.norms = Some(Norms {
            bn1: BatchNorm::new(),
            bn2: BatchNorm::new(),
            names: ["1", "4"],
        });
        Tuned {
            nets: Pair {
                ema: Some((g.clone(), EMA_DECAY)),
                g,
                d,
                opt_g: Optim::new(lr, BETAS),
                opt_d: Optim::new(lr, BETAS),
            },
            dropout: NoiseStream::new(seed, NoiseKind::Dropout),
            buf: Buffers::default(),
            times: PhaseTimes::default(),
            measuring: false,
        }
    }
}

impl Tuned {
    /// One training step, as `Gan::train_step`.
    fn step(&mut self, b: &Batch) -> Result<StepLosses, DeviceError> {
        let (real, z, batch) = (b.real, b.z, b.count);
        check_len(real, batch, IMAGE)?;
        check_len(z, batch, LATENT)?;
        let start = Instant::now();
        let mut buf = std::mem::take(&mut self.buf);
        let Pair {
            g, d, opt_g, opt_d, ..
        } = &mut self.nets;
        let scale = 1.0 / batch as f32;

        g.forward_train(z, &mut buf.g, batch, None);

        // D step on real and fake rows together, with dropout.
        buf.both.clear();
        buf.both.extend_from_slice(real);
        buf.both.extend_from_slice(&buf.g.out);
        let drop = Dropout {
            rate: DROPOUT,
            stream: &mut self.dropout,
        };
        d.forward(&buf.both, &mut buf.d, 2 * batch, Some(drop));
        buf.dlogits.resize(2 * batch, 0.0);
        let (real_logits, fake_logits) = buf.d.out.split_at(batch);
        let (dreal, dfake) = buf.dlogits.split_at_mut(batch);
        let d_real = mean_sigmoid(real_logits);
        let d_fake = mean_sigmoid(fake_logits);
        let real_loss = kernels::bce_with_logits(real_logits, REAL_TARGET, dreal, scale);
        let fake_loss = kernels::bce_with_logits(fake_logits, 0.0, dfake, scale);
        d.backward(
            &buf.both,
            &buf.d,
            &mut buf.dlogits,
            &mut buf.grads,
            2 * batch,
            true,
            false,
            None,
        );
        opt_d.step(d);
        let d_done = Instant::now();

        // G step through the updated D, still in training mode (fresh dropout masks).
        let drop = Dropout {
            rate: DROPOUT,
            stream: &mut self.dropout,
        };
        d.forward(&buf.g.out, &mut buf.d, batch, Some(drop));
        buf.dlogits.resize(batch, 0.0);
        let g_loss = kernels::bce_with_logits(&buf.d.out, 1.0, &mut buf.dlogits, scale);
        d.backward(
            &buf.g.out,
            &buf.d,
            &mut buf.dlogits,
            &mut buf.grads,
            batch,
            false,
            false,
            Some(&mut buf.dfake),
        );
        g.backward(
            z,
            &buf.g,
            &mut buf.dfake,
            &mut buf.grads,
            batch,
            true,
            false,
            None,
        );
        opt_g.step(g);
        self.nets.update_average();

        self.buf = buf;
        self.times = PhaseTimes {
            d: d_done - start,
            g: d_done.elapsed(),
        };
        Ok(StepLosses {
            d_loss: real_loss + fake_loss,
            g_loss,
            d_real,
            d_fake,
        })
    }
}

impl Gan for Tuned {
    fn preset(&self) -> Preset {
        Preset::Tuned
    }

    fn latent_dim(&self) -> usize {
        LATENT
    }

    fn train_step(&mut self, b: &Batch) -> Result<StepLosses, DeviceError> {
        kernels::in_pool(|| self.step(b))
    }

    fn phase_times(&self) -> PhaseTimes {
        self.times
    }

    fn measure_grad_norms(&mut self, on: bool) {
        self.measuring = on;
    }

    /// D's gradients stay from its own step: G's step computes only D's input gradients.
    fn grad_norms(&self) -> GradNorms {
        let stepped = self.measuring && self.nets.opt_g.steps() > 0;
        GradNorms {
            g: stepped.then(|| param::grad_norm(&self.nets.g)),
            d: stepped.then(|| param::grad_norm(&self.nets.d)),
        }
    }

    fn step_flops(&self, b: usize) -> f64 {
        let g = Generator::product_flops(b);
        let d2 = Discriminator::product_flops(2 * b);
        let d_step = 3.0 * d2 - Discriminator::first_layer_flops(2 * b);
        let g_step =
            2.0 * Discriminator::product_flops(b) + 2.0 * g - Generator::first_layer_flops(b);
        g + d_step + g_step
    }

    fn generate(
        &self,
        z: &[f32],
        _labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError> {
        check_len(z, count, LATENT)?;
        let mut acts = mlp::Acts::default();
        self.nets.sampler().forward(z, &mut acts, count, None);
        Ok(acts.out)
    }

    fn set_lr(&mut self, lr: f64) {
        self.nets.set_lr(lr);
    }

    fn state(&self) -> GanState {
        let mut state = self.nets.state();
        state.counters.extend(self.dropout.counters(DROPOUT_STREAM));
        state
    }

    fn load_state(
        &mut self,
        state: &BTreeMap<String, NamedTensor>,
        counters: &BTreeMap<String, u64>,
    ) -> Result<(), StateError> {
        let dropout = NoiseStream::from_counters(counters, DROPOUT_STREAM, NoiseKind::Dropout)
            .map_err(StateError::MissingCounter)?;
        self.nets = self.nets.loaded(state, counters)?;
        self.dropout = dropout;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::testing::{self, share_told_apart};

    #[test]
    fn discriminator_learns_and_losses_start_near_chance() {
        let mut gan = Tuned::new(1, 2e-4);
        let losses = testing::train(&mut gan, 30, 32, 1);
        // An untrained D says ~0.5 to everything: ln 2 per term, also against the 0.9 target.
        let first = losses[0];
        assert!(
            (first.d_loss - 2.0 * std::f32::consts::LN_2).abs() < 0.1,
            "{first:?}"
        );
        assert!(share_told_apart(&losses, 10) > 0.9, "{losses:?}");
        let last = losses[losses.len() - 1];
        assert!(last.d_loss < first.d_loss - 0.2, "{first:?} -> {last:?}");
    }

    #[test]
    fn the_same_seed_repeats_the_run_and_dropout_draws_from_its_stream() {
        let a = testing::train(&mut Tuned::new(3, 2e-4), 4, 32, 3);
        let b = testing::train(&mut Tuned::new(3, 2e-4), 4, 32, 3);
        assert_eq!(a, b);
        let mut gan = Tuned::new(3, 2e-4);
        testing::train(&mut gan, 2, 32, 3);
        let c = gan.state().counters;
        // Per step: masks for 2 x 32 rows in the D step, 32 rows in the G step, 512 + 256 units.
        assert_eq!(c["rng.dropout.pos_lo"], 2 * (64 + 32) * (512 + 256));
        assert_eq!(c["rng.dropout.seed"], 3);
    }

    #[test]
    fn a_restored_state_continues_identically() {
        testing::assert_resumes_identically(
            Box::new(Tuned::new(5, 2e-4)),
            Box::new(Tuned::new(99, 2e-4)),
            3,
            32,
        );
    }

    #[test]
    fn a_damaged_state_changes_nothing() {
        testing::assert_damaged_states_change_nothing(Box::new(Tuned::new(2, 2e-4)));
    }

    #[test]
    fn dropout_and_batch_norm_shift_the_tensor_names() {
        let names: Vec<(String, Vec<usize>)> = Tuned::new(1, 2e-4)
            .state()
            .tensors
            .into_iter()
            .filter(|t| t.name.starts_with("discriminator.model.") && t.name.ends_with("weight"))
            .map(|t| (t.name, t.shape))
            .collect();
        assert_eq!(
            names,
            [
                ("discriminator.model.0.weight".to_string(), vec![512, 784]),
                ("discriminator.model.3.weight".to_string(), vec![256, 512]),
                ("discriminator.model.6.weight".to_string(), vec![1, 256]),
            ]
        );
        let g: Vec<String> = Tuned::new(1, 2e-4)
            .state()
            .tensors
            .into_iter()
            .filter(|t| t.name.starts_with("model."))
            .map(|t| t.name)
            .collect();
        assert_eq!(
            g[2..6],
            [
                "model.1.weight",
                "model.1.bias",
                "model.1.running_mean",
                "model.1.running_var"
            ]
        );
        assert_eq!(g[6], "model.3.weight");
    }
}
