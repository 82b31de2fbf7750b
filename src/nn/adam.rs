//! Adam whose state can be saved and restored (dfdx's own keeps its moments private),
//! implementing dfdx's `Optimizer` for any model, with its moments keyed by parameter name.
//!
//! The update is `kernels::adam_delta`, which takes dfdx's Adam kernel's operations in its order
//! and gives each parameter's change; dfdx adds it in place (`Tensor::axpy`), so a step is
//! bit-for-bit the one `dfdx::optim::Adam` takes, on all lanes and threads, and no parameter is
//! copied out and back.
//!
//! Two ways in: `Optimizer::update` (dfdx's trait, with `&Gradients`; dfdx lends a gradient only
//! through `&mut Gradients`, so this path copies each gradient once) and `update_and_zero`
//! (`&mut Gradients`: each gradient is read in place, then zeroed for the next step, which
//! dfdx's loop does with a separate `zero_grads` pass).

use std::collections::BTreeMap;

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
};
use dfdx::optim::{Optimizer, OptimizerUpdateError};
use dfdx::prelude::*;

use super::kernels::{self, AdamStep};
use super::ops;
use super::params::{self, NamedTensor, Names};
use super::profile::{self, OpKind, Pass};

/// PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
pub fn pytorch_defaults(lr: f64) -> AdamConfig {
    AdamConfig {
        lr,
        betas: [0.9, 0.999],
        eps: 1e-8,
        weight_decay: None,
    }
}

/// First and second moments of one parameter.
#[derive(Debug, Clone)]
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
}

/// Adam over the parameters of one model.
#[derive(Debug, Clone)]
pub struct Adam {
    /// Its `lr` may change between steps (schedules); `weight_decay` must stay `None`.
    pub cfg: AdamConfig,
    /// The names the model's parameters are saved under, which key the moments.
    names: Names,
    /// Updates taken so far (Adam's `t`).
    steps: u64,
    moments: BTreeMap<String, Moments>,
    /// Whether updates measure the norm of the gradients they read (one more pass over them).
    measuring: bool,
    /// Sum of the squared gradients the last measured update read.
    grad_squares: Option<f64>,
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
}

impl From<&str> for Names {
    fn from(prefix: &str) -> Self {
        Names::prefixed(prefix)
    }
}

impl Adam {
    /// Adam for a model whose parameters are saved under `names` (a prefix will do).
    pub fn new(cfg: AdamConfig, names: impl Into<Names>) -> Self {
        Adam {
            cfg,
            names: names.into(),
            steps: 0,
            moments: BTreeMap::new(),
            measuring: false,
            grad_squares: None,
        }
    }

    /// From now on, each update measures the L2 norm of the gradients it reads (or, `false`,
    /// stops doing so); the norm of the last one is forgotten either way. Measuring only reads
    /// the gradients: the update is the same.
    pub fn measure_grad_norm(&mut self, on: bool) {
        self.measuring = on;
        self.grad_squares = None;
    }

