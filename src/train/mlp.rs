//! The three-layer perceptron the MLP recipes are made of (the reference's shape: dense,
//! LeakyReLU 0.2, dense, LeakyReLU 0.2, dense, then tanh or nothing), fused, with optional batch
//! norm before each hidden activation and optional dropout after it, whose masks come from a
//! savable stream.

use super::dense::Linear;
use super::noise::NoiseStream;
use super::norm::{Act, BatchNorm};
use super::param::{Layer, Param, Params, sequential, sequential_mut};
use crate::nn::LeakyRelu;
use crate::nn::kernels;

pub const SLOPE: f32 = LeakyRelu::SLOPE;

/// What follows the last layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Images in [-1, 1].
    Tanh,
    /// Logits or critic values.
    Linear,
}

/// `I -> H1 -> H2 -> O`.
#[derive(Debug, Clone)]
pub struct Mlp<const I: usize, const H1: usize, const H2: usize, const O: usize> {
    pub l1: Linear<I, H1>,
    pub l2: Linear<H1, H2>,
    pub l3: Linear<H2, O>,
    /// The `nn.Sequential` index of each dense layer, which names its tensors (`0.weight`):
    /// `["0", "2", "4"]` without dropout, `["0", "3", "6"]` with it.
    pub names: [&'static str; 3],
    pub output: Output,
    /// Batch norm before each hidden activation, with their `nn.Sequential` indices.
    pub norms: Option<Norms<H1, H2>>,
}

/// The two hidden layers' batch norms.
#[derive(Debug, Clone)]
pub struct Norms<const H1: usize, const H2: usize> {
    pub bn1: BatchNorm<H1>,
    pub bn2: BatchNorm<H2>,
    pub names: [&'static str; 2],
}

/// Dropout: the share of hidden units zeroed, and the stream the masks come from.
pub struct Dropout<'a> {
    pub rate: f32,
    pub stream: &'a mut NoiseStream,
}

/// One forward pass's activations, kept for its backward pass.
#[derive(Debug, Clone, Default)]
pub struct Acts {
    /// Hidden activations after LeakyReLU (and dropout).
    pub h1: Vec<f32>,
    pub h2: Vec<f32>,
    pub out: Vec<f32>,
    /// Dropout multipliers (0 or 1 / (1 - rate)); empty without dropout.
    pub mask1: Vec<f32>,
    pub mask2: Vec<f32>,
    words: Vec<u32>,
}

/// Gradient buffers of a backward pass.
#[derive(Debug, Clone, Default)]
pub struct Grads {
    pub d2: Vec<f32>,
    pub d1: Vec<f32>,
}

impl Acts {
    /// Fills `mask` with `len` dropout multipliers from `d`'s stream: one 32-bit word per unit,
    /// kept when the word is at or above `rate * 2^32`.
    fn draw_mask(&mut self, which: u8, len: usize, d: &mut Dropout) {
        d.stream.fill_words(&mut self.words, len);
        let cut = (f64::from(d.rate) * 4_294_967_296.0) as u64;
        let keep = 1.0 / (1.0 - d.rate);
        let mask = if which == 1 {
            &mut self.mask1
        } else {
            &mut self.mask2
        };
        mask.clear();
        mask.extend(
            self.words
                .iter()
                .map(|&w| if u64::from(w) >= cut { keep } else { 0.0 }),
        );
    }
}

fn apply_mask(h: &mut [f32], mask: &[f32]) {
    for (v, &m) in h.iter_mut().zip(mask) {
        *v *= m;
    }
}

impl<const I: usize, const H1: usize, const H2: usize, const O: usize> Mlp<I, H1, H2, O> {
    /// Forward pass of `batch` rows of `x`, batch norm (if any) with its running statistics; with
    /// `dropout`, fresh masks after both hidden layers.
    pub fn forward(&self, x: &[f32], a: &mut Acts, batch: usize, dropout: Option<Dropout>) {
        self.forward_with(x, a, batch, dropout, None);
    }

    /// `forward` in training mode: batch norm (if any) with the batch's statistics, moving its
    /// running statistics.
    pub fn forward_train(
        &mut self,
        x: &[f32],
        a: &mut Acts,
        batch: usize,
        dropout: Option<Dropout>,
    ) {
        let mut norms = self.norms.take();
        self.forward_with(x, a, batch, dropout, norms.as_mut());
        self.norms = norms;
    }

