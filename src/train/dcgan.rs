//! The DCGAN preset: a convolutional generator and discriminator in the manner of Radford et al.
//! (2016), sized for 28x28 digits, trained with the reference's losses, Adam beta1 0.5, and
//! samples drawn from a running average of G's weights.
//!
//! G: z 100 -> dense 7x7x64 -> batch norm, ReLU -> transposed conv 4x4 stride 2 to 14x14x32 ->
//! batch norm, ReLU -> transposed conv 4x4 stride 2 to 28x28x1 -> tanh.
//! D: 28x28x1 -> conv 4x4 stride 2 to 14x14x32 -> LeakyReLU 0.2 -> conv 4x4 stride 2 to 7x7x64
//! -> batch norm, LeakyReLU 0.2 -> dense 1 logit. D sees the real and the fake half of a step in
//! one pass, batch norm taking each half's statistics apart as two PyTorch calls would.
//! (Twice the channels learned no faster in the first two epochs and cost four times as much.)
//!
//! The same networks, with the digit joined to G's input and a label projection in D, are the
//! conditional preset (`cgan`); `ConvGan` is both.
//!
//! Tensors are saved as the equivalent PyTorch `nn.Sequential`s name and lay them out (dense
//! outputs in channels-first order, ready for `nn.Unflatten`).

use std::collections::BTreeMap;
use std::time::Instant;

use dfdx::prelude::*;

use super::cgan;
use super::conv::{Conv2d, ConvT2d, hwc_to_chw, matrix_order};
use super::dense::Linear;
pub use super::gan::LATENT;
use super::gan::{
    Batch, DeviceError, Gan, GanState, IMAGE, PhaseTimes, StateError, StepLosses, check_len,
};
use super::norm::{Act, BatchNorm};
use super::param::{EMA_DECAY, Layer, Optim, Pair, Param, Params, sequential, sequential_mut};
use crate::config::Preset;
use crate::data::CLASSES;
use crate::nn::kernels;
use crate::nn::loss::mean_sigmoid;
use crate::nn::params::NamedTensor;

/// Channels of G at 7x7 and 14x14, and of D at 14x14 and 7x7.
const G7: usize = 64;
const G14: usize = 32;
const D14: usize = 32;
const D7: usize = 64;
const G_DENSE: usize = 7 * 7 * G7;
const D_DENSE: usize = 7 * 7 * D7;
const SLOPE: f32 = 0.2;
/// DCGAN's weight initialisation: normal with this deviation.
const INIT_STD: f32 = 0.02;
/// DCGAN's Adam betas: a smaller beta1 damps the oscillation between the two players.
pub const BETAS: [f64; 2] = [0.5, 0.999];
/// The target D is taught for real digits.
const REAL_TARGET: f32 = 1.0;
/// The name of a conditional D's label projection.
const EMBED_NAME: &str = "label_embedding.weight";

/// The generator, as `nn.Sequential(Linear, Unflatten, BatchNorm2d, ReLU, ConvTranspose2d,
/// BatchNorm2d, ReLU, ConvTranspose2d, Tanh)` indexes it.
#[derive(Debug, Clone)]
pub struct Generator<const Z: usize> {
    fc: Linear<Z, G_DENSE>,
    bn7: BatchNorm<G7>,
    up14: ConvT2d<G7, G14, 4, 2, 1, 7, 14>,
    bn14: BatchNorm<G14>,
    up28: ConvT2d<G14, 1, 4, 2, 1, 14, 28>,
}

/// The discriminator, as `nn.Sequential(Conv2d, LeakyReLU, Conv2d, BatchNorm2d, LeakyReLU,
/// Flatten, Linear)` indexes it; a conditional one adds a label projection (Miyato and Koyama
/// 2018): its logit for digit `y` is `w . h + b + e_y . h`, `h` the flattened features.
#[derive(Debug, Clone)]
pub struct Discriminator {
    conv14: Conv2d<1, D14, 4, 2, 1, 28, 14>,
    conv7: Conv2d<D14, D7, 4, 2, 1, 14, 7>,
    bn7: BatchNorm<D7>,
    fc: Linear<D_DENSE, 1>,
    /// `e_y` for each digit: `CLASSES x D_DENSE`, as `nn.Embedding(10, 6272)` holds it (in the
    /// channels-first order of the flattened features when saved).
    embed: Option<Param>,
}

