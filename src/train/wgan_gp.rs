//! The WGAN-GP preset (Gulrajani et al. 2017): the reference's generator against an MLP critic
//! (784-512-256-1, LeakyReLU 0.2, no sigmoid) trained on the Wasserstein loss with a gradient
//! penalty, five critic updates per generator update, Adam (0.5, 0.9).
//!
//! The penalty is exact. For a LeakyReLU MLP the critic's input gradient is an ordinary forward
//! graph of its weights and activation slopes, `df/dx = W1^T diag(m1) W2^T diag(m2) w3`, the slopes
//! `m` (1 or 0.2) constant almost everywhere; so the penalty `lambda (|df/dx| - 1)^2` and its
//! weight gradients are products like any other layer's, computed here without a gradient of a
//! gradient. The interpolation weights come from the run's `Penalty` noise stream, saved with the
//! state.
//!
//! Each `train_step` is one critic update on its batch; every fifth also updates the generator
//! with that batch's noise. The step's `d_loss` is the critic's loss with the penalty, `g_loss`
//! is `-mean f(G(z))`, and `d_real`/`d_fake` are the mean sigmoid of the critic's values, for
//! display only (a critic's values are not probabilities).

use std::collections::BTreeMap;
use std::time::Instant;

use dfdx::prelude::*;

use super::dense::Linear;
use super::gan::{
    Batch, DeviceError, Gan, GanState, IMAGE, LATENT, PhaseTimes, Preset, StateError, StepLosses,
    check_len,
};
use super::mlp::{self, Mlp, SLOPE};
use super::noise::{NoiseKind, NoiseStream};
use super::param::{Optim, Pair};
use super::tuned::{Generator, reference_nets};
use crate::nn::kernels;
use crate::nn::loss::mean_sigmoid;
use crate::nn::params::NamedTensor;

/// The penalty's weight.
pub const LAMBDA: f32 = 10.0;
/// Critic updates per generator update.
pub const N_CRITIC: u64 = 5;
pub const BETAS: [f64; 2] = [0.5, 0.9];
/// The checkpoint counter prefix of the interpolation stream's position.
const PENALTY_STREAM: &str = "rng.penalty";

pub type Critic = Mlp<IMAGE, 512, 256, 1>;

/// Working memory of the penalty.
#[derive(Debug, Default)]
pub struct PenaltyBuf {
    m1: Vec<f32>,
    m2: Vec<f32>,
    g2: Vec<f32>,
    h1: Vec<f32>,
    g1: Vec<f32>,
    gx: Vec<f32>,
    u: Vec<f32>,
    dg1: Vec<f32>,
    dg2: Vec<f32>,
}

/// LeakyReLU's slope at each unit, read from its output's sign (as its gradient is).
fn slopes(h: &[f32], out: &mut Vec<f32>) {
    out.clear();
    out.extend(h.iter().map(|&v| if v > 0.0 { 1.0 } else { SLOPE }));
}

/// The input gradient of the critic at each of `batch` points whose forward pass is `acts`, into
/// `buf.gx` (`batch x I`); leaves the slopes and partial products in `buf` for `penalty_grads`.
pub fn input_gradient<const I: usize, const H1: usize, const H2: usize>(
    critic: &Mlp<I, H1, H2, 1>,
    acts: &mlp::Acts,
    batch: usize,
    buf: &mut PenaltyBuf,
) {
    slopes(&acts.h1[..batch * H1], &mut buf.m1);
    slopes(&acts.h2[..batch * H2], &mut buf.m2);
    let w3 = &critic.l3.weight.value;
    // g2 = m2 * w3, row by row.
    buf.g2.clear();
    for row in buf.m2.chunks_exact(H2) {
        buf.g2.extend(row.iter().zip(w3).map(|(m, w)| m * w));
    }
    // g1 = m1 * (g2 W2)
    buf.h1.resize(batch * H1, 0.0);
    kernels::input_grad(&buf.g2, &critic.l2.weight.value, &mut buf.h1, batch, H1, H2);
    buf.g1.clear();
    buf.g1
        .extend(buf.h1.iter().zip(&buf.m1).map(|(h, m)| h * m));
    // gx = g1 W1
    buf.gx.resize(batch * I, 0.0);
    kernels::input_grad(&buf.g1, &critic.l1.weight.value, &mut buf.gx, batch, I, H1);
}

