//! Adam whose state can be saved and restored: dfdx's own keeps its moments private.
//!
//! The update is dfdx's Adam kernel (`AdamConfig::try_update`), so a step is bit-for-bit the one
//! `dfdx::optim::Adam` takes; only the moments live here, keyed by parameter name.

use std::collections::BTreeMap;

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
};
use dfdx::prelude::*;

use super::params::NamedTensor;

/// PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
pub fn pytorch_defaults(lr: f64) -> AdamConfig {
    AdamConfig {
        lr,
        betas: [0.9, 0.999],
        eps: 1e-8,
        weight_decay: None,
    }
}

/// dfdx's CPU vector type, which its Adam kernel takes.
type CpuVec = <Cpu as Storage<f32>>::Vec;

/// First and second moments of one parameter.
#[derive(Debug, Clone)]
struct Moments {
    m: CpuVec,
    v: CpuVec,
}

/// Adam over the parameters of one model.
#[derive(Debug, Clone)]
pub struct Adam {
    pub cfg: AdamConfig,
    /// Prepended to dfdx's parameter paths, so moments carry the names the parameters are
    /// saved under.
    param_prefix: String,
    /// Updates taken so far (Adam's `t`).
    steps: u64,
    moments: BTreeMap<String, Moments>,
}

/// Why optimiser state could not be restored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdamStateError {
    #[error("optimiser moment `{name}` is missing")]
    Missing { name: String },
    #[error("optimiser moment `{name}` has {found} values, the parameter has {expected}")]
    WrongLength {
        name: String,
        found: usize,
        expected: usize,
    },
    #[error("out of memory while restoring optimiser state")]
    OutOfMemory,
}

impl Adam {
    pub fn new(cfg: AdamConfig, param_prefix: &str) -> Self {
        Adam {
            cfg,
            param_prefix: param_prefix.to_string(),
            steps: 0,
            moments: BTreeMap::new(),
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Applies one Adam update to every parameter of `model` from `grads`, then zeroes `grads`.
    /// A parameter with no gradient entry is updated with a zero gradient, as PyTorch would not;
    /// the recipes here give every parameter a gradient.
    pub fn update<M: TensorCollection<f32, Cpu>>(
        &mut self,
        model: &mut M,
        grads: &mut Gradients<f32, Cpu>,
    ) -> Result<(), CpuError> {
        self.steps += 1;
        let t = i32::try_from(self.steps).unwrap_or(i32::MAX);
        let mut visitor = UpdateVisitor {
            adam: self,
            t,
            grads,
        };
        M::iter_tensors(&mut RecursiveWalker {
            m: (model, String::new()),
            f: &mut visitor,
        })?;
        Ok(())
    }

    /// The moments as named tensors: `{prefix}exp_avg.{param}` and `{prefix}exp_avg_sq.{param}`
    /// (PyTorch's names for them), shaped like the parameters in `params`.
    pub fn export(&self, prefix: &str, params: &[NamedTensor]) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        for p in params {
            let (m, v) = match self.moments.get(&p.name) {
                Some(mo) => (mo.m.to_vec(), mo.v.to_vec()),
                None => (vec![0.0; p.data.len()], vec![0.0; p.data.len()]),
            };
            for (kind, data) in [("exp_avg", m), ("exp_avg_sq", v)] {
                out.push(NamedTensor {
                    name: format!("{prefix}{kind}.{}", p.name),
                    shape: p.shape.clone(),
                    data,
                });
            }
        }
        out
    }

    /// Restores the moments written by `export` for the parameters in `params`, and the step
    /// count. Checks everything before changing anything.
    pub fn import(
        &mut self,
        dev: &Cpu,
        prefix: &str,
        params: &[NamedTensor],
        source: &BTreeMap<String, NamedTensor>,
        steps: u64,
    ) -> Result<(), AdamStateError> {
        let mut restored = BTreeMap::new();
        for p in params {
            let get = |kind: &str| {
                let name = format!("{prefix}{kind}.{}", p.name);
                match source.get(&name) {
                    None => Err(AdamStateError::Missing { name }),
                    Some(t) if t.data.len() != p.data.len() => Err(AdamStateError::WrongLength {
                        name,
                        found: t.data.len(),
                        expected: p.data.len(),
                    }),
                    Some(t) => {
                        let mut v = dev
                            .try_alloc_len(t.data.len())
                            .map_err(|_| AdamStateError::OutOfMemory)?;
                        v.copy_from_slice(&t.data);
                        Ok(v)
                    }
                }
            };
            let m = get("exp_avg")?;
            let v = get("exp_avg_sq")?;
            restored.insert(p.name.clone(), Moments { m, v });
        }
        self.moments = restored;
        self.steps = steps;
        Ok(())
    }
}

struct UpdateVisitor<'a> {
    adam: &'a mut Adam,
    t: i32,
    grads: &'a mut Gradients<f32, Cpu>,
}