impl<const Z: usize> Params for Generator<Z> {
    fn params(&self) -> Vec<(String, &Param)> {
        let layers: Vec<(&str, &dyn Layer)> = vec![
            ("0", &self.fc),
            ("2", &self.bn7),
            ("4", &self.up14),
            ("5", &self.bn14),
            ("7", &self.up28),
        ];
        sequential(layers)
    }
    fn params_mut(&mut self) -> Vec<(String, &mut Param)> {
        let layers: Vec<(&str, &mut dyn Layer)> = vec![
            ("0", &mut self.fc),
            ("2", &mut self.bn7),
            ("4", &mut self.up14),
            ("5", &mut self.bn14),
            ("7", &mut self.up28),
        ];
        sequential_mut(layers)
    }
}

impl Params for Discriminator {
    fn params(&self) -> Vec<(String, &Param)> {
        let layers: Vec<(&str, &dyn Layer)> = vec![
            ("0", &self.conv14),
            ("2", &self.conv7),
            ("3", &self.bn7),
            ("6", &self.fc),
        ];
        let mut p = sequential(layers);
        if let Some(e) = &self.embed {
            p.push((EMBED_NAME.to_string(), e));
        }
        p
    }
    fn params_mut(&mut self) -> Vec<(String, &mut Param)> {
        let layers: Vec<(&str, &mut dyn Layer)> = vec![
            ("0", &mut self.conv14),
            ("2", &mut self.conv7),
            ("3", &mut self.bn7),
            ("6", &mut self.fc),
        ];
        let mut p = sequential_mut(layers);
        if let Some(e) = &mut self.embed {
            p.push((EMBED_NAME.to_string(), e));
        }
        p
    }
}

/// The generator's activations of one forward pass, kept for its backward pass.
#[derive(Debug, Default)]
struct GActs {
    /// After batch norm and ReLU.
    h7: Vec<f32>,
    cols14: Vec<f32>,
    h14: Vec<f32>,
    cols28: Vec<f32>,
    /// The images, after tanh.
    out: Vec<f32>,
}

/// The discriminator's activations of one forward pass.
#[derive(Debug, Default)]
struct DActs {
    cols14: Vec<f32>,
    h14: Vec<f32>,
    cols7: Vec<f32>,
    h7: Vec<f32>,
    logits: Vec<f32>,
}

/// Gradient buffers of a backward pass.
#[derive(Debug, Default)]
struct Grads {
    dlogits: Vec<f32>,
    d7: Vec<f32>,
    d14: Vec<f32>,
    dcols: Vec<f32>,
    dimage: Vec<f32>,
    g14: Vec<f32>,
    g7: Vec<f32>,
}

impl<const Z: usize> Generator<Z> {
    fn new(dev: &Cpu) -> Self {
        // The dense layer's outputs are channels-last inside and channels-first when saved.
        let mut fc = Linear::<Z, G_DENSE>::normal_init(dev, INIT_STD);
        let rows = hwc_to_chw(7, G7);
        fc.weight = fc.weight.reordered(matrix_order(&rows, Z, None));
        fc.bias = fc.bias.reordered(rows);
        Generator {
            fc,
            bn7: bn_init(dev),
            up14: ConvT2d::normal_init(dev, INIT_STD),
            bn14: bn_init(dev),
            up28: ConvT2d::normal_init(dev, INIT_STD),
        }
    }

    /// Training mode: batch statistics, running statistics updated.
    fn forward_train(&mut self, z: &[f32], a: &mut GActs, batch: usize) {
        self.fc.forward(z, &mut a.h7, batch);
        self.bn7.forward_train(&mut a.h7, 1, Act::Relu);
        self.up14.forward(&a.h7, &mut a.cols14, &mut a.h14, batch);
        self.bn14.forward_train(&mut a.h14, 1, Act::Relu);
        self.up28.product(&a.h14, &mut a.cols28, &mut a.out, batch);
        kernels::bias_tanh(&mut a.out, &self.up28.bias.value);
    }

