//! The reference recipe's step as fused kernels: the same dfdx networks (`reference::Generator`,
//! `reference::Discriminator`), their parameters taken out once into flat buffers with the
//! layers' compile-time shapes, trained in place, and handed back under the same names.
//!
//! What it saves over the plain dfdx step: AVX-512 matrix products; bias and activation in one
//! pass; D on the real and fake batches as one product of twice the rows; no weight gradients
//! of D in the generator step (PyTorch computes and discards them); no allocation per step.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::config::Preset;
use crate::nn::adam::pytorch_defaults;
use crate::nn::kernels::{self, AdamStep};
use crate::nn::params::{NamedTensor, ParamError};
use crate::train::gan::{
    self, Batch, DeviceError, Gan, GanState, PhaseTimes, StateError, StepLosses,
};
use crate::train::layers::LeakyRelu02;
use crate::train::reference::{self, IMAGE, LATENT, ReferenceGan};

const SLOPE: f32 = LeakyRelu02::SLOPE;

/// One dense layer `y = x w^T + b` with `w` of `O x I`, its gradients and Adam moments.
struct Dense<const I: usize, const O: usize> {
    w: Vec<f32>,
    b: Vec<f32>,
    gw: Vec<f32>,
    gb: Vec<f32>,
    mw: Vec<f32>,
    vw: Vec<f32>,
    mb: Vec<f32>,
    vb: Vec<f32>,
}

impl<const I: usize, const O: usize> Dense<I, O> {
    fn zeros() -> Self {
        let z = |n: usize| vec![0.0f32; n];
        Dense {
            w: z(O * I),
            b: z(O),
            gw: z(O * I),
            gb: z(O),
            mw: z(O * I),
            vw: z(O * I),
            mb: z(O),
            vb: z(O),
        }
    }

    /// `y = x w^T` (bias and activation follow in one pass).
    fn forward(&self, x: &[f32], y: &mut Vec<f32>, batch: usize) {
        y.resize(batch * O, 0.0);
        kernels::forward(&x[..batch * I], &self.w, y, batch, I, O);
    }

    /// Gradients of `w` and `b` from `dy` and the layer's input `x`.
    fn param_grads(&mut self, dy: &[f32], x: &[f32], batch: usize) {
        kernels::weight_grad(
            &dy[..batch * O],
            &x[..batch * I],
            &mut self.gw,
            batch,
            I,
            O,
            false,
        );
        kernels::bias_grad(&dy[..batch * O], &mut self.gb, false);
    }

    /// `param_grads` and `input_grad` at once, side by side on the thread pool.
    fn backward(&mut self, dy: &[f32], x: &[f32], dx: &mut Vec<f32>, batch: usize) {
        dx.resize(batch * I, 0.0);
        let (w, gw, gb) = (&self.w, &mut self.gw, &mut self.gb);
        let (dy, x) = (&dy[..batch * O], &x[..batch * I]);
        kernels::side_by_side(
            || {
                kernels::weight_grad(dy, x, gw, batch, I, O, false);
                kernels::bias_grad(dy, gb, false);
            },
            || kernels::input_grad(dy, w, dx, batch, I, O),
        );
    }

    /// `dx = dy w`.
    fn input_grad(&self, dy: &[f32], dx: &mut Vec<f32>, batch: usize) {
        dx.resize(batch * I, 0.0);
        kernels::input_grad(&dy[..batch * O], &self.w, dx, batch, I, O);
    }

    fn adam(&mut self, s: AdamStep) {
        kernels::adam(&mut self.w, &self.gw, &mut self.mw, &mut self.vw, s);
        kernels::adam(&mut self.b, &self.gb, &mut self.mb, &mut self.vb, s);
    }

    /// The layer's four named parameter-shaped tensors: weight, bias and their moments.
    fn export(
        &self,
        param: &str,
        opt: &str,
        out: &mut Vec<NamedTensor>,
        moments: &mut Vec<NamedTensor>,
    ) {
        let t = |name: String, shape: Vec<usize>, data: &[f32]| NamedTensor {
            name,
            shape,
            data: data.to_vec(),
        };
        out.push(t(format!("{param}.weight"), vec![O, I], &self.w));
        out.push(t(format!("{param}.bias"), vec![O], &self.b));
        for (kind, mw, mb) in [
            ("exp_avg", &self.mw, &self.mb),
            ("exp_avg_sq", &self.vw, &self.vb),
        ] {
            moments.push(t(format!("{opt}{kind}.{param}.weight"), vec![O, I], mw));
            moments.push(t(format!("{opt}{kind}.{param}.bias"), vec![O], mb));
        }
    }