/// The penalty `lambda * mean over the batch of (|df/dx| - 1)^2` at the points of `acts`, with
/// its gradients added to the critic's weight gradients (biases have none: the slopes do not
/// depend on them almost everywhere). Returns the penalty.
pub fn penalty<const I: usize, const H1: usize, const H2: usize>(
    critic: &mut Mlp<I, H1, H2, 1>,
    acts: &mlp::Acts,
    batch: usize,
    lambda: f32,
    buf: &mut PenaltyBuf,
) -> f32 {
    input_gradient(critic, acts, batch, buf);
    // d(penalty)/d(gx_b) = 2 lambda / B (|gx_b| - 1) gx_b / |gx_b|
    let mut total = 0.0f64;
    buf.u.resize(batch * I, 0.0);
    for (gx, u) in buf.gx.chunks_exact(I).zip(buf.u.chunks_exact_mut(I)) {
        let norm = gx
            .iter()
            .map(|&v| (v as f64) * (v as f64))
            .sum::<f64>()
            .sqrt();
        total += (norm - 1.0) * (norm - 1.0);
        let k = if norm > 0.0 {
            (2.0 * lambda as f64 / batch as f64 * (norm - 1.0) / norm) as f32
        } else {
            0.0
        };
        for (u, &g) in u.iter_mut().zip(gx) {
            *u = k * g;
        }
    }
    // gx = g1 W1: dW1 += g1^T u, dg1 = u W1^T.
    kernels::weight_grad(
        &buf.g1,
        &buf.u,
        &mut critic.l1.weight.grad,
        batch,
        I,
        H1,
        true,
    );
    buf.dg1.resize(batch * H1, 0.0);
    kernels::forward(&buf.u, &critic.l1.weight.value, &mut buf.dg1, batch, I, H1);
    // g1 = m1 * h1, h1 = g2 W2: dW2 += g2^T (m1 * dg1), dg2 = (m1 * dg1) W2^T.
    for (d, m) in buf.dg1.iter_mut().zip(&buf.m1) {
        *d *= m;
    }
    kernels::weight_grad(
        &buf.g2,
        &buf.dg1,
        &mut critic.l2.weight.grad,
        batch,
        H1,
        H2,
        true,
    );
    buf.dg2.resize(batch * H2, 0.0);
    kernels::forward(
        &buf.dg1,
        &critic.l2.weight.value,
        &mut buf.dg2,
        batch,
        H1,
        H2,
    );
    // g2 = m2 * w3: dw3 += sum over the batch of m2 * dg2.
    let dw3 = &mut critic.l3.weight.grad;
    for (dg, m) in buf.dg2.chunks_exact(H2).zip(buf.m2.chunks_exact(H2)) {
        for ((d, &g), &m) in dw3.iter_mut().zip(dg).zip(m) {
            *d += g * m;
        }
    }
    (lambda as f64 * total / batch as f64) as f32
}

/// Working memory kept between steps.
#[derive(Default)]
struct Buffers {
    g: mlp::Acts,
    c: mlp::Acts,
    hat: mlp::Acts,
    grads: mlp::Grads,
    pen: PenaltyBuf,
    both: Vec<f32>,
    x_hat: Vec<f32>,
    eps: Vec<f32>,
    dvalues: Vec<f32>,
    dfake: Vec<f32>,
}

pub struct WganGp {
    nets: Pair<Generator, Critic>,
    penalty_noise: NoiseStream,
    buf: Buffers,
    times: PhaseTimes,
}

fn mean(v: &[f32]) -> f32 {
    (v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64) as f32
}

impl WganGp {
    pub fn new(seed: u64, lr: f64) -> Self {
        let dev = Cpu::seed_from_u64(seed);
        let (g, critic) = reference_nets(&dev, ["0", "2", "4"]);
        WganGp {
            nets: Pair {
                g,
                d: critic,
                opt_g: Optim::new(lr, BETAS),
                opt_d: Optim::new(lr, BETAS),
                ema: None,
            },
            penalty_noise: NoiseStream::new(seed, NoiseKind::Penalty),
            buf: Buffers::default(),
            times: PhaseTimes::default(),
        }
    }
}