    /// Evaluation mode: running statistics, nothing changes.
    fn forward_eval(&self, z: &[f32], a: &mut GActs, batch: usize) {
        self.fc.forward(z, &mut a.h7, batch);
        self.bn7.forward_eval(&mut a.h7, Act::Relu);
        self.up14.forward(&a.h7, &mut a.cols14, &mut a.h14, batch);
        self.bn14.forward_eval(&mut a.h14, Act::Relu);
        self.up28.product(&a.h14, &mut a.cols28, &mut a.out, batch);
        kernels::bias_tanh(&mut a.out, &self.up28.bias.value);
    }

    /// Parameter gradients from `dout`, the loss gradient at the images (changed in place).
    fn backward(&mut self, z: &[f32], a: &GActs, gr: &mut Grads, batch: usize) {
        let dout = &mut gr.dimage;
        kernels::tanh_grad(dout, &a.out);
        self.up28.grad_patches(dout, &mut gr.dcols, batch);
        self.up28.param_grads(dout, &gr.dcols, &a.h14, batch);
        self.up28.input_grad(&gr.dcols, &mut gr.g14, batch);
        self.bn14.backward(&mut gr.g14, &a.h14, Act::Relu);
        self.up14.grad_patches(&gr.g14, &mut gr.dcols, batch);
        self.up14.param_grads(&gr.g14, &gr.dcols, &a.h7, batch);
        self.up14.input_grad(&gr.dcols, &mut gr.g7, batch);
        self.bn7.backward(&mut gr.g7, &a.h7, Act::Relu);
        self.fc.param_grads(&gr.g7, z, batch, false);
    }

    /// Multiply-add FLOPs of a forward pass over `batch` images.
    fn forward_flops(batch: usize) -> f64 {
        batch as f64
            * (Linear::<Z, G_DENSE>::FLOPS_PER_ROW
                + ConvT2d::<G7, G14, 4, 2, 1, 7, 14>::FLOPS_PER_IMAGE
                + ConvT2d::<G14, 1, 4, 2, 1, 14, 28>::FLOPS_PER_IMAGE)
    }
}

/// Batch norm as DCGAN initialises it: scale normal around 1 with deviation 0.02, shift 0.
fn bn_init<const C: usize>(dev: &Cpu) -> BatchNorm<C> {
    let mut bn = BatchNorm::<C>::new();
    let w: Tensor<Rank1<C>, f32, Cpu> = dev.sample_normal();
    bn.weight.value = w.as_vec().iter().map(|v| 1.0 + INIT_STD * v).collect();
    bn
}

impl Discriminator {
    /// With a label projection when `conditional`.
    fn new(dev: &Cpu, conditional: bool) -> Self {
        // The dense layer's inputs are channels-last inside and channels-first when saved.
        let mut fc = Linear::<D_DENSE, 1>::normal_init(dev, INIT_STD);
        let cols = hwc_to_chw(7, D7);
        fc.weight = fc
            .weight
            .reordered(matrix_order(&[0], D_DENSE, Some(&cols)));
        let embed = conditional.then(|| {
            let e = Linear::<D_DENSE, CLASSES>::normal_init(dev, INIT_STD).weight;
            e.reordered(matrix_order(
                &(0..CLASSES).collect::<Vec<_>>(),
                D_DENSE,
                Some(&cols),
            ))
        });
        Discriminator {
            conv14: Conv2d::normal_init(dev, INIT_STD),
            conv7: Conv2d::normal_init(dev, INIT_STD),
            bn7: bn_init(dev),
            fc,
            embed,
        }
    }

    /// Forward pass of `batch` images made of `groups` batches (real then fake) that batch norm
    /// normalises apart, as separate passes would; a conditional D judges each for its label.
    fn forward(
        &mut self,
        x: &[f32],
        labels: Option<&[u8]>,
        a: &mut DActs,
        batch: usize,
        groups: usize,
    ) {
        self.conv14.product(x, &mut a.cols14, &mut a.h14, batch);
        kernels::bias_leaky_relu(&mut a.h14, &self.conv14.bias.value, SLOPE);
        self.conv7.forward(&a.h14, &mut a.cols7, &mut a.h7, batch);
        self.bn7.forward_train(&mut a.h7, groups, Act::Leaky(SLOPE));
        self.fc.forward(&a.h7, &mut a.logits, batch);
        if let (Some(e), Some(labels)) = (&self.embed, labels) {
            let rows = a.logits.iter_mut().zip(a.h7.chunks_exact(D_DENSE));
            for ((logit, h), &y) in rows.zip(labels) {
                let e = &e.value[usize::from(y) * D_DENSE..][..D_DENSE];
                *logit += e.iter().zip(h).map(|(e, h)| e * h).sum::<f32>();
            }
        }
    }

