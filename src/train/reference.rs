//! The reference recipe, exactly as the PyTorch program has it: G 100 -> 256 -> 512 -> 784
//! (LeakyReLU 0.2, tanh), D 784 -> 512 -> 256 -> 1 logit (LeakyReLU 0.2), BCE with logits, the
//! non-saturating G loss, Adam with PyTorch's defaults.

use std::collections::BTreeMap;

use dfdx::prelude::*;

use dfdx::nn::tensor_collection::TensorCollection;

use super::bce_step::{Logits, Rows, Together, bce_step, real_then_fake};
use super::gan::{
    Batch, DeviceError, Gan, GanState, IMAGE, LATENT, PhaseTimes, Preset, StateError, StepLosses,
    check_len,
};
use super::nets::{Layout, Nets};
use crate::nn::adam::pytorch_defaults;
use crate::nn::ops::Plain;
use crate::nn::params::NamedTensor;
use crate::nn::{Constant, Dense, FrozenModule, Identity, LeakyRelu, Tanh, ops};

pub type Generator = (
    Dense<LATENT, 256, LeakyRelu>,
    Dense<256, 512, LeakyRelu>,
    Dense<512, IMAGE, Tanh>,
);
pub type Discriminator = (
    Dense<IMAGE, 512, LeakyRelu>,
    Dense<512, 256, LeakyRelu>,
    Dense<256, 1, Identity>,
);

/// PyTorch's `nn.Sequential` index of each dense layer (its activations take the odd ones).
pub const LAYOUT: Layout = Layout {
    g: &["0", "2", "4"],
    d: &["0", "2", "4"],
};

pub struct Reference {
    nets: Nets<Generator, Discriminator>,
    times: PhaseTimes,
}

impl Reference {
    pub fn new(seed: u64, lr: f64) -> Self {
        let dev = Cpu::seed_from_u64(seed);
        // PyTorch builds G before D; so do we, so both draw from one seeded stream in that order.
        let g = dev.build_module::<Generator, f32>();
        let d = dev.build_module::<Discriminator, f32>();
        Reference {
            nets: Nets::new(dev, g, d, LAYOUT, pytorch_defaults(lr), None),
            times: PhaseTimes::default(),
        }
    }

    fn step(&mut self, b: &Batch) -> Result<StepLosses, DeviceError> {
        let (losses, times) = mlp_step(&mut self.nets, b, 1.0)?;
        self.times = times;
        Ok(losses)
    }
}

/// One BCE step of an MLP recipe (this one, `tuned`) on batch `b` (checked), D taught
/// `real_target` for real digits.
pub fn mlp_step<G, D>(
    nets: &mut Nets<G, D>,
    b: &Batch,
    real_target: f32,
) -> Result<(StepLosses, PhaseTimes), DeviceError>
where
    G: TensorCollection<f32, Cpu>
        + Clone
        + ModuleMut<Constant<Rows<LATENT>>, Output = Rows<IMAGE>, Error = CpuError>,
    D: TensorCollection<f32, Cpu>
        + Clone
        + ModuleMut<Constant<Rows<IMAGE>>, Output = Logits, Error = CpuError>
        + FrozenModule<Rows<IMAGE>, Output = Logits>,
{
    check_len(b.real, b.count, IMAGE)?;
    check_len(b.z, b.count, LATENT)?;
    let z = nets
        .dev
        .try_tensor_from_vec(b.z.to_vec(), (b.count, Const::<LATENT>))?;
    let d_step = Together {
        both: |fake: Tensor<(usize, Const<IMAGE>), f32, Cpu>, grads| {
            real_then_fake(b.real, &fake, grads)
        },
        real_target,
    };
    bce_step(nets, z, d_step, Ok)
}

/// The images the sampler of an MLP recipe's `nets` draws for `count` noise vectors `z`
/// (checked).
pub fn mlp_generate<G, D>(
    nets: &Nets<G, D>,
    z: &[f32],
    count: usize,
) -> Result<Vec<f32>, DeviceError>
where
    G: TensorCollection<f32, Cpu>
        + Clone
        + Module<
            Plain<(usize, Const<LATENT>)>,
            Output = Plain<(usize, Const<IMAGE>)>,
            Error = CpuError,
        >,
    D: TensorCollection<f32, Cpu> + Clone,
{
    check_len(z, count, LATENT)?;
    let z = nets
        .dev
        .try_tensor_from_vec(z.to_vec(), (count, Const::<LATENT>))?;
    Ok(ops::read(&nets.sampler().try_forward(z)?)?)
}

/// FLOPs of the three products of `layers` (`(in, out)` each) over `rows` rows.
pub fn product_flops(layers: &[(usize, usize)], rows: usize) -> f64 {
    layers
        .iter()
        .map(|&(i, o)| 2.0 * (rows * i * o) as f64)
        .sum()
}

/// Layer sizes `(in, out)` of the two networks.
const G_LAYERS: [(usize, usize); 3] = [(LATENT, 256), (256, 512), (512, IMAGE)];
const D_LAYERS: [(usize, usize); 3] = [(IMAGE, 512), (512, 256), (256, 1)];

/// FLOPs of one BCE step of batch `b` with the reference's layer sizes (the tuned preset's too;
/// its batch norm and dropout are not products).
pub fn mlp_step_flops(b: usize) -> f64 {
    let (g, d) = (&G_LAYERS[..], &D_LAYERS[..]);
    // D step on 2b rows: forward, weight gradients, input gradients of layers 2 and 3.
    let d_step = 2.0 * product_flops(d, 2 * b) + product_flops(&d[1..], 2 * b);
    // G step: D forward and input gradients, G weight gradients and input gradients of layers 2
    // and 3.
    let g_step = 2.0 * product_flops(d, b) + product_flops(g, b) + product_flops(&g[1..], b);
    product_flops(g, b) + d_step + g_step
}

impl Gan for Reference {
    super::gan::nets_plumbing!();

    fn preset(&self) -> Preset {
        Preset::Reference
    }

    fn latent_dim(&self) -> usize {
        LATENT
    }

    fn step_flops(&self, b: usize) -> f64 {
        mlp_step_flops(b)
    }

    fn generate(
        &self,
        z: &[f32],
        _labels: Option<&[u8]>,
        count: usize,
    ) -> Result<Vec<f32>, DeviceError> {
        mlp_generate(&self.nets, z, count)
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
mod tests;
