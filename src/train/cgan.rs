//! The conditional preset (Mirza and Osindero 2014): G takes a noise vector and a digit, D an
//! image and a digit, each digit as a one-hot vector joined to the input; D learns to reject
//! fakes and real digits shown with the wrong label alike, so G learns to draw the digit it is
//! asked for. The networks are the tuned MLPs' with the ten extra inputs, trained the tuned way
//! (Adam beta1 0.5, real targets 0.9, dropout 0.3 in D).
//!
//! Fakes are drawn for the labels of the real batch they are shown beside. Without labels
//! (`generate(z, None, n)`), digit `i` of the `n` asked for is `i mod 10`, so a sample grid or a
//! scoring run sees every digit equally often.

use std::collections::BTreeMap;
use std::time::Instant;

use dfdx::prelude::*;

use super::dense::Linear;
use super::evaluate::requested_label;
use super::fast::kernels;
use super::gan::{Batch, DeviceError, Gan, GanState, PhaseTimes, StateError, StepLosses};
use super::mlp::{self, Dropout, Mlp, Output};
use super::noise::{NoiseKind, NoiseStream};
use super::param::{Optim, Pair};
use super::params::NamedTensor;
use super::reference::{IMAGE, LATENT};
use super::tuned::{BETAS, DROPOUT, REAL_TARGET, check_len, mean_sigmoid};
use crate::config::Preset;

/// Digit classes, one-hot.
pub const CLASSES: usize = 10;
const G_IN: usize = LATENT + CLASSES;
const D_IN: usize = IMAGE + CLASSES;
const DROPOUT_STREAM: &str = "rng.dropout";

pub const ARCHITECTURE: &str = "conditional mlp G 100+10-256-512-784 leaky0.2 tanh; \
     D 784+10-512-256-1 leaky0.2 dropout0.3; one-hot labels joined to the inputs";

pub type Generator = Mlp<G_IN, 256, 512, IMAGE>;
pub type Discriminator = Mlp<D_IN, 512, 256, 1>;

/// Rows of `width` values from `data`, each followed by the one-hot vector of its label.
fn join_one_hot(data: &[f32], width: usize, labels: &[u8], out: &mut Vec<f32>) {
    out.clear();
    for (row, &label) in data.chunks_exact(width).zip(labels) {
        out.extend_from_slice(row);
        let at = out.len();
        out.resize(at + CLASSES, 0.0);
        out[at + usize::from(label)] = 1.0;
    }
}

/// Checks that `labels` holds `count` digits 0-9.
fn check_labels(labels: &[u8], count: usize) -> Result<(), DeviceError> {
    if labels.len() != count {
        return Err(DeviceError(format!(
            "expected {count} labels, got {}",
            labels.len()
        )));
    }
    match labels.iter().find(|&&l| usize::from(l) >= CLASSES) {
        Some(l) => Err(DeviceError(format!("label {l} is not a digit 0-9"))),
        None => Ok(()),
    }
}

/// Working memory kept between steps.
#[derive(Default)]
struct Buffers {
    g_in: Vec<f32>,
    g: mlp::Acts,
    d: mlp::Acts,
    grads: mlp::Grads,
    /// Real rows then fake rows, each with its label.
    both: Vec<f32>,
    fake_in: Vec<f32>,
    labels2: Vec<u8>,
    dlogits: Vec<f32>,
    dfake_in: Vec<f32>,
    dfake: Vec<f32>,
}

pub struct Cgan {
    nets: Pair<Generator, Discriminator>,
    dropout: NoiseStream,
    buf: Buffers,
    times: PhaseTimes,
}

impl Cgan {
    pub fn new(seed: u64, lr: f64) -> Self {
        let dev = Cpu::seed_from_u64(seed);
        let g = Mlp {
            l1: Linear::dfdx_init(&dev),
            l2: Linear::dfdx_init(&dev),
            l3: Linear::dfdx_init(&dev),
            names: ["0", "2", "4"],
            output: Output::Tanh,
        };
        let d = Mlp {
            l1: Linear::dfdx_init(&dev),
            l2: Linear::dfdx_init(&dev),
            l3: Linear::dfdx_init(&dev),
            names: ["0", "3", "6"],
            output: Output::Linear,
        };
        Cgan {
            nets: Pair {
                g,
                d,
                opt_g: Optim::new(lr, BETAS),
                opt_d: Optim::new(lr, BETAS),
            },
            dropout: NoiseStream::new(seed, NoiseKind::Dropout),
            buf: Buffers::default(),
            times: PhaseTimes::default(),
        }
    }
}

impl Gan for Cgan {
    fn preset(&self) -> Preset {
        Preset::Cgan
    }

    fn architecture(&self) -> String {
        ARCHITECTURE.to_string()
    }

    fn latent_dim(&self) -> usize {
        LATENT
    }

    fn is_conditional(&self) -> bool {
        true
    }