    /// The L2 norm of all the gradients the last update read, if it measured them and there was
    /// an update since `measure_grad_norm`.
    pub fn grad_norm(&self) -> Option<f32> {
        self.grad_squares.map(|s| s.sqrt() as f32)
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    /// One update of every trainable parameter of `model` from `grads`, each gradient read in
    /// place, then zeroed. A parameter with no gradient entry gets a zero one (its moments
    /// still decay).
    pub fn update_and_zero<M: TensorCollection<f32, Cpu>>(
        &mut self,
        model: &mut M,
        grads: &mut Gradients<f32, Cpu>,
    ) -> Result<(), CpuError> {
        profile::timed(OpKind::Adam, Pass::Forward, || {
            self.walk(model, Grads::Owned(grads))
        })
    }

    fn walk<M: TensorCollection<f32, Cpu>>(
        &mut self,
        model: &mut M,
        grads: Grads,
    ) -> Result<(), CpuError> {
        self.steps += 1;
        if self.measuring {
            self.grad_squares = Some(0.0);
        }
        let c = self.cfg;
        let step = AdamStep::new(c.lr, c.betas, c.eps, self.steps);
        let mut visitor = UpdateVisitor {
            adam: self,
            step,
            grads,
        };
        M::iter_tensors(&mut RecursiveWalker {
            m: (model, String::new()),
            f: &mut visitor,
        })?;
        Ok(())
    }

    /// Updates `p` (saved as `name`) from `grad`, which is left zeroed: the kernel computes the
    /// change, dfdx adds it to the parameter in place.
    fn apply<S: Shape>(
        &mut self,
        name: String,
        p: &mut Tensor<S, f32, Cpu>,
        grad: &mut [f32],
        step: AdamStep,
    ) -> Result<(), CpuError> {
        let len = grad.len();
        let moments = self.moments.entry(name).or_insert_with(|| Moments {
            m: vec![0.0; len],
            v: vec![0.0; len],
        });
        if moments.m.len() != len || moments.v.len() != len || p.shape().num_elements() != len {
            return Err(CpuError::WrongNumElements);
        }
        if let Some(sum) = &mut self.grad_squares {
            *sum += super::norm::sum_of_squares(grad);
        }
        let delta = kernels::adam_delta(grad, &mut moments.m, &mut moments.v, step);
        let delta = p.device().try_tensor_from_vec(delta, *p.shape())?;
        p.try_axpy(1.0, &delta, 1.0)
    }

    /// The moments of `model`'s trainable tensors (not running statistics), as `export`.
    pub fn export_for<M: TensorCollection<f32, Cpu>>(
        &self,
        model: &M,
        prefix: &str,
    ) -> Vec<NamedTensor> {
        self.export(prefix, &params::export_trainable(model, &self.names))
    }

    /// Restores the moments of `model`'s trainable tensors, as `import`.
    pub fn import_for<M: TensorCollection<f32, Cpu>>(
        &mut self,
        model: &M,
        prefix: &str,
        source: &BTreeMap<String, NamedTensor>,
        steps: u64,
    ) -> Result<(), AdamStateError> {
        self.import(
            prefix,
            &params::export_trainable(model, &self.names),
            source,
            steps,
        )
    }

    /// The moments as named tensors: `{prefix}exp_avg.{param}` and `{prefix}exp_avg_sq.{param}`
    /// (PyTorch's names for them), shaped like the parameters in `params`.
    pub fn export(&self, prefix: &str, params: &[NamedTensor]) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        for p in params {
            let (m, v) = match self.moments.get(&p.name) {
                Some(mo) => (mo.m.clone(), mo.v.clone()),
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
                    Some(t) => Ok(t.data.clone()),
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

impl<M: TensorCollection<f32, Cpu>> Optimizer<M, Cpu, f32> for Adam {
    /// One update from `gradients`, which must hold a gradient for every trainable parameter
    /// (as `alloc_grads` and a backward pass leave them); zeroing them is the caller's, as with
    /// dfdx's optimisers.
    fn update(
        &mut self,
        module: &mut M,
        gradients: &Gradients<f32, Cpu>,
    ) -> Result<(), OptimizerUpdateError<CpuError>> {
        self.walk(module, Grads::Shared(gradients))
            .map_err(OptimizerUpdateError::DeviceError)
    }
}

/// Where the update reads gradients from.
enum Grads<'a> {
    /// Borrowed in place, zeroed after use.
    Owned(&'a mut Gradients<f32, Cpu>),
    /// Read-only: each gradient is copied out.
    Shared(&'a Gradients<f32, Cpu>),
}

struct UpdateVisitor<'a> {
    adam: &'a mut Adam,
    step: AdamStep,
    grads: Grads<'a>,
}

impl TensorVisitor<f32, Cpu> for UpdateVisitor<'_> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = CpuError;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, f32, Cpu>,
        (p, path): (&mut Tensor<S, f32, Cpu>, String),
    ) -> Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
        if !opts.do_gradient_update {
            return Ok(None);
        }
        let name = self.adam.names.of(&path);
        match &mut self.grads {
            Grads::Owned(grads) => {
                let grad = grads.get_or_alloc_mut(p)?;
                self.adam.apply(name, p, grad, self.step)?;
            }
            Grads::Shared(grads) => {
                let mut grad = ops::read(&grads.get(p))?;
                self.adam.apply(name, p, &mut grad, self.step)?;
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::params;
    use crate::nn::{Dense, Identity, LeakyRelu};

    type Net = (Dense<5, 3, LeakyRelu>, Dense<3, 1, Identity>);
    type Built = <Net as BuildOnDevice<Cpu, f32>>::Built;

    fn loss_grads(
        model: &Built,
        grads: Gradients<f32, Cpu>,
        dev: &Cpu,
        i: usize,
    ) -> Gradients<f32, Cpu> {
        let x: Tensor<(usize, Const<5>), f32, _> =
            dev.tensor_from_vec([0.1 * i as f32, -0.2, 0.3, 0.4, -0.5].repeat(4), (4, Const));
        let y = model.forward(x.traced(grads));
        y.square().mean().backward()
    }

    #[test]
    fn matches_dfdx_adam_bit_for_bit_on_both_paths() {
        let dev: Cpu = Cpu::seed_from_u64(7);
        let mut fast_model = dev.build_module::<Net, f32>();
        let mut trait_model = fast_model.clone();
        let mut theirs_model = fast_model.clone();
        let cfg = pytorch_defaults(1e-2);
        let mut fast = Adam::new(cfg, "");
        let mut through_trait = Adam::new(cfg, "");
        let mut theirs = dfdx::optim::Adam::new(&theirs_model, cfg);
        let mut g1 = fast_model.alloc_grads();
        let mut g2 = trait_model.alloc_grads();
        let mut g3 = theirs_model.alloc_grads();
        for i in 0..20 {
            g1 = loss_grads(&fast_model, g1, &dev, i);
            fast.update_and_zero(&mut fast_model, &mut g1).unwrap();
            g2 = loss_grads(&trait_model, g2, &dev, i);
            Optimizer::update(&mut through_trait, &mut trait_model, &g2).unwrap();
            trait_model.zero_grads(&mut g2);
            g3 = loss_grads(&theirs_model, g3, &dev, i);
            theirs.update(&mut theirs_model, &g3).unwrap();
            theirs_model.zero_grads(&mut g3);
        }
        let theirs_params = params::export(&theirs_model, "");
        assert_eq!(params::export(&fast_model, ""), theirs_params);
        assert_eq!(params::export(&trait_model, ""), theirs_params);
        assert_eq!(fast.steps(), 20);
    }

    #[test]
    fn measuring_the_gradient_norm_reads_it_and_changes_nothing() {
        let dev: Cpu = Cpu::seed_from_u64(5);
        let mut plain_model = dev.build_module::<Net, f32>();
        let mut measured_model = plain_model.clone();
        let (mut plain, mut measured) = (
            Adam::new(pytorch_defaults(1e-2), ""),
            Adam::new(pytorch_defaults(1e-2), ""),
        );
        let (mut g1, mut g2) = (plain_model.alloc_grads(), measured_model.alloc_grads());
        for i in 0..6 {
            g1 = loss_grads(&plain_model, g1, &dev, i);
            plain.update_and_zero(&mut plain_model, &mut g1).unwrap();
            g2 = loss_grads(&measured_model, g2, &dev, i);
            measured.measure_grad_norm(i % 2 == 0);
            measured
                .update_and_zero(&mut measured_model, &mut g2)
                .unwrap();
            assert_eq!(measured.grad_norm().is_some(), i % 2 == 0);
            if let Some(norm) = measured.grad_norm() {
                assert!(norm.is_finite() && norm > 0.0, "{norm}");
            }
        }
        assert_eq!(
            params::export(&plain_model, ""),
            params::export(&measured_model, "")
        );
    }

    #[test]
    fn exported_state_restores_the_same_trajectory() {
        let dev: Cpu = Cpu::seed_from_u64(3);
        let mut a_model = dev.build_module::<Net, f32>();
        let mut a = Adam::new(pytorch_defaults(1e-2), "");
        let mut ga = a_model.alloc_grads();
        for i in 0..5 {
            ga = loss_grads(&a_model, ga, &dev, i);
            a.update_and_zero(&mut a_model, &mut ga).unwrap();
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
        b.import("opt.", &p, &saved, a.steps()).unwrap();
        let mut gb = b_model.alloc_grads();
        for i in 5..10 {
            ga = loss_grads(&a_model, ga, &dev, i);
            a.update_and_zero(&mut a_model, &mut ga).unwrap();
            gb = loss_grads(&b_model, gb, &dev, i);
            b.update_and_zero(&mut b_model, &mut gb).unwrap();
        }
        assert_eq!(params::export(&a_model, ""), params::export(&b_model, ""));
    }

    #[test]
    fn moments_are_keyed_by_the_saved_names() {
        let dev: Cpu = Cpu::seed_from_u64(3);
        let mut model = dev.build_module::<Net, f32>();
        let names = Names::sequential("model.", &["0", "2"]);
        let mut opt = Adam::new(pytorch_defaults(1e-2), names.clone());
        let mut g = model.alloc_grads();
        g = loss_grads(&model, g, &dev, 1);
        opt.update_and_zero(&mut model, &mut g).unwrap();
        let p = params::export_named(&model, &names);
        let moments = opt.export("opt.", &p);
        assert_eq!(moments[0].name, "opt.exp_avg.model.0.weight");
        assert!(moments[0].data.iter().any(|&m| m != 0.0));
        assert_eq!(moments[4].name, "opt.exp_avg.model.2.weight");
    }

    #[test]
    fn import_reports_missing_moments() {
        let dev: Cpu = Cpu::seed_from_u64(3);
        let model = dev.build_module::<Net, f32>();
        let p = params::export(&model, "");
        let mut a = Adam::new(pytorch_defaults(1e-3), "");
        let err = a.import("opt.", &p, &BTreeMap::new(), 1).unwrap_err();
        assert_eq!(
            err,
            AdamStateError::Missing {
                name: "opt.exp_avg.0.weight".into()
            }
        );
    }
}