    /// Backward from `gr.dlogits`: parameter gradients when `params`, the input gradient into
    /// `gr.dimage` when `input`.
    fn backward(
        &mut self,
        labels: Option<&[u8]>,
        a: &DActs,
        gr: &mut Grads,
        batch: usize,
        params: bool,
        input: bool,
    ) {
        if params {
            self.fc.param_grads(&gr.dlogits, &a.h7, batch, false);
        }
        self.fc.input_grad(&gr.dlogits, &mut gr.d7, batch);
        if let (Some(e), Some(labels)) = (&mut self.embed, labels) {
            if params {
                e.grad.iter_mut().for_each(|v| *v = 0.0);
            }
            let rows = gr
                .d7
                .chunks_exact_mut(D_DENSE)
                .zip(a.h7.chunks_exact(D_DENSE));
            for (((d7, h), &y), &dl) in rows.zip(labels).zip(&gr.dlogits) {
                let at = usize::from(y) * D_DENSE;
                for (d, ev) in d7.iter_mut().zip(&e.value[at..at + D_DENSE]) {
                    *d += dl * ev;
                }
                if params {
                    for (g, hv) in e.grad[at..at + D_DENSE].iter_mut().zip(h) {
                        *g += dl * hv;
                    }
                }
            }
        }
        self.bn7.backward(&mut gr.d7, &a.h7, Act::Leaky(SLOPE));
        if params {
            self.conv7.param_grads(&gr.d7, &a.cols7, batch);
        }
        self.conv7
            .input_grad(&gr.d7, &mut gr.dcols, &mut gr.d14, batch);
        kernels::leaky_relu_grad(&mut gr.d14, &a.h14, SLOPE);
        if params {
            self.conv14.param_grads(&gr.d14, &a.cols14, batch);
        }
        if input {
            self.conv14
                .input_grad(&gr.d14, &mut gr.dcols, &mut gr.dimage, batch);
        }
    }

    fn forward_flops(batch: usize) -> f64 {
        batch as f64
            * (Conv2d::<1, D14, 4, 2, 1, 28, 14>::FLOPS_PER_IMAGE
                + Conv2d::<D14, D7, 4, 2, 1, 14, 7>::FLOPS_PER_IMAGE
                + Linear::<D_DENSE, 1>::FLOPS_PER_ROW)
    }

    fn first_layer_flops(batch: usize) -> f64 {
        batch as f64 * Conv2d::<1, D14, 4, 2, 1, 28, 14>::FLOPS_PER_IMAGE
    }
}

/// Working memory kept between steps.
#[derive(Debug, Default)]
struct Buffers {
    g_in: Vec<f32>,
    g: GActs,
    d: DActs,
    grads: Grads,
    both: Vec<f32>,
    labels2: Vec<u8>,
}

/// The convolutional GAN with `Z` generator inputs: the DCGAN preset (`Z` = the latent size),
/// and the conditional preset (`Z` = latent + 10 one-hot label inputs, D with the projection).
pub struct ConvGan<const Z: usize> {
    preset: Preset,
    nets: Pair<Generator<Z>, Discriminator>,
    buf: Buffers,
    times: PhaseTimes,
}

/// The unconditional preset.
pub type Dcgan = ConvGan<LATENT>;

impl Dcgan {
    /// Weights drawn from dfdx's stream seeded with `seed`, G before D.
    pub fn new(seed: u64, lr: f64) -> Self {
        ConvGan::build(Preset::Dcgan, seed, lr)
    }
}

