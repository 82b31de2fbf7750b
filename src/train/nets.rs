//! A recipe's two dfdx networks with their optimisers, gradients and (optionally) a running
//! average of G's weights, and their saved form: the tensors under the names every checkpoint
//! uses (`model.*`, `discriminator.model.*`, `ema.model.*`, `optimizer.generator.exp_avg.*`, ...)
//! and the step counters.

use std::collections::BTreeMap;

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::*;

use super::gan::{DeviceError, GanState, GradNorms, StateError, counter};
use crate::nn::adam::Adam;
use crate::nn::average::{ema_decay, ema_update};
use crate::nn::params::{self, NamedTensor, Names};

/// Where G's tensors are saved: PyTorch's `model.N.weight`.
pub const G_PREFIX: &str = "model.";
pub const D_PREFIX: &str = "discriminator.model.";
pub const G_OPT_PREFIX: &str = "optimizer.generator.";
pub const D_OPT_PREFIX: &str = "optimizer.discriminator.";
pub const G_STEPS: &str = "optimizer.generator.steps";
pub const D_STEPS: &str = "optimizer.discriminator.steps";
/// Where a generator's weight average is saved.
pub const EMA_PREFIX: &str = "ema.model.";
/// The decay of the generators' weight averages: a horizon of about a thousand steps.
pub const EMA_DECAY: f32 = 0.999;

/// How a recipe lays its networks out: the `nn.Sequential` index of each element of G's and D's
/// tuples, which names their tensors in checkpoints.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub g: &'static [&'static str],
    pub d: &'static [&'static str],
}

/// A generator `G` and a discriminator `D` (dfdx modules) with everything their training keeps.
#[derive(Debug)]
pub struct Nets<G, D> {
    pub dev: Cpu,
    pub g: G,
    pub d: D,
    pub opt_g: Adam,
    pub opt_d: Adam,
    /// Kept between steps so each step reuses the buffers.
    pub g_grads: Gradients<f32, Cpu>,
    pub d_grads: Gradients<f32, Cpu>,
    /// A running average of G's weights and its target decay; draws the samples when present.
    pub ema: Option<(G, f32)>,
    /// G's and D's rates as factors of the rate `set_lr` is given (two time-scale rates).
    pub lr_factors: [f64; 2],
}

impl<G, D> Nets<G, D>
where
    G: TensorCollection<f32, Cpu> + Clone,
    D: TensorCollection<f32, Cpu> + Clone,
{
    /// `g` and `d` with fresh Adams of `cfg`, named as `layout` says; with `ema`, a weight
    /// average of G starting from G's weights and kept with that decay.
    pub fn new(dev: Cpu, g: G, d: D, layout: Layout, cfg: AdamConfig, ema: Option<f32>) -> Self {
        let opt_g = Adam::new(cfg, Names::sequential(G_PREFIX, layout.g));
        let opt_d = Adam::new(cfg, Names::sequential(D_PREFIX, layout.d));
        Nets {
            g_grads: g.alloc_grads(),
            d_grads: d.alloc_grads(),
            ema: ema.map(|decay| (g.clone(), decay)),
            dev,
            g,
            d,
            opt_g,
            opt_d,
            lr_factors: [1.0, 1.0],
        }
    }

    /// Tensors and step counters.
    pub fn state(&self) -> GanState {
        let (g_names, d_names) = (self.opt_g.names(), self.opt_d.names());
        let mut tensors = params::export_named(&self.g, g_names);
        tensors.extend(params::export_named(&self.d, d_names));
        if let Some((ema, _)) = &self.ema {
            tensors.extend(params::export_named(ema, &g_names.with_prefix(EMA_PREFIX)));
        }
        tensors.extend(self.opt_g.export_for(&self.g, G_OPT_PREFIX));
        tensors.extend(self.opt_d.export_for(&self.d, D_OPT_PREFIX));
        let counters = BTreeMap::from([
            (G_STEPS.to_string(), self.opt_g.steps()),
            (D_STEPS.to_string(), self.opt_d.steps()),
        ]);
        GanState { tensors, counters }
    }

    /// These networks as `state` describes them, or the first problem; `self` is left as it is.
    pub fn loaded(
        &self,
        state: &BTreeMap<String, NamedTensor>,
        counters: &BTreeMap<String, u64>,
    ) -> Result<Self, StateError> {
        let (g_steps, d_steps) = (counter(counters, G_STEPS)?, counter(counters, D_STEPS)?);
        let (mut g, mut d) = (self.g.clone(), self.d.clone());
        params::import_named(&mut g, self.opt_g.names(), state)?;
        params::import_named(&mut d, self.opt_d.names(), state)?;
        let ema = match &self.ema {
            None => None,
            Some((ema, decay)) => {
                let mut staged = ema.clone();
                let names = self.opt_g.names().with_prefix(EMA_PREFIX);
                params::import_named(&mut staged, &names, state)?;
                Some((staged, *decay))
            }
        };
        let (mut opt_g, mut opt_d) = (self.opt_g.clone(), self.opt_d.clone());
        opt_g.import_for(&g, G_OPT_PREFIX, state, g_steps)?;
        opt_d.import_for(&d, D_OPT_PREFIX, state, d_steps)?;
        Ok(Nets {
            dev: self.dev.clone(),
            g_grads: g.alloc_grads(),
            d_grads: d.alloc_grads(),
            g,
            d,
            opt_g,
            opt_d,
            ema,
            lr_factors: self.lr_factors,
        })
    }

    /// As `Gan::measure_grad_norms`.
    pub fn measure_grad_norms(&mut self, on: bool) {
        self.opt_g.measure_grad_norm(on);
        self.opt_d.measure_grad_norm(on);
    }

    /// As `Gan::grad_norms`: what the two optimisers measured.
    pub fn grad_norms(&self) -> GradNorms {
        GradNorms {
            g: self.opt_g.grad_norm(),
            d: self.opt_d.grad_norm(),
        }
    }

    /// Sets both optimisers' rates: `lr` times each one's factor.
    pub fn set_lr(&mut self, lr: f64) {
        self.opt_g.cfg.lr = lr * self.lr_factors[0];
        self.opt_d.cfg.lr = lr * self.lr_factors[1];
    }

    /// Moves the weight average, if any, towards G after a generator update.
    pub fn update_average(&mut self) -> Result<(), DeviceError> {
        if let Some((ema, target)) = &mut self.ema {
            ema_update(ema, &self.g, ema_decay(*target, self.opt_g.steps()))?;
        }
        Ok(())
    }

    /// The generator samples come from: the weight average when there is one.
    pub fn sampler(&self) -> &G {
        self.ema.as_ref().map_or(&self.g, |(ema, _)| ema)
    }
}
