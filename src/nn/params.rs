//! A dfdx model's parameters by name, as plain `f32` vectors: the checkpoint form of every
//! model, and the keys of the optimiser's moments.
//!
//! Names start from dfdx's field paths (`0.weight`, `2.bias`, ...) with a prefix in front. A
//! tuple of fused layers has fewer elements than the PyTorch `nn.Sequential` it stands for (a
//! `Dense` is PyTorch's `Linear` and its activation), so `Names` can also map each tuple index to
//! its `nn.Sequential` index: a generator `(Dense, Dense, Dense)` saves `model.0`, `model.2` and
//! `model.4`, as PyTorch's `Linear, LeakyReLU, Linear, LeakyReLU, Linear, Tanh` does.

use std::collections::BTreeMap;

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
    ViewTensorRef,
};
use dfdx::prelude::*;

/// One parameter tensor, copied out of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Why parameters could not be put into a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    #[error("tensor `{name}` is missing")]
    Missing { name: String },
    #[error("tensor `{name}` has shape {found:?}, the model needs {expected:?}")]
    WrongShape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
}

/// How a model's tensors are named: a prefix, and optionally the `nn.Sequential` index of each
/// element of the model's tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
    indices: Option<&'static [&'static str]>,
}

impl Names {
    /// dfdx's paths behind `prefix`.
    pub fn prefixed(prefix: &str) -> Self {
        Names {
            prefix: prefix.to_string(),
            indices: None,
        }
    }

    /// Behind `prefix`, tuple element `i` named `indices[i]`.
    pub fn sequential(prefix: &str, indices: &'static [&'static str]) -> Self {
        Names {
            prefix: prefix.to_string(),
            indices: Some(indices),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The same layout behind another prefix (a weight average's, `ema.model.`).
    pub fn with_prefix(&self, prefix: &str) -> Self {
        Names {
            prefix: prefix.to_string(),
            indices: self.indices,
        }
    }

    /// The saved name of dfdx path `path`.
    pub fn of(&self, path: &str) -> String {
        let mapped = self.indices.and_then(|indices| {
            let (first, rest) = path.split_once('.')?;
            let index = indices.get(first.parse::<usize>().ok()?)?;
            Some(format!("{index}.{rest}"))
        });
        format!("{}{}", self.prefix, mapped.as_deref().unwrap_or(path))
    }
}

/// Copies every parameter of `model` out, in visiting order, names prefixed with `prefix`.
pub fn export<M: TensorCollection<f32, Cpu>>(model: &M, prefix: &str) -> Vec<NamedTensor> {
    export_named(model, &Names::prefixed(prefix))
}

/// Copies every parameter of `model` out, in visiting order, named by `names`.
pub fn export_named<M: TensorCollection<f32, Cpu>>(model: &M, names: &Names) -> Vec<NamedTensor> {
    walk_export(model, names, false)
}

/// Copies out only the tensors an optimiser updates (not, say, batch norm's running
/// statistics), in visiting order, named by `names`.
pub fn export_trainable<M: TensorCollection<f32, Cpu>>(
    model: &M,
    names: &Names,
) -> Vec<NamedTensor> {
    walk_export(model, names, true)
}

fn walk_export<M: TensorCollection<f32, Cpu>>(
    model: &M,
    names: &Names,
    trainable_only: bool,
) -> Vec<NamedTensor> {
    let mut out = Exporter {
        names,
        trainable_only,
        tensors: Vec::new(),
    };
    let walked = M::iter_tensors(&mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut out,
    });
    match walked {
        Ok(_) => out.tensors,
        Err(never) => match never {},
    }
}

/// Copies parameters into `model` from `source`, looked up by prefixed name; every parameter of
/// the model must be present with the right shape. Checks everything before changing anything.
pub fn import<M: TensorCollection<f32, Cpu>>(
    model: &mut M,
    prefix: &str,
    source: &BTreeMap<String, NamedTensor>,
) -> Result<(), ParamError> {
    import_named(model, &Names::prefixed(prefix), source)
}

/// `import` with the names of `names`.
pub fn import_named<M: TensorCollection<f32, Cpu>>(
    model: &mut M,
    names: &Names,
    source: &BTreeMap<String, NamedTensor>,
) -> Result<(), ParamError> {
    for wanted in export_named(model, names) {
        match source.get(&wanted.name) {
            None => return Err(ParamError::Missing { name: wanted.name }),
            Some(t) if t.shape != wanted.shape || t.data.len() != wanted.data.len() => {
                return Err(ParamError::WrongShape {
                    name: wanted.name,
                    found: t.shape.clone(),
                    expected: wanted.shape,
                });
            }
            Some(_) => {}
        }
    }
    let mut imp = Importer { names, source };
    let walked = M::iter_tensors(&mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut imp,
    });
    match walked {
        Ok(_) => Ok(()),
        Err(never) => match never {},
    }
}

struct Exporter<'a> {
    names: &'a Names,
    trainable_only: bool,
    tensors: Vec<NamedTensor>,
}

impl TensorVisitor<f32, Cpu> for Exporter<'_> {
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = std::convert::Infallible;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, f32, Cpu>,
        (t, path): (&Tensor<S, f32, Cpu>, String),
    ) -> Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
        if self.trainable_only && !opts.do_gradient_update {
            return Ok(None);
        }
        self.tensors.push(NamedTensor {
            name: self.names.of(&path),
            shape: t.shape().concrete().into_iter().collect(),
            data: t.as_vec(),
        });
        Ok(None)
    }
}

struct Importer<'a> {
    names: &'a Names,
    source: &'a BTreeMap<String, NamedTensor>,
}