impl WganGp {
    /// One training step, as `Gan::train_step`.
    fn step(&mut self, b: &Batch) -> Result<StepLosses, DeviceError> {
        let (real, z, batch) = (b.real, b.z, b.count);
        check_len(real, batch, IMAGE)?;
        check_len(z, batch, LATENT)?;
        let start = Instant::now();
        let mut buf = std::mem::take(&mut self.buf);
        let Pair {
            g,
            d: critic,
            opt_g,
            opt_d,
            ..
        } = &mut self.nets;
        let scale = 1.0 / batch as f32;

        g.forward(z, &mut buf.g, batch, None);

        // Critic step: mean f(fake) - mean f(real) on real and fake rows together...
        buf.both.clear();
        buf.both.extend_from_slice(real);
        buf.both.extend_from_slice(&buf.g.out);
        critic.forward(&buf.both, &mut buf.c, 2 * batch, None);
        let (real_values, fake_values) = buf.c.out.split_at(batch);
        let (mean_real, mean_fake) = (mean(real_values), mean(fake_values));
        let (d_real, d_fake) = (mean_sigmoid(real_values), mean_sigmoid(fake_values));
        buf.dvalues.clear();
        buf.dvalues.resize(batch, -scale);
        buf.dvalues.resize(2 * batch, scale);
        critic.backward(
            &buf.both,
            &buf.c,
            &mut buf.dvalues,
            &mut buf.grads,
            2 * batch,
            true,
            false,
            None,
        );
        // ... plus the penalty at points between each real digit and its fake.
        self.penalty_noise.fill_uniform(&mut buf.eps, batch);
        buf.x_hat.clear();
        for ((r, f), &e) in real
            .chunks_exact(IMAGE)
            .zip(buf.g.out.chunks_exact(IMAGE))
            .zip(&buf.eps)
        {
            buf.x_hat
                .extend(r.iter().zip(f).map(|(r, f)| e * r + (1.0 - e) * f));
        }
        critic.forward(&buf.x_hat, &mut buf.hat, batch, None);
        let gp = penalty(critic, &buf.hat, batch, LAMBDA, &mut buf.pen);
        opt_d.step(critic);
        let d_done = Instant::now();

        // Generator step every N_CRITIC critic steps: minimise -mean f(G(z)).
        let g_loss = if opt_d.steps().is_multiple_of(N_CRITIC) {
            critic.forward(&buf.g.out, &mut buf.c, batch, None);
            let g_loss = -mean(&buf.c.out);
            buf.dvalues.clear();
            buf.dvalues.resize(batch, -scale);
            critic.backward(
                &buf.g.out,
                &buf.c,
                &mut buf.dvalues,
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
            g_loss
        } else {
            -mean_fake
        };

        self.buf = buf;
        self.times = PhaseTimes {
            d: d_done - start,
            g: d_done.elapsed(),
        };
        Ok(StepLosses {
            d_loss: mean_fake - mean_real + gp,
            g_loss,
            d_real,
            d_fake,
        })
    }
}

impl Gan for WganGp {
    fn preset(&self) -> Preset {
        Preset::WganGp
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

    fn step_flops(&self, b: usize) -> f64 {
        let g = Generator::product_flops(b);
        let first = Critic::first_layer_flops(b);
        // Critic on 2b rows: forward, weight gradients, input gradients but the first layer's.
        let c = 3.0 * Critic::product_flops(2 * b) - Critic::first_layer_flops(2 * b);
        // Penalty on b rows: a forward pass, the two input-gradient products, and two products
        // each for the weight gradients of layers 1 and 2.
        let l2 = b as f64 * Linear::<512, 256>::FLOPS_PER_ROW;
        let pen = Critic::product_flops(b) + 3.0 * (first + l2);
        // The generator step, every N_CRITIC steps.
        let g_step = 2.0 * Critic::product_flops(b) + 2.0 * g - Generator::first_layer_flops(b);
        g + c + pen + g_step / N_CRITIC as f64
    }

    fn generate(
        &self,
        z: &[f32],
        _labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError> {
        check_len(z, count, LATENT)?;
        let mut acts = mlp::Acts::default();
        self.nets.g.forward(z, &mut acts, count, None);
        Ok(acts.out)
    }

    fn set_lr(&mut self, lr: f64) {
        self.nets.set_lr(lr);
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
    use crate::train::mlp::Output;
    use crate::train::testing;

    type Small = Mlp<6, 5, 4, 1>;

    fn small(seed: u64) -> Small {
        let dev = Cpu::seed_from_u64(seed);
        Mlp {
            l1: Linear::dfdx_init(&dev),
            l2: Linear::dfdx_init(&dev),
            l3: Linear::dfdx_init(&dev),
            names: ["0", "2", "4"],
            output: Output::Linear,
            norms: None,
        }
    }

    fn points(n: usize) -> Vec<f32> {
        let dev = Cpu::seed_from_u64(40);
        let x: Tensor<(usize, Const<6>), f32, Cpu> = dev.sample_normal_like(&(n, Const));
        x.as_vec()
    }

    #[test]
    fn input_gradient_is_the_critics_own_backward_pass() {
        let mut critic = small(1);
        let x = points(7);
        let mut acts = mlp::Acts::default();
        critic.forward(&x, &mut acts, 7, None);
        let mut buf = PenaltyBuf::default();
        input_gradient(&critic, &acts, 7, &mut buf);
        // Backpropagating a gradient of 1 at each output gives each point's input gradient.
        let (mut dout, mut g, mut dx) = (vec![1.0; 7], mlp::Grads::default(), Vec::new());
        critic.backward(&x, &acts, &mut dout, &mut g, 7, false, false, Some(&mut dx));
        for (a, b) in buf.gx.iter().zip(&dx) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    /// The penalty as a dfdx graph: the input gradient written as products of the traced
    /// weights and the constant slopes, differentiated by dfdx's autograd.
    #[test]
    fn penalty_and_its_gradients_match_a_dfdx_graph() {
        let mut critic = small(2);
        let n = 9;
        let x = points(n);
        let mut acts = mlp::Acts::default();
        critic.forward(&x, &mut acts, n, None);
        for (name, p) in crate::train::param::Params::params_mut(&mut critic) {
            assert!(!name.is_empty());
            p.grad.iter_mut().for_each(|g| *g = 0.5);
        }
        let mut buf = PenaltyBuf::default();
        let ours = penalty(&mut critic, &acts, n, LAMBDA, &mut buf);

        let dev: Cpu = Default::default();
        let w1: Tensor<Rank2<5, 6>, f32, Cpu> =
            dev.tensor_from_vec(critic.l1.weight.value.clone(), (Const, Const));
        let w2: Tensor<Rank2<4, 5>, f32, Cpu> =
            dev.tensor_from_vec(critic.l2.weight.value.clone(), (Const, Const));
        let w3: Tensor<Rank2<1, 4>, f32, Cpu> =
            dev.tensor_from_vec(critic.l3.weight.value.clone(), (Const, Const));
        let m1: Tensor<(usize, Const<5>), f32, Cpu> =
            dev.tensor_from_vec(buf.m1.clone(), (n, Const));
        let m2: Tensor<(usize, Const<4>), f32, Cpu> =
            dev.tensor_from_vec(buf.m2.clone(), (n, Const));
        let (w1t, w2t, w3t) = (
            w1.clone().leaky_traced(),
            w2.clone().leaky_traced(),
            w3.clone().leaky_traced(),
        );
        // The tapes are joined by the products, so one backward pass reaches every weight.
        let g2 = w3t.reshape::<Rank1<4>>().broadcast_like(&(n, Const::<4>)) * m2;
        let g1 = g2.matmul(w2t) * m1;
        let gx = g1.matmul(w1t);
        let norms = gx.square().sum::<(usize,), _>().sqrt();
        let theirs = (norms - 1.0).square().mean() * LAMBDA;
        assert!((theirs.array() - ours).abs() < 1e-4 * ours.abs().max(1.0));
        let grads = theirs.backward();
        for (ours, theirs, name) in [
            (&critic.l1.weight.grad, grads.get(&w1).as_vec(), "W1"),
            (&critic.l2.weight.grad, grads.get(&w2).as_vec(), "W2"),
            (&critic.l3.weight.grad, grads.get(&w3).as_vec(), "w3"),
        ] {
            for (a, b) in ours.iter().zip(&theirs) {
                // Ours started at 0.5: the penalty adds to the gradient already there.
                assert!(
                    (a - 0.5 - b).abs() < 1e-4 * b.abs().max(1.0),
                    "{name}: {a} - 0.5 vs {b}"
                );
            }
        }
        // Biases take no gradient from the penalty.
        assert!(critic.l1.bias.grad.iter().all(|&g| g == 0.5));
    }

    #[test]
    fn a_unit_gradient_costs_nothing() {
        // A linear critic whose weights have norm 1 has |df/dx| = 1 everywhere.
        let mut critic = small(3);
        critic.l1.weight.value.iter_mut().for_each(|w| *w = 0.0);
        critic.l1.weight.value[0] = 1.0;
        critic.l1.bias.value = vec![5.0; 5];
        critic.l2.weight.value.iter_mut().for_each(|w| *w = 0.0);
        critic.l2.weight.value[0] = 1.0;
        critic.l2.bias.value = vec![5.0; 4];
        critic.l3.weight.value = vec![1.0, 0.0, 0.0, 0.0];
        let x = vec![0.1f32; 6 * 3];
        let mut acts = mlp::Acts::default();
        critic.forward(&x, &mut acts, 3, None);
        let p = penalty(&mut critic, &acts, 3, LAMBDA, &mut PenaltyBuf::default());
        assert!(p.abs() < 1e-10, "{p}");
    }

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