impl<const Z: usize> ConvGan<Z> {
    /// `preset` is `Dcgan` (with `Z` = the latent size) or `Cgan` (with `Z` = latent + 10).
    pub(crate) fn build(preset: Preset, seed: u64, lr: f64) -> Self {
        let dev = Cpu::seed_from_u64(seed);
        let g = Generator::new(&dev);
        let d = Discriminator::new(&dev, preset == Preset::Cgan);
        ConvGan {
            preset,
            nets: Pair {
                ema: Some((g.clone(), EMA_DECAY)),
                g,
                d,
                opt_g: Optim::new(lr, BETAS),
                opt_d: Optim::new(lr, BETAS),
            },
            buf: Buffers::default(),
            times: PhaseTimes::default(),
        }
    }

    fn conditional(&self) -> bool {
        self.nets.d.embed.is_some()
    }

    /// The generator's input rows for noise `z`: the noise itself, or for a conditional model
    /// the noise joined to the one-hot `labels` (digits 0-9 in turn when there are none).
    fn generator_input(
        &self,
        z: &[f32],
        labels: Option<&[u8]>,
        count: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), DeviceError> {
        check_len(z, count, LATENT)?;
        if !self.conditional() {
            out.clear();
            out.extend_from_slice(z);
            return Ok(());
        }
        let cycled: Vec<u8>;
        let labels = match labels {
            Some(l) => l,
            None => {
                cycled = (0..count).map(cgan::requested_label).collect();
                &cycled
            }
        };
        cgan::check_labels(labels, count)?;
        cgan::join_one_hot(z, LATENT, labels, out);
        Ok(())
    }
}