    fn train_step(&mut self, b: &Batch) -> Result<StepLosses, DeviceError> {
        let (real, z, batch) = (b.real, b.z, b.count);
        check_len(real, batch, IMAGE)?;
        check_len(z, batch, LATENT)?;
        check_labels(b.labels, batch)?;
        let start = Instant::now();
        let mut buf = std::mem::take(&mut self.buf);
        let Pair { g, d, opt_g, opt_d } = &mut self.nets;
        let scale = 1.0 / batch as f32;

        join_one_hot(z, LATENT, b.labels, &mut buf.g_in);
        g.forward(&buf.g_in, &mut buf.g, batch, None);

        // D step on (real, label) and (fake, label) rows together, with dropout.
        buf.labels2.clear();
        buf.labels2.extend_from_slice(b.labels);
        buf.labels2.extend_from_slice(b.labels);
        let mut images = Vec::with_capacity(2 * batch * IMAGE);
        images.extend_from_slice(real);
        images.extend_from_slice(&buf.g.out);
        join_one_hot(&images, IMAGE, &buf.labels2, &mut buf.both);
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

        // G step through the updated D.
        join_one_hot(&buf.g.out, IMAGE, b.labels, &mut buf.fake_in);
        let drop = Dropout {
            rate: DROPOUT,
            stream: &mut self.dropout,
        };
        d.forward(&buf.fake_in, &mut buf.d, batch, Some(drop));
        buf.dlogits.resize(batch, 0.0);
        let g_loss = kernels::bce_with_logits(&buf.d.out, 1.0, &mut buf.dlogits, scale);
        d.backward(
            &buf.fake_in,
            &buf.d,
            &mut buf.dlogits,
            &mut buf.grads,
            batch,
            false,
            false,
            Some(&mut buf.dfake_in),
        );
        // The image part of each row's input gradient; the label part has nowhere to go.
        buf.dfake.clear();
        for row in buf.dfake_in.chunks_exact(D_IN) {
            buf.dfake.extend_from_slice(&row[..IMAGE]);
        }
        g.backward(
            &buf.g_in,
            &buf.g,
            &mut buf.dfake,
            &mut buf.grads,
            batch,
            true,
            false,
            None,
        );
        opt_g.step(g);

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

    fn phase_times(&self) -> PhaseTimes {
        self.times
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
        labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError> {
        check_len(z, count, LATENT)?;
        let cycled: Vec<u8>;
        let labels = match labels {
            Some(l) => l,
            None => {
                cycled = (0..count).map(requested_label).collect();
                &cycled
            }
        };
        check_labels(labels, count)?;
        let mut input = Vec::new();
        join_one_hot(z, LATENT, labels, &mut input);
        let mut acts = mlp::Acts::default();
        self.nets.g.forward(&input, &mut acts, count, None);
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
    fn one_hot_rows_follow_their_data() {
        let mut out = Vec::new();
        join_one_hot(&[1.0, 2.0, 3.0, 4.0], 2, &[0, 9], &mut out);
        let mut want = vec![1.0, 2.0, 1.0];
        want.extend([0.0; 9]);
        want.extend([3.0, 4.0]);
        want.extend([0.0; 9]);
        want.push(1.0);
        assert_eq!(out, want);
    }

    #[test]
    fn the_label_changes_the_digit_and_none_cycles_through_them() {
        let gan = Cgan::new(1, 2e-4);
        let z1 = NoiseStream::new(1, NoiseKind::Samples).draw(LATENT);
        let z: Vec<f32> = z1.iter().chain(&z1).copied().collect();
        let two = gan.generate(&z, Some(&[3, 7]), 2).unwrap();
        assert_ne!(two[..IMAGE], two[IMAGE..]);
        let cycled = gan.generate(&z, None, 2).unwrap();
        assert_eq!(cycled, gan.generate(&z, Some(&[0, 1]), 2).unwrap());
        assert!(gan.is_conditional());
        let err = gan.generate(&z, Some(&[3, 10]), 2).unwrap_err();
        assert!(err.to_string().contains("label 10"), "{err}");
        let err = gan.generate(&z, Some(&[3]), 2).unwrap_err();
        assert!(err.to_string().contains("expected 2 labels"), "{err}");
    }

    #[test]
    fn discriminator_learns() {
        let mut gan = Cgan::new(1, 2e-4);
        let losses = testing::train(&mut gan, 30, 32, 1);
        assert!(share_told_apart(&losses, 10) > 0.9, "{losses:?}");
        // D's loss falls well below its start before G catches up.
        let lowest = losses.iter().map(|l| l.d_loss).fold(f32::MAX, f32::min);
        assert!(lowest < losses[0].d_loss - 0.2, "{losses:?}");
    }

    #[test]
    fn a_restored_state_continues_identically() {
        testing::assert_resumes_identically(
            Box::new(Cgan::new(5, 2e-4)),
            Box::new(Cgan::new(99, 2e-4)),
            3,
            32,
        );
    }

    #[test]
    fn a_damaged_state_changes_nothing() {
        testing::assert_damaged_states_change_nothing(Box::new(Cgan::new(2, 2e-4)));
    }
}
