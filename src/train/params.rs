//! Reading and writing a dfdx model's parameters by name, as plain `f32` vectors.
//!
//! Names are dfdx's field paths (`0.weight`, `2.bias`, ...); callers add a prefix. For a flat
//! `(Linear, act, Linear, act, Linear, ...)` tuple these are exactly the indices PyTorch's
//! `nn.Sequential` gives the same layers.

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

/// Copies every parameter of `model` out, in visiting order, names prefixed with `prefix`.
pub fn export<M: TensorCollection<f32, Cpu>>(model: &M, prefix: &str) -> Vec<NamedTensor> {
    let mut out = Exporter {
        prefix,
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
    for wanted in export(model, prefix) {
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
    let mut imp = Importer { prefix, source };
    let walked = M::iter_tensors(&mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut imp,
    });
    match walked {
        Ok(_) => Ok(()),
        Err(never) => match never {},
    }
}

fn full_name(prefix: &str, path: &str) -> String {
    format!("{prefix}{path}")
}

struct Exporter<'a> {
    prefix: &'a str,
    tensors: Vec<NamedTensor>,
}

impl TensorVisitor<f32, Cpu> for Exporter<'_> {
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = std::convert::Infallible;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, Cpu>,
        (t, path): (&Tensor<S, f32, Cpu>, String),
    ) -> Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
        self.tensors.push(NamedTensor {
            name: full_name(self.prefix, &path),
            shape: t.shape().concrete().into_iter().collect(),
            data: t.as_vec(),
        });
        Ok(None)
    }
}

struct Importer<'a> {
    prefix: &'a str,
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
        if let Some(src) = self.source.get(&full_name(self.prefix, &path)) {
            t.copy_from(&src.data);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Mlp = (
        Linear<3, 4>,
        crate::train::layers::LeakyRelu02,
        Linear<4, 2>,
    );

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