impl TensorVisitor<f32, Cpu> for Importer<'_> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = std::convert::Infallible;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, Cpu>,
        (t, path): (&mut Tensor<S, f32, Cpu>, String),
    ) -> Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
        // `import` checked every name and length before walking.
        if let Some(src) = self.source.get(&self.names.of(&path)) {
            t.copy_from(&src.data);
        }
        Ok(None)
    }
}

/// `into[t] += from[t]` for every trainable tensor `t` of `model` (a gradient either lacks
/// counts as zeros).
pub fn add_grads<M: TensorCollection<f32, Cpu>>(
    model: &M,
    into: &mut Gradients<f32, Cpu>,
    from: &mut Gradients<f32, Cpu>,
) -> Result<(), CpuError> {
    M::iter_tensors(&mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut GradAdder { into, from },
    })?;
    Ok(())
}

struct GradAdder<'a> {
    into: &'a mut Gradients<f32, Cpu>,
    from: &'a mut Gradients<f32, Cpu>,
}

impl TensorVisitor<f32, Cpu> for GradAdder<'_> {
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = CpuError;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, f32, Cpu>,
        (t, _): (&Tensor<S, f32, Cpu>, String),
    ) -> Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
        if opts.do_gradient_update {
            let src = self.from.get_or_alloc_mut(t)?;
            super::kernels::add_into(self.into.get_or_alloc_mut(t)?, src);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Mlp = (Linear<3, 4>, dfdx::nn::builders::ReLU, Linear<4, 2>);

    #[test]
    fn added_gradients_are_those_of_both_batches() {
        let dev: Cpu = Cpu::seed_from_u64(2);
        let m = dev.build_module::<Mlp, f32>();
        let rows: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin()).collect();
        let grads = |v: &[f32]| {
            let n = v.len() / 3;
            let x = dev.tensor_from_vec(v.to_vec(), (n, Const::<3>));
            m.forward(x.traced(m.alloc_grads())).sum().backward()
        };
        let (mut first, mut second) = (grads(&rows[..6]), grads(&rows[6..]));
        let both = grads(&rows);
        add_grads(&m, &mut first, &mut second).unwrap();
        let pairs = [
            (
                first.get(&m.0.weight).as_vec(),
                both.get(&m.0.weight).as_vec(),
            ),
            (first.get(&m.2.bias).as_vec(), both.get(&m.2.bias).as_vec()),
        ];
        for (a, b) in pairs {
            assert!(
                a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-5),
                "{a:?} {b:?}"
            );
        }
        // Nothing to add is adding zeros.
        let before = first.get(&m.0.bias).as_vec();
        add_grads(&m, &mut first, &mut Gradients::leaky()).unwrap();
        assert_eq!(first.get(&m.0.bias).as_vec(), before);
    }

    #[test]
    fn names_follow_the_tuple_indices() {
        let dev: Cpu = Cpu::seed_from_u64(1);
        let m = dev.build_module::<Mlp, f32>();
        let names: Vec<String> = export(&m, "model.").into_iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "model.0.weight",
                "model.0.bias",
                "model.2.weight",
                "model.2.bias"
            ]
        );
    }

    #[test]
    fn sequential_names_map_tuple_indices_to_pytorch_ones() {
        let dev: Cpu = Cpu::seed_from_u64(1);
        type Fused = (
            crate::nn::Dense<3, 4, crate::nn::LeakyRelu>,
            crate::nn::Dense<4, 2, crate::nn::Tanh>,
        );
        let m = dev.build_module::<Fused, f32>();
        let names = Names::sequential("model.", &["0", "2"]);
        let saved: Vec<String> = export_named(&m, &names)
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(
            saved,
            [
                "model.0.weight",
                "model.0.bias",
                "model.2.weight",
                "model.2.bias"
            ]
        );
        let map = export_named(&m, &names)
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        let mut other = Cpu::seed_from_u64(2).build_module::<Fused, f32>();
        import_named(&mut other, &names, &map).unwrap();
        assert_eq!(other.1.weight.as_vec(), m.1.weight.as_vec());
        assert_eq!(
            names.with_prefix("ema.model.").of("1.bias"),
            "ema.model.2.bias"
        );
    }

    #[test]
    fn export_then_import_reproduces_the_model() {
        let dev: Cpu = Cpu::seed_from_u64(1);
        let a = dev.build_module::<Mlp, f32>();
        let mut b = Cpu::seed_from_u64(2).build_module::<Mlp, f32>();
        let x = dev.tensor([[0.5f32, -1.0, 2.0]]);
        assert_ne!(a.forward(x.clone()).array(), b.forward(x.clone()).array());
        let map = export(&a, "g.")
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        import(&mut b, "g.", &map).unwrap();
        assert_eq!(a.forward(x.clone()).array(), b.forward(x).array());
    }

    #[test]
    fn import_rejects_missing_and_misshapen_tensors_without_changing_the_model() {
        let dev: Cpu = Cpu::seed_from_u64(1);
        let a = dev.build_module::<Mlp, f32>();
        let mut b = Cpu::seed_from_u64(2).build_module::<Mlp, f32>();
        let before = export(&b, "");
        let mut map: BTreeMap<String, NamedTensor> = export(&a, "")
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        map.remove("2.bias");
        assert_eq!(
            import(&mut b, "", &map),
            Err(ParamError::Missing {
                name: "2.bias".into()
            })
        );
        map.insert(
            "2.bias".into(),
            NamedTensor {
                name: "2.bias".into(),
                shape: vec![3],
                data: vec![0.0; 3],
            },
        );
        assert!(matches!(
            import(&mut b, "", &map),
            Err(ParamError::WrongShape { .. })
        ));
        assert_eq!(export(&b, ""), before);
    }
}