impl TensorVisitor<f32, Cpu> for UpdateVisitor<'_> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = CpuError;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, f32, Cpu>,
        (p, name): (&mut Tensor<S, f32, Cpu>, String),
    ) -> Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
        if !opts.do_gradient_update {
            return Ok(None);
        }
        let key = format!("{}{name}", self.adam.param_prefix);
        let moments = match self.adam.moments.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let len = p.shape().num_elements();
                let dev = p.device();
                e.insert(Moments {
                    m: dev.try_alloc_len(len)?,
                    v: dev.try_alloc_len(len)?,
                })
            }
        };
        let grad = self.grads.get_or_alloc_mut(p)?;
        let result = self
            .adam
            .cfg
            .try_update(self.t, p, &mut moments.m, &mut moments.v, grad);
        grad.iter_mut().for_each(|g| *g = 0.0);
        result?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::params;
    use dfdx::optim::Optimizer;

    type Net = (
        Linear<5, 3>,
        crate::train::layers::LeakyRelu02,
        Linear<3, 1>,
    );

    fn loss_grads(
        model: &<Net as BuildOnDevice<Cpu, f32>>::Built,
        grads: Gradients<f32, Cpu>,
        dev: &Cpu,
        i: usize,
    ) -> Gradients<f32, Cpu> {
        let x: Tensor<Rank2<4, 5>, f32, _> =
            dev.tensor([[0.1 * i as f32, -0.2, 0.3, 0.4, -0.5]; 4]);
        let y = model.forward(x.traced(grads));
        y.square().mean().backward()
    }

    #[test]
    fn matches_dfdx_adam_bit_for_bit() {
        let dev: Cpu = Cpu::seed_from_u64(7);
        let mut ours_model = dev.build_module::<Net, f32>();
        let mut theirs_model = ours_model.clone();
        let cfg = pytorch_defaults(1e-2);
        let mut ours = Adam::new(cfg, "");
        let mut theirs = dfdx::optim::Adam::new(&theirs_model, cfg);
        let mut g1 = ours_model.alloc_grads();
        let mut g2 = theirs_model.alloc_grads();
        for i in 0..20 {
            g1 = loss_grads(&ours_model, g1, &dev, i);
            ours.update(&mut ours_model, &mut g1).unwrap();
            g2 = loss_grads(&theirs_model, g2, &dev, i);
            theirs.update(&mut theirs_model, &g2).unwrap();
            theirs_model.zero_grads(&mut g2);
        }
        assert_eq!(
            params::export(&ours_model, ""),
            params::export(&theirs_model, "")
        );
        assert_eq!(ours.steps(), 20);
    }

    #[test]
    fn exported_state_restores_the_same_trajectory() {
        let dev: Cpu = Cpu::seed_from_u64(3);
        let mut a_model = dev.build_module::<Net, f32>();
        let mut a = Adam::new(pytorch_defaults(1e-2), "");
        let mut ga = a_model.alloc_grads();
        for i in 0..5 {
            ga = loss_grads(&a_model, ga, &dev, i);
            a.update(&mut a_model, &mut ga).unwrap();
        }
        // Snapshot, then continue both the original and a restored copy.
        let p = params::export(&a_model, "");
        let saved: BTreeMap<String, NamedTensor> = a
            .export("opt.", &p)
            .into_iter()
            .chain(p.iter().cloned())
            .map(|t| (t.name.clone(), t))
            .collect();
        let mut b_model = Cpu::seed_from_u64(99).build_module::<Net, f32>();
        params::import(&mut b_model, "", &saved).unwrap();
        let mut b = Adam::new(pytorch_defaults(1e-2), "");
        b.import(&dev, "opt.", &p, &saved, a.steps()).unwrap();
        let mut gb = b_model.alloc_grads();
        for i in 5..10 {
            ga = loss_grads(&a_model, ga, &dev, i);
            a.update(&mut a_model, &mut ga).unwrap();
            gb = loss_grads(&b_model, gb, &dev, i);
            b.update(&mut b_model, &mut gb).unwrap();
        }
        assert_eq!(params::export(&a_model, ""), params::export(&b_model, ""));
    }

    #[test]
    fn import_reports_missing_moments() {
        let dev: Cpu = Cpu::seed_from_u64(3);
        let model = dev.build_module::<Net, f32>();
        let p = params::export(&model, "");
        let mut a = Adam::new(pytorch_defaults(1e-3), "");
        let err = a.import(&dev, "opt.", &p, &BTreeMap::new(), 1).unwrap_err();
        assert_eq!(
            err,
            AdamStateError::Missing {
                name: "opt.exp_avg.0.weight".into()
            }
        );
    }
}