    /// The forward pass; `train` holds the batch norms to run in training mode.
    fn forward_with(
        &self,
        x: &[f32],
        a: &mut Acts,
        batch: usize,
        dropout: Option<Dropout>,
        train: Option<&mut Norms<H1, H2>>,
    ) {
        let leaky = Act::Leaky(SLOPE);
        let (mut train1, mut train2) = match train {
            Some(n) => (Some(&mut n.bn1), Some(&mut n.bn2)),
            None => (None, None),
        };
        self.l1.product(x, &mut a.h1, batch);
        match (&mut train1, &self.norms) {
            (Some(bn), _) => {
                kernels::add_bias(&mut a.h1, &self.l1.bias.value);
                bn.forward_train(&mut a.h1, 1, leaky);
            }
            (None, Some(n)) => {
                kernels::add_bias(&mut a.h1, &self.l1.bias.value);
                n.bn1.forward_eval(&mut a.h1, leaky);
            }
            (None, None) => kernels::bias_leaky_relu(&mut a.h1, &self.l1.bias.value, SLOPE),
        }
        let mut dropout = dropout;
        if let Some(d) = dropout.as_mut() {
            a.draw_mask(1, batch * H1, d);
            apply_mask(&mut a.h1, &a.mask1);
        } else {
            a.mask1.clear();
        }
        self.l2.product(&a.h1, &mut a.h2, batch);
        match (&mut train2, &self.norms) {
            (Some(bn), _) => {
                kernels::add_bias(&mut a.h2, &self.l2.bias.value);
                bn.forward_train(&mut a.h2, 1, leaky);
            }
            (None, Some(n)) => {
                kernels::add_bias(&mut a.h2, &self.l2.bias.value);
                n.bn2.forward_eval(&mut a.h2, leaky);
            }
            (None, None) => kernels::bias_leaky_relu(&mut a.h2, &self.l2.bias.value, SLOPE),
        }
        if let Some(d) = dropout.as_mut() {
            a.draw_mask(2, batch * H2, d);
            apply_mask(&mut a.h2, &a.mask2);
        } else {
            a.mask2.clear();
        }
        self.l3.product(&a.h2, &mut a.out, batch);
        match self.output {
            Output::Tanh => kernels::bias_tanh(&mut a.out, &self.l3.bias.value),
            Output::Linear => kernels::add_bias(&mut a.out, &self.l3.bias.value),
        }
    }

    /// Backward pass from `dout`, the loss gradient at the output (changed in place): parameter
    /// gradients when `params` (added to what is there when `accumulate`), the input gradient
    /// into `dx` when given.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &mut self,
        x: &[f32],
        a: &Acts,
        dout: &mut [f32],
        g: &mut Grads,
        batch: usize,
        params: bool,
        accumulate: bool,
        dx: Option<&mut Vec<f32>>,
    ) {
        self.backward_head(a, dout, g, batch, params, accumulate);
        self.backward_body(x, a, g, batch, params, accumulate, dx);
    }

    /// The first half of `backward`: through the output activation and the last layer, leaving
    /// the gradient at the second hidden activation in `g.d2` (where a caller can add to it).
    pub fn backward_head(
        &mut self,
        a: &Acts,
        dout: &mut [f32],
        g: &mut Grads,
        batch: usize,
        params: bool,
        accumulate: bool,
    ) {
        if self.output == Output::Tanh {
            kernels::tanh_grad(dout, &a.out);
        }
        if params {
            self.l3.param_grads(dout, &a.h2, batch, accumulate);
        }
        self.l3.input_grad(dout, &mut g.d2, batch);
    }

    /// The second half of `backward`: from `g.d2` down to the input.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_body(
        &mut self,
        x: &[f32],
        a: &Acts,
        g: &mut Grads,
        batch: usize,
        params: bool,
        accumulate: bool,
        dx: Option<&mut Vec<f32>>,
    ) {
        if !a.mask2.is_empty() {
            apply_mask(&mut g.d2, &a.mask2);
        }
        // Where dropout zeroed a unit its gradient is 0 already, so the sign of the masked
        // activation is as good as the pre-activation's.
        match &mut self.norms {
            Some(n) => n.bn2.backward(&mut g.d2, &a.h2, Act::Leaky(SLOPE)),
            None => kernels::leaky_relu_grad(&mut g.d2, &a.h2, SLOPE),
        }
        if params {
            self.l2.param_grads(&g.d2, &a.h1, batch, accumulate);
        }
        self.l2.input_grad(&g.d2, &mut g.d1, batch);
        if !a.mask1.is_empty() {
            apply_mask(&mut g.d1, &a.mask1);
        }
        match &mut self.norms {
            Some(n) => n.bn1.backward(&mut g.d1, &a.h1, Act::Leaky(SLOPE)),
            None => kernels::leaky_relu_grad(&mut g.d1, &a.h1, SLOPE),
        }
        if params {
            self.l1.param_grads(&g.d1, x, batch, accumulate);
        }
        if let Some(dx) = dx {
            self.l1.input_grad(&g.d1, dx, batch);
        }
    }

    /// FLOPs of the three products over `rows` rows: a forward pass, or one kind of gradient.
    pub fn product_flops(rows: usize) -> f64 {
        rows as f64
            * (Linear::<I, H1>::FLOPS_PER_ROW
                + Linear::<H1, H2>::FLOPS_PER_ROW
                + Linear::<H2, O>::FLOPS_PER_ROW)
    }

    /// FLOPs of the first layer over `rows` rows (whose input gradient is often not needed).
    pub fn first_layer_flops(rows: usize) -> f64 {
        rows as f64 * Linear::<I, H1>::FLOPS_PER_ROW
    }
}