    /// Reads the layer from `state`, checking names and shapes; changes nothing on error.
    fn import(
        &mut self,
        param: &str,
        opt: &str,
        state: &BTreeMap<String, NamedTensor>,
    ) -> Result<(), StateError> {
        let get = |name: String, shape: &[usize]| -> Result<Vec<f32>, StateError> {
            match state.get(&name) {
                None => Err(ParamError::Missing { name }.into()),
                Some(t) if t.shape != shape || t.data.len() != shape.iter().product::<usize>() => {
                    Err(ParamError::WrongShape {
                        name,
                        found: t.shape.clone(),
                        expected: shape.to_vec(),
                    }
                    .into())
                }
                Some(t) => Ok(t.data.clone()),
            }
        };
        let (ws, bs) = ([O, I], [O]);
        let w = get(format!("{param}.weight"), &ws)?;
        let b = get(format!("{param}.bias"), &bs)?;
        let mw = get(format!("{opt}exp_avg.{param}.weight"), &ws)?;
        let mb = get(format!("{opt}exp_avg.{param}.bias"), &bs)?;
        let vw = get(format!("{opt}exp_avg_sq.{param}.weight"), &ws)?;
        let vb = get(format!("{opt}exp_avg_sq.{param}.bias"), &bs)?;
        (self.w, self.b, self.mw, self.mb, self.vw, self.vb) = (w, b, mw, mb, vw, vb);
        Ok(())
    }
}

/// Working memory of one step, kept between steps so a step allocates nothing.
#[derive(Default)]
struct Buffers {
    h1: Vec<f32>,
    h2: Vec<f32>,
    fake: Vec<f32>,
    /// The real batch then the fake one: D sees both in one product.
    both: Vec<f32>,
    a1: Vec<f32>,
    a2: Vec<f32>,
    logits: Vec<f32>,
    dlogits: Vec<f32>,
    da2: Vec<f32>,
    da1: Vec<f32>,
    dfake: Vec<f32>,
    dh2: Vec<f32>,
    dh1: Vec<f32>,
}

/// The reference GAN with the fused step.
pub struct FastReference {
    g1: Dense<LATENT, 256>,
    g2: Dense<256, 512>,
    g3: Dense<512, IMAGE>,
    d1: Dense<IMAGE, 512>,
    d2: Dense<512, 256>,
    d3: Dense<256, 1>,
    lr: f64,
    g_steps: u64,
    d_steps: u64,
    buf: Buffers,
    times: PhaseTimes,
}

/// PyTorch's `nn.Sequential` index of each linear layer.
const LAYERS: [&str; 3] = ["0", "2", "4"];

fn mean_sigmoid(logits: &[f32]) -> f32 {
    let sum: f64 = logits.iter().map(|&l| kernels::sigmoid(l) as f64).sum();
    (sum / logits.len().max(1) as f64) as f32
}

impl FastReference {
    /// Weights initialised exactly as the plain dfdx recipe initialises them from `seed`.
    pub fn new(seed: u64, lr: f64) -> Self {
        let mut fast = FastReference {
            g1: Dense::zeros(),
            g2: Dense::zeros(),
            g3: Dense::zeros(),
            d1: Dense::zeros(),
            d2: Dense::zeros(),
            d3: Dense::zeros(),
            lr,
            g_steps: 0,
            d_steps: 0,
            buf: Buffers::default(),
            times: PhaseTimes::default(),
        };
        let plain = ReferenceGan::new(seed, lr);
        let state = plain.state();
        let map = state
            .tensors
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect();
        // A fresh plain model's state always fits: same types, same names.
        if let Err(e) = fast.load_state(&map, &state.counters) {
            unreachable!("a fresh reference model's state does not fit the fast one: {e}");
        }
        fast
    }

    fn adam_step(&self, t: u64) -> AdamStep {
        let cfg = pytorch_defaults(self.lr);
        AdamStep::new(cfg.lr, cfg.betas, cfg.eps, t)
    }

