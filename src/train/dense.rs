//! A fused dense layer `y = x W^T + b` with compile-time sizes, as the fused recipes use it:
//! parameters in `Param`s named like PyTorch's `nn.Linear`, products through the `gemm` kernels,
//! and bias plus activation left to the caller so they run in one pass.

use dfdx::prelude::*;

use super::param::{Layer, Param};
use crate::nn::kernels;

/// `I` inputs to `O` outputs; `weight` is `O x I`, as dfdx and PyTorch store it.
#[derive(Debug, Clone)]
pub struct Linear<const I: usize, const O: usize> {
    pub weight: Param,
    pub bias: Param,
}

impl<const I: usize, const O: usize> Linear<I, O> {
    /// Initialised as dfdx's (and PyTorch's) `Linear<I, O>` is: uniform in +-1/sqrt(I) for
    /// weights and biases, drawn from `dev`'s stream.
    pub fn dfdx_init(dev: &Cpu) -> Self {
        let built = dev.build_module::<dfdx::nn::builders::Linear<I, O>, f32>();
        Linear {
            weight: Param::new(&[O, I], built.weight.as_vec()),
            bias: Param::new(&[O], built.bias.as_vec()),
        }
    }

    /// Weights normal with mean 0 and deviation `std`, biases 0 (DCGAN's initialisation).
    pub fn normal_init(dev: &Cpu, std: f32) -> Self {
        let w: Tensor<Rank2<O, I>, f32, Cpu> = dev.sample_normal();
        Linear {
            weight: Param::new(&[O, I], w.as_vec().iter().map(|v| v * std).collect()),
            bias: Param::new(&[O], vec![0.0; O]),
        }
    }

    pub const FLOPS_PER_ROW: f64 = 2.0 * (I * O) as f64;

    /// `y = x W^T`, without the bias (which the caller adds with its activation).
    pub fn product(&self, x: &[f32], y: &mut Vec<f32>, batch: usize) {
        y.resize(batch * O, 0.0);
        kernels::forward(&x[..batch * I], &self.weight.value, y, batch, I, O);
    }

    /// `y = x W^T + b`.
    pub fn forward(&self, x: &[f32], y: &mut Vec<f32>, batch: usize) {
        self.product(x, y, batch);
        kernels::add_bias(y, &self.bias.value);
    }

    /// Sets the gradients of `W` and `b` from `dy` and the layer's input `x`; adds to them
    /// when `accumulate`.
    pub fn param_grads(&mut self, dy: &[f32], x: &[f32], batch: usize, accumulate: bool) {
        kernels::weight_grad(
            &dy[..batch * O],
            &x[..batch * I],
            &mut self.weight.grad,
            batch,
            I,
            O,
            accumulate,
        );
        kernels::bias_grad(&dy[..batch * O], &mut self.bias.grad, accumulate);
    }

    /// `dx = dy W`.
    pub fn input_grad(&self, dy: &[f32], dx: &mut Vec<f32>, batch: usize) {
        dx.resize(batch * I, 0.0);
        kernels::input_grad(&dy[..batch * O], &self.weight.value, dx, batch, I, O);
    }
}

impl<const I: usize, const O: usize> Layer for Linear<I, O> {
    fn tensors(&self) -> Vec<(&'static str, &Param)> {
        vec![("weight", &self.weight), ("bias", &self.bias)]
    }
    fn tensors_mut(&mut self) -> Vec<(&'static str, &mut Param)> {
        vec![("weight", &mut self.weight), ("bias", &mut self.bias)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dfdx_init_is_the_dfdx_layers_own() {
        let a = Linear::<3, 2>::dfdx_init(&Cpu::seed_from_u64(4));
        let dev = Cpu::seed_from_u64(4);
        let b = dev.build_module::<dfdx::nn::builders::Linear<3, 2>, f32>();
        assert_eq!(a.weight.value, b.weight.as_vec());
        assert_eq!(a.bias.value, b.bias.as_vec());
        let bound = 1.0 / 3f32.sqrt();
        assert!(a.weight.value.iter().all(|w| w.abs() <= bound));
    }

    #[test]
    fn forward_and_gradients_match_dfdx() {
        let dev = Cpu::seed_from_u64(1);
        let mut ours = Linear::<4, 3>::dfdx_init(&dev);
        let mut theirs = dev.build_module::<dfdx::nn::builders::Linear<4, 3>, f32>();
        theirs.weight = dev.tensor_from_vec(ours.weight.value.clone(), (Const, Const));
        theirs.bias = dev.tensor_from_vec(ours.bias.value.clone(), (Const,));
        let x: Tensor<Rank2<5, 4>, f32, Cpu> = dev.sample_normal();
        let r: Tensor<Rank2<5, 3>, f32, Cpu> = dev.sample_normal();
        let mut y = Vec::new();
        ours.forward(&x.as_vec(), &mut y, 5);
        let ty = theirs.forward(x.clone().traced(theirs.alloc_grads()));
        for (a, b) in y.iter().zip(ty.as_vec()) {
            assert!((a - b).abs() < 1e-5);
        }
        // Loss sum(y * r): dy = r.
        let grads = (ty * r.clone()).sum().backward();
        ours.param_grads(&r.as_vec(), &x.as_vec(), 5, false);
        let gw = grads.get(&theirs.weight).as_vec();
        let gb = grads.get(&theirs.bias).as_vec();
        for (a, b) in ours.weight.grad.iter().zip(&gw) {
            assert!((a - b).abs() < 1e-5);
        }
        for (a, b) in ours.bias.grad.iter().zip(&gb) {
            assert!((a - b).abs() < 1e-5);
        }
        ours.param_grads(&r.as_vec(), &x.as_vec(), 5, true);
        assert!((ours.bias.grad[0] - 2.0 * gb[0]).abs() < 1e-5);
        let mut dx = Vec::new();
        ours.input_grad(&r.as_vec(), &mut dx, 5);
        let expect = r.matmul(theirs.weight.clone()).as_vec();
        for (a, b) in dx.iter().zip(&expect) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}
