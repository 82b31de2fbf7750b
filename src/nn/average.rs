//! A running average of a model's weights (an exponential moving average), the model samples
//! are drawn from in the recipes that keep one (Yazici et al. 2019).

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorRef,
};
use dfdx::prelude::*;

use super::profile::{self, OpKind, Pass};

/// The decay of a weight average after `updates` updates: `target` once it is well under way,
/// less at first (`(1 + t) / (10 + t)`, as TensorFlow's `ExponentialMovingAverage` warms up), so
/// the average forgets the random initial weights within the first hundred steps.
pub fn ema_decay(target: f32, updates: u64) -> f32 {
    let t = updates as f64;
    target.min(((1.0 + t) / (10.0 + t)) as f32)
}

/// Moves every tensor of `avg` (weights and running statistics alike) towards `net`'s:
/// `avg = decay avg + (1 - decay) net`, in place, by dfdx's `Tensor::axpy` (each value
/// `avg * decay + net * (1 - decay)`, the same numbers as the formula above), with no copies.
pub fn ema_update<M: TensorCollection<f32, Cpu>>(
    avg: &mut M,
    net: &M,
    decay: f32,
) -> Result<(), CpuError> {
    profile::timed(OpKind::Average, Pass::Forward, || {
        let mut visitor = Towards { decay };
        M::iter_tensors(&mut RecursiveWalker {
            m: (avg, net),
            f: &mut visitor,
        })?;
        Ok(())
    })
}

/// Visits `avg`'s and `net`'s tensors side by side, moving each of `avg`'s.
struct Towards {
    decay: f32,
}

impl TensorVisitor<f32, Cpu> for Towards {
    type Viewer = (ViewTensorMut, ViewTensorRef);
    type Err = CpuError;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, Cpu>,
        (a, p): (&mut Tensor<S, f32, Cpu>, &Tensor<S, f32, Cpu>),
    ) -> Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
        let d = self.decay;
        a.try_axpy(d, p, 1.0 - d)?;
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