impl<const I: usize, const H1: usize, const H2: usize, const O: usize> Params
    for Mlp<I, H1, H2, O>
{
    fn params(&self) -> Vec<(String, &Param)> {
        let [a, b, c] = self.names;
        let mut layers: Vec<(&str, &dyn Layer)> = vec![(a, &self.l1)];
        if let Some(n) = &self.norms {
            layers.push((n.names[0], &n.bn1));
        }
        layers.push((b, &self.l2));
        if let Some(n) = &self.norms {
            layers.push((n.names[1], &n.bn2));
        }
        layers.push((c, &self.l3));
        sequential(layers)
    }
    fn params_mut(&mut self) -> Vec<(String, &mut Param)> {
        let [a, b, c] = self.names;
        let (l1, l2, l3) = (&mut self.l1, &mut self.l2, &mut self.l3);
        let mut layers: Vec<(&str, &mut dyn Layer)> = vec![(a, l1)];
        match &mut self.norms {
            Some(n) => {
                let [na, nb] = n.names;
                layers.push((na, &mut n.bn1));
                layers.push((b, l2));
                layers.push((nb, &mut n.bn2));
            }
            None => layers.push((b, l2)),
        }
        layers.push((c, l3));
        sequential_mut(layers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::noise::NoiseKind;
    use crate::train::param::Params;
    use crate::train::testing::values;
    use dfdx::prelude::Cpu;

    fn net(output: Output) -> Mlp<5, 7, 6, 3> {
        let dev = Cpu::seed_from_u64(2);
        Mlp {
            l1: Linear::dfdx_init(&dev),
            l2: Linear::dfdx_init(&dev),
            l3: Linear::dfdx_init(&dev),
            names: ["0", "3", "6"],
            output,
            norms: None,
        }
    }

    /// loss = <out, r>, with the dropout masks of stream position `pos` (or none).
    fn loss(m: &Mlp<5, 7, 6, 3>, x: &[f32], r: &[f32], pos: Option<u128>) -> f64 {
        let mut a = Acts::default();
        let mut stream = NoiseStream::new(1, NoiseKind::Dropout);
        let dropout = pos.map(|p| {
            stream.seek(p);
            Dropout {
                rate: 0.3,
                stream: &mut stream,
            }
        });
        m.forward(x, &mut a, 4, dropout);
        a.out
            .iter()
            .zip(r)
            .map(|(o, r)| *o as f64 * *r as f64)
            .sum()
    }

    #[test]
    fn gradients_match_finite_differences_with_and_without_dropout() {
        for (output, pos) in [(Output::Tanh, None), (Output::Linear, Some(40u128))] {
            let mut m = net(output);
            let x = values(4 * 5, 1);
            let r = values(4 * 3, 2);
            let mut a = Acts::default();
            let mut stream = NoiseStream::new(1, NoiseKind::Dropout);
            let dropout = pos.map(|p| {
                stream.seek(p);
                Dropout {
                    rate: 0.3,
                    stream: &mut stream,
                }
            });
            m.forward(&x, &mut a, 4, dropout);
            if pos.is_some() {
                let zeros = a
                    .mask1
                    .iter()
                    .chain(&a.mask2)
                    .filter(|&&v| v == 0.0)
                    .count();
                assert!(zeros > 0 && zeros < a.mask1.len() + a.mask2.len());
            }
            let mut dout = r.clone();
            let (mut g, mut dx) = (Grads::default(), Vec::new());
            m.backward(&x, &a, &mut dout, &mut g, 4, true, false, Some(&mut dx));
            let h = 1e-3f32;
            for i in 0..x.len() {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += h;
                down[i] -= h;
                let num = (loss(&m, &up, &r, pos) - loss(&m, &down, &r, pos)) / (2.0 * h as f64);
                assert!(
                    (dx[i] as f64 - num).abs() < 1e-3,
                    "dx[{i}] {} vs {num}",
                    dx[i]
                );
            }
            for (layer, grad) in [
                (0usize, m.l1.weight.grad.clone()),
                (1, m.l2.weight.grad.clone()),
                (2, m.l3.weight.grad.clone()),
            ] {
                for (i, &gv) in grad.iter().enumerate() {
                    let mut up = m.clone();
                    let mut down = m.clone();
                    fn w(n: &mut Mlp<5, 7, 6, 3>, layer: usize, i: usize) -> &mut f32 {
                        match layer {
                            0 => &mut n.l1.weight.value[i],
                            1 => &mut n.l2.weight.value[i],
                            _ => &mut n.l3.weight.value[i],
                        }
                    }
                    *w(&mut up, layer, i) += h;
                    *w(&mut down, layer, i) -= h;
                    let num =
                        (loss(&up, &x, &r, pos) - loss(&down, &x, &r, pos)) / (2.0 * h as f64);
                    assert!(
                        (gv as f64 - num).abs() < 1e-3,
                        "layer {layer} weight {i}: {gv} vs {num}"
                    );
                }
            }
        }
    }

    #[test]
    fn batch_norm_gradients_match_finite_differences_and_names_interleave() {
        let mut m = net(Output::Tanh);
        m.names = ["0", "3", "6"];
        m.norms = Some(Norms {
            bn1: BatchNorm::new(),
            bn2: BatchNorm::new(),
            names: ["1", "4"],
        });
        let names: Vec<String> = m.params().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names[..4], ["0.weight", "0.bias", "1.weight", "1.bias"]);
        assert_eq!(names[5], "1.running_var");
        assert_eq!(names[6], "3.weight");
        assert_eq!(names[names.len() - 1], "6.bias");
        let x = values(4 * 5, 5);
        let r = values(4 * 3, 6);
        // Training mode: each evaluation starts from the same running statistics.
        let loss = |m: &Mlp<5, 7, 6, 3>, x: &[f32]| -> f64 {
            let mut m = m.clone();
            let mut a = Acts::default();
            m.forward_train(x, &mut a, 4, None);
            a.out
                .iter()
                .zip(&r)
                .map(|(o, r)| *o as f64 * *r as f64)
                .sum()
        };
        let mut trained = m.clone();
        let mut a = Acts::default();
        trained.forward_train(&x, &mut a, 4, None);
        let (mut dout, mut g, mut dx) = (r.clone(), Grads::default(), Vec::new());
        trained.backward(&x, &a, &mut dout, &mut g, 4, true, false, Some(&mut dx));
        let h = 1e-3f32;
        for i in 0..x.len() {
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let num = (loss(&m, &up) - loss(&m, &down)) / (2.0 * h as f64);
            assert!(
                (dx[i] as f64 - num).abs() < 2e-3,
                "dx[{i}] {} vs {num}",
                dx[i]
            );
        }
        for i in 0..m.l1.weight.len() {
            let (mut up, mut down) = (m.clone(), m.clone());
            up.l1.weight.value[i] += h;
            down.l1.weight.value[i] -= h;
            let num = (loss(&up, &x) - loss(&down, &x)) / (2.0 * h as f64);
            let gv = trained.l1.weight.grad[i] as f64;
            assert!((gv - num).abs() < 2e-3, "l1 weight {i}: {gv} vs {num}");
        }
        // Evaluation uses the running statistics the training pass moved.
        let n = trained.norms.as_ref().unwrap();
        assert!(n.bn1.running_mean.value.iter().any(|&v| v != 0.0));
        let (mut e1, mut e2) = (Acts::default(), Acts::default());
        trained.forward(&x, &mut e1, 4, None);
        trained.forward(&x, &mut e2, 4, None);
        assert_eq!(e1.out, e2.out);
        assert_ne!(e1.out, a.out);
    }

    #[test]
    fn dropout_zeroes_about_its_rate_and_keeps_the_mean() {
        let m = net(Output::Linear);
        let x = values(4 * 5, 3);
        let mut stream = NoiseStream::new(7, NoiseKind::Dropout);
        let mut zeros = 0;
        let mut total = 0;
        let mut a = Acts::default();
        for _ in 0..500 {
            let d = Dropout {
                rate: 0.3,
                stream: &mut stream,
            };
            m.forward(&x, &mut a, 4, Some(d));
            zeros += a.mask1.iter().filter(|&&v| v == 0.0).count();
            total += a.mask1.len();
            let kept: f32 = a.mask1.iter().sum::<f32>() / a.mask1.len() as f32;
            assert!((0.0..=1.0 / 0.7 + 1e-6).contains(&kept));
        }
        let share = zeros as f64 / total as f64;
        assert!((share - 0.3).abs() < 0.02, "{share}");
    }
}