impl<const Z: usize> ConvGan<Z> {
    /// One training step, as `Gan::train_step`.
    fn step(&mut self, b: &Batch) -> Result<StepLosses, DeviceError> {
        let (real, batch) = (b.real, b.count);
        check_len(real, batch, IMAGE)?;
        let start = Instant::now();
        let mut buf = std::mem::take(&mut self.buf);
        // Fakes are drawn for the labels of the real digits they are shown beside.
        let labels = self.conditional().then_some(b.labels);
        if let Err(e) = self.generator_input(b.z, labels, batch, &mut buf.g_in) {
            self.buf = buf;
            return Err(e);
        }
        let Pair {
            g, d, opt_g, opt_d, ..
        } = &mut self.nets;
        let scale = 1.0 / batch as f32;

        g.forward_train(&buf.g_in, &mut buf.g, batch);

        // D step: real and fake rows in one pass, batch norm keeping them apart.
        buf.both.clear();
        buf.both.extend_from_slice(real);
        buf.both.extend_from_slice(&buf.g.out);
        let labels2 = labels.map(|l| {
            buf.labels2.clear();
            buf.labels2.extend_from_slice(l);
            buf.labels2.extend_from_slice(l);
            &buf.labels2[..]
        });
        d.forward(&buf.both, labels2, &mut buf.d, 2 * batch, 2);
        buf.grads.dlogits.resize(2 * batch, 0.0);
        let (real_logits, fake_logits) = buf.d.logits.split_at(batch);
        let (dreal, dfake) = buf.grads.dlogits.split_at_mut(batch);
        let d_real = mean_sigmoid(real_logits);
        let d_fake = mean_sigmoid(fake_logits);
        let real_loss = kernels::bce_with_logits(real_logits, REAL_TARGET, dreal, scale);
        let fake_loss = kernels::bce_with_logits(fake_logits, 0.0, dfake, scale);
        d.backward(labels2, &buf.d, &mut buf.grads, 2 * batch, true, false);
        opt_d.step(d);
        let d_done = Instant::now();

        // G step through the updated D.
        d.forward(&buf.g.out, labels, &mut buf.d, batch, 1);
        buf.grads.dlogits.resize(batch, 0.0);
        let g_loss = kernels::bce_with_logits(&buf.d.logits, 1.0, &mut buf.grads.dlogits, scale);
        d.backward(labels, &buf.d, &mut buf.grads, batch, false, true);
        g.backward(&buf.g_in, &buf.g, &mut buf.grads, batch);
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

impl<const Z: usize> Gan for ConvGan<Z> {
    fn preset(&self) -> Preset {
        self.preset
    }

    fn latent_dim(&self) -> usize {
        LATENT
    }

    fn is_conditional(&self) -> bool {
        self.conditional()
    }

    fn train_step(&mut self, b: &Batch) -> Result<StepLosses, DeviceError> {
        kernels::in_pool(|| self.step(b))
    }

    fn phase_times(&self) -> PhaseTimes {
        self.times
    }

    fn step_flops(&self, b: usize) -> f64 {
        let (gf, df) = (
            Generator::<Z>::forward_flops(b),
            Discriminator::forward_flops(b),
        );
        // D step on 2b: forward, weight gradients, input gradients of all but the first layer.
        let d_step = 2.0 * (3.0 * df - Discriminator::first_layer_flops(b));
        // G step: D forward and input gradients, G weight gradients and input gradients but
        // the dense layer's.
        let dense = b as f64 * Linear::<Z, G_DENSE>::FLOPS_PER_ROW;
        let g_step = 2.0 * df + 3.0 * gf - dense;
        gf + d_step + g_step
    }

    fn generate(
        &self,
        z: &[f32],
        labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError> {
        let mut input = Vec::new();
        self.generator_input(z, labels, count, &mut input)?;
        let mut acts = GActs::default();
        self.nets.sampler().forward_eval(&input, &mut acts, count);
        Ok(acts.out)
    }

    fn set_lr(&mut self, lr: f64) {
        self.nets.set_lr(lr);
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
        let w = &state
            .tensors
            .iter()
            .find(|t| t.name == "model.4.weight")
            .unwrap()
            .data;
        let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
        assert!((std - INIT_STD).abs() < 0.002, "{std}");
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

    /// The conditional discriminator's gradients at the image and at the label projection,
    /// against central differences of its logits.
    #[test]
    fn projection_discriminator_gradients_match_finite_differences() {
        let dev = Cpu::seed_from_u64(8);
        let mut d = Discriminator::new(&dev, true);
        // A projection of a size that matters beside the dense layer's logit.
        if let Some(e) = &mut d.embed {
            e.value.iter_mut().for_each(|v| *v *= 10.0);
        }
        let batch = 3;
        let x: Tensor<(usize, Const<IMAGE>), f32, Cpu> = dev.sample_uniform_like(&(batch, Const));
        let x: Vec<f32> = x.as_vec().iter().map(|v| 2.0 * v - 1.0).collect();
        let labels = [4u8, 0, 4];
        let r = [0.7f32, -1.3, 0.4];
        let loss = |d: &Discriminator, x: &[f32]| -> f64 {
            let mut d = d.clone();
            let mut a = DActs::default();
            d.forward(x, Some(&labels), &mut a, batch, 1);
            a.logits.iter().zip(&r).map(|(l, r)| (l * r) as f64).sum()
        };
        let mut a = DActs::default();
        let mut trained = d.clone();
        trained.forward(&x, Some(&labels), &mut a, batch, 1);
        let mut gr = Grads {
            dlogits: r.to_vec(),
            ..Grads::default()
        };
        trained.backward(Some(&labels), &a, &mut gr, batch, true, true);
        let h = 1e-2f32;
        let biggest = |g: &[f32], n: usize| {
            let mut idx: Vec<usize> = (0..g.len()).collect();
            idx.sort_by(|&i, &j| g[j].abs().total_cmp(&g[i].abs()));
            idx.truncate(n);
            idx
        };
        for i in biggest(&gr.dimage, 6) {
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss(&d, &up) - loss(&d, &down)) / (2.0 * h as f64);
            let g = gr.dimage[i] as f64;
            assert!(
                (g - numeric).abs() < 0.03 * g.abs(),
                "pixel {i}: {g} vs {numeric}"
            );
        }
        let eg = &trained.embed.as_ref().unwrap().grad;
        // Digits no sample asked for get no gradient.
        assert!(eg[D_DENSE..2 * D_DENSE].iter().all(|&v| v == 0.0));
        for i in biggest(eg, 6) {
            let (mut up, mut down) = (d.clone(), d.clone());
            up.embed.as_mut().unwrap().value[i] += h;
            down.embed.as_mut().unwrap().value[i] -= h;
            let numeric = (loss(&up, &x) - loss(&down, &x)) / (2.0 * h as f64);
            let g = eg[i] as f64;
            assert!(
                (g - numeric).abs() < 0.03 * g.abs(),
                "embedding {i}: {g} vs {numeric}"
            );
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