    /// G's forward pass for `batch` noise vectors into `h1`, `h2` and `out`.
    fn generator_forward(
        &self,
        z: &[f32],
        batch: usize,
        h1: &mut Vec<f32>,
        h2: &mut Vec<f32>,
        out: &mut Vec<f32>,
    ) {
        self.g1.forward(z, h1, batch);
        kernels::bias_leaky_relu(h1, &self.g1.b, SLOPE);
        self.g2.forward(h1, h2, batch);
        kernels::bias_leaky_relu(h2, &self.g2.b, SLOPE);
        self.g3.forward(h2, out, batch);
        kernels::bias_tanh(out, &self.g3.b);
    }

    fn check_len(data: &[f32], batch: usize, per: usize) -> Result<(), DeviceError> {
        if data.len() == batch * per {
            Ok(())
        } else {
            Err(DeviceError(format!(
                "expected {batch} x {per} values, got {}",
                data.len()
            )))
        }
    }
}

impl FastReference {
    /// One D step and one G step, as `Gan::train_step`.
    fn step(&mut self, b: &Batch) -> Result<StepLosses, DeviceError> {
        let (real, z, batch) = (b.real, b.z, b.count);
        Self::check_len(real, batch, IMAGE)?;
        Self::check_len(z, batch, LATENT)?;
        let start = Instant::now();
        let mut buf = std::mem::take(&mut self.buf);
        let b2 = 2 * batch;
        let scale = 1.0 / batch as f32;

        // G(z), kept for both steps.
        self.generator_forward(z, batch, &mut buf.h1, &mut buf.h2, &mut buf.fake);

        // D step on real and fake rows together.
        buf.both.clear();
        buf.both.extend_from_slice(real);
        buf.both.extend_from_slice(&buf.fake);
        self.d1.forward(&buf.both, &mut buf.a1, b2);
        kernels::bias_leaky_relu(&mut buf.a1, &self.d1.b, SLOPE);
        self.d2.forward(&buf.a1, &mut buf.a2, b2);
        kernels::bias_leaky_relu(&mut buf.a2, &self.d2.b, SLOPE);
        self.d3.forward(&buf.a2, &mut buf.logits, b2);
        kernels::add_bias(&mut buf.logits, &self.d3.b);
        buf.dlogits.resize(b2, 0.0);
        let (real_logits, fake_logits) = buf.logits.split_at(batch);
        let (d_real_grad, d_fake_grad) = buf.dlogits.split_at_mut(batch);
        let d_real = mean_sigmoid(real_logits);
        let d_fake = mean_sigmoid(fake_logits);
        let real_loss = kernels::bce_with_logits(real_logits, 1.0, d_real_grad, scale);
        let fake_loss = kernels::bce_with_logits(fake_logits, 0.0, d_fake_grad, scale);
        self.d3.backward(&buf.dlogits, &buf.a2, &mut buf.da2, b2);
        kernels::leaky_relu_grad(&mut buf.da2, &buf.a2, SLOPE);
        self.d2.backward(&buf.da2, &buf.a1, &mut buf.da1, b2);
        kernels::leaky_relu_grad(&mut buf.da1, &buf.a1, SLOPE);
        self.d1.param_grads(&buf.da1, &buf.both, b2);
        self.d_steps += 1;
        let s = self.adam_step(self.d_steps);
        self.d1.adam(s);
        self.d2.adam(s);
        self.d3.adam(s);
        let d_done = Instant::now();

        // G step through the updated D; D's own gradients are not needed here.
        self.d1.forward(&buf.fake, &mut buf.a1, batch);
        kernels::bias_leaky_relu(&mut buf.a1, &self.d1.b, SLOPE);
        self.d2.forward(&buf.a1, &mut buf.a2, batch);
        kernels::bias_leaky_relu(&mut buf.a2, &self.d2.b, SLOPE);
        self.d3.forward(&buf.a2, &mut buf.logits, batch);
        kernels::add_bias(&mut buf.logits, &self.d3.b);
        buf.dlogits.resize(batch, 0.0);
        let g_loss = kernels::bce_with_logits(&buf.logits, 1.0, &mut buf.dlogits, scale);
        self.d3.input_grad(&buf.dlogits, &mut buf.da2, batch);
        kernels::leaky_relu_grad(&mut buf.da2, &buf.a2, SLOPE);
        self.d2.input_grad(&buf.da2, &mut buf.da1, batch);
        kernels::leaky_relu_grad(&mut buf.da1, &buf.a1, SLOPE);
        self.d1.input_grad(&buf.da1, &mut buf.dfake, batch);
        kernels::tanh_grad(&mut buf.dfake, &buf.fake);
        self.g3.backward(&buf.dfake, &buf.h2, &mut buf.dh2, batch);
        kernels::leaky_relu_grad(&mut buf.dh2, &buf.h2, SLOPE);
        self.g2.backward(&buf.dh2, &buf.h1, &mut buf.dh1, batch);
        kernels::leaky_relu_grad(&mut buf.dh1, &buf.h1, SLOPE);
        self.g1.param_grads(&buf.dh1, z, batch);
        self.g_steps += 1;
        let s = self.adam_step(self.g_steps);
        self.g1.adam(s);
        self.g2.adam(s);
        self.g3.adam(s);

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

impl Gan for FastReference {
    fn preset(&self) -> Preset {
        Preset::Reference
    }

    fn architecture(&self) -> String {
        reference::ARCHITECTURE.to_string()
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
        use reference::{D_LAYERS, G_LAYERS, product_flops};
        let (g, d) = (&G_LAYERS[..], &D_LAYERS[..]);
        // D step on 2b rows: forward, weight gradients, input gradients of layers 2 and 3.
        let d_step = 2.0 * product_flops(d, 2 * b) + product_flops(&d[1..], 2 * b);
        // G step: D forward and input gradients, G weight gradients and input gradients of
        // layers 2 and 3.
        let g_step = 2.0 * product_flops(d, b) + product_flops(g, b) + product_flops(&g[1..], b);
        product_flops(g, b) + d_step + g_step
    }

    fn generate(
        &self,
        z: &[f32],
        _labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError> {
        Self::check_len(z, count, LATENT)?;
        let (mut h1, mut h2, mut out) = (Vec::new(), Vec::new(), Vec::new());
        self.generator_forward(z, count, &mut h1, &mut h2, &mut out);
        Ok(out)
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn state(&self) -> GanState {
        let (g, d) = (reference::G_PREFIX, reference::D_PREFIX);
        let (go, dopt) = (reference::G_OPT_PREFIX, reference::D_OPT_PREFIX);
        let mut params = Vec::new();
        let mut moments = Vec::new();
        let name = |prefix: &str, i: usize| format!("{prefix}{}", LAYERS[i]);
        self.g1.export(&name(g, 0), go, &mut params, &mut moments);
        self.g2.export(&name(g, 1), go, &mut params, &mut moments);
        self.g3.export(&name(g, 2), go, &mut params, &mut moments);
        self.d1.export(&name(d, 0), dopt, &mut params, &mut moments);
        self.d2.export(&name(d, 1), dopt, &mut params, &mut moments);
        self.d3.export(&name(d, 2), dopt, &mut params, &mut moments);
        params.extend(moments);
        GanState {
            tensors: params,
            counters: BTreeMap::from([
                (reference::G_STEPS.to_string(), self.g_steps),
                (reference::D_STEPS.to_string(), self.d_steps),
            ]),
        }
    }

    fn load_state(
        &mut self,
        state: &BTreeMap<String, NamedTensor>,
        counters: &BTreeMap<String, u64>,
    ) -> Result<(), StateError> {
        let (g_steps, d_steps) = (
            gan::counter(counters, reference::G_STEPS)?,
            gan::counter(counters, reference::D_STEPS)?,
        );
        let (g, d) = (reference::G_PREFIX, reference::D_PREFIX);
        let (go, dopt) = (reference::G_OPT_PREFIX, reference::D_OPT_PREFIX);
        let name = |prefix: &str, i: usize| format!("{prefix}{}", LAYERS[i]);
        // Stage into fresh layers so an error leaves this model as it was.
        let (mut g1, mut g2, mut g3) = (Dense::zeros(), Dense::zeros(), Dense::zeros());
        let (mut d1, mut d2, mut d3) = (Dense::zeros(), Dense::zeros(), Dense::zeros());
        g1.import(&name(g, 0), go, state)?;
        g2.import(&name(g, 1), go, state)?;
        g3.import(&name(g, 2), go, state)?;
        d1.import(&name(d, 0), dopt, state)?;
        d2.import(&name(d, 1), dopt, state)?;
        d3.import(&name(d, 2), dopt, state)?;
        (self.g1, self.g2, self.g3) = (g1, g2, g3);
        (self.d1, self.d2, self.d3) = (d1, d2, d3);
        (self.g_steps, self.d_steps) = (g_steps, d_steps);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{self, Split};
    use crate::train::noise::{NoiseKind, NoiseStream};

    fn sorted(mut s: GanState) -> GanState {
        s.tensors.sort_by(|a, b| a.name.cmp(&b.name));
        s
    }

    fn max_rel_diff(a: &GanState, b: &GanState) -> f32 {
        let mut worst = 0.0f32;
        for (x, y) in a.tensors.iter().zip(&b.tensors) {
            assert_eq!((&x.name, &x.shape), (&y.name, &y.shape));
            for (p, q) in x.data.iter().zip(&y.data) {
                worst = worst.max((p - q).abs() / (1e-3 + q.abs()));
            }
        }
        worst
    }

    #[test]
    fn starts_from_the_plain_models_weights_with_the_same_names() {
        let plain = sorted(ReferenceGan::new(3, 2e-4).state());
        let fast = sorted(FastReference::new(3, 2e-4).state());
        assert_eq!(plain, fast);
    }

    /// The optimised step against the plain dfdx formulation, step by step on real digits.
    #[test]
    fn steps_match_the_plain_dfdx_step() {
        let set = data::load(None, Split::Train).unwrap().take(96);
        let mut plain = ReferenceGan::new(11, 2e-4);
        let mut fast = FastReference::new(11, 2e-4);
        let mut noise = NoiseStream::new(11, NoiseKind::Train);
        let order = data::epoch_order(set.len(), 11, 1);
        let (mut real, mut z) = (Vec::new(), Vec::new());
        for step in 0..4u64 {
            // Batches of 32 and the short one of the epoch's end.
            let idx = data::batch_indices(&order, 40, step % 3).unwrap();
            data::fill_batch(&set, idx, &mut real).unwrap();
            noise.fill(&mut z, idx.len() * LATENT);
            let labels = vec![0u8; idx.len()];
            let batch = Batch {
                real: &real,
                labels: &labels,
                z: &z,
                count: idx.len(),
            };
            let a = plain.train_step(&batch).unwrap();
            let b = fast.train_step(&batch).unwrap();
            for (x, y) in [
                (a.d_loss, b.d_loss),
                (a.g_loss, b.g_loss),
                (a.d_real, b.d_real),
                (a.d_fake, b.d_fake),
            ] {
                assert!((x - y).abs() < 1e-4, "step {step}: plain {a:?} fast {b:?}");
            }
        }
        let diff = max_rel_diff(&sorted(plain.state()), &sorted(fast.state()));
        assert!(diff < 1e-3, "parameters and moments differ by up to {diff}");
        let z = NoiseStream::new(1, NoiseKind::Samples).draw(5 * LATENT);
        let (p, f) = (
            plain.generate(&z, None, 5).unwrap(),
            fast.generate(&z, None, 5).unwrap(),
        );
        let worst = p
            .iter()
            .zip(&f)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-4, "samples differ by up to {worst}");
    }

    #[test]
    fn state_round_trips_between_engines() {
        let mut fast = FastReference::new(2, 2e-4);
        let real = vec![-1.0f32; 8 * IMAGE];
        let z = NoiseStream::new(2, NoiseKind::Train).draw(8 * LATENT);
        let labels = [0u8; 8];
        fast.train_step(&Batch {
            real: &real,
            labels: &labels,
            z: &z,
            count: 8,
        })
        .unwrap();
        let state = fast.state();
        let map: BTreeMap<String, NamedTensor> = state
            .tensors
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect();
        let mut plain = ReferenceGan::new(99, 2e-4);
        plain.load_state(&map, &state.counters).unwrap();
        assert_eq!(sorted(plain.state()), sorted(state.clone()));
        let mut back = FastReference::new(98, 2e-4);
        back.load_state(&map, &state.counters).unwrap();
        assert_eq!(sorted(back.state()), sorted(state));
    }

    #[test]
    fn a_bad_state_changes_nothing() {
        let mut fast = FastReference::new(2, 2e-4);
        let before = fast.state();
        let mut map: BTreeMap<String, NamedTensor> = before
            .tensors
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect();
        map.remove("discriminator.model.4.bias");
        let err = fast.load_state(&map, &before.counters).unwrap_err();
        assert!(
            err.to_string().contains("discriminator.model.4.bias"),
            "{err}"
        );
        assert_eq!(fast.state(), before);
    }
}
