//! A running average of a model's weights (an exponential moving average), the model samples
//! are drawn from in the recipes that keep one (Yazici et al. 2019).

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
};
use dfdx::prelude::*;

use super::ops;
use super::params::{self, NamedTensor};
use super::profile::{self, OpKind, Pass};

/// The decay of a weight average after `updates` updates: `target` once it is well under way,
/// less at first (`(1 + t) / (10 + t)`, as TensorFlow's `ExponentialMovingAverage` warms up), so
/// the average forgets the random initial weights within the first hundred steps.
pub fn ema_decay(target: f32, updates: u64) -> f32 {
    let t = updates as f64;
    target.min(((1.0 + t) / (10.0 + t)) as f32)
}

/// Moves every tensor of `avg` (weights and running statistics alike) towards `net`'s:
/// `avg = decay avg + (1 - decay) net`.
pub fn ema_update<M: TensorCollection<f32, Cpu>>(
    avg: &mut M,
    net: &M,
    decay: f32,
) -> Result<(), CpuError> {
    profile::timed(OpKind::Average, Pass::Forward, || {
        let targets = params::export(net, "");
        let mut visitor = Towards {
            targets: targets.into_iter(),
            decay,
            scratch: Vec::new(),
        };
        M::iter_tensors(&mut RecursiveWalker {
            m: (avg, String::new()),
            f: &mut visitor,
        })?;
        Ok(())
    })
}

struct Towards {
    /// `net`'s tensors in the order the walk visits `avg`'s (the same type's order).
    targets: std::vec::IntoIter<NamedTensor>,
    decay: f32,
    scratch: Vec<f32>,
}

impl TensorVisitor<f32, Cpu> for Towards {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = CpuError;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, Cpu>,
        (a, path): (&mut Tensor<S, f32, Cpu>, String),
    ) -> Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
        let target = self.targets.next().filter(|t| t.name == path);
        let Some(target) = target else {
            return Err(CpuError::WrongNumElements);
        };
        ops::read_into(a, &mut self.scratch)?;
        if target.data.len() != self.scratch.len() {
            return Err(CpuError::WrongNumElements);
        }
        let d = self.decay;
        for (a, &p) in self.scratch.iter_mut().zip(&target.data) {
            *a = d * *a + (1.0 - d) * p;
        }
        a.copy_from(&self.scratch);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Dense, Tanh};

    #[test]
    fn the_average_warms_up_then_follows_slowly() {
        assert_eq!(ema_decay(0.999, 0), 0.1);
        assert!((ema_decay(0.999, 90) - 0.91).abs() < 1e-6);
        assert_eq!(ema_decay(0.999, 1_000_000), 0.999);
        let dev: Cpu = Default::default();
        let mut avg = dev.build_module::<(Dense<2, 1, Tanh>,), f32>();
        let mut net = avg.clone();
        avg.0.weight = dev.tensor([[1.0, 2.0]]);
        avg.0.bias = dev.tensor([4.0]);
        net.0.weight = dev.tensor([[10.0, 10.0]]);
        net.0.bias = dev.tensor([0.0]);
        ema_update(&mut avg, &net, 0.75).unwrap();
        assert_eq!(avg.0.weight.array(), [[3.25, 4.0]]);
        assert_eq!(avg.0.bias.array(), [3.0]);
    }
}
