//! Small dfdx modules the recipes need that dfdx 0.13 lacks or gets subtly wrong for them.

use dfdx::prelude::*;

/// LeakyReLU with slope 0.2 for negative inputs, as the reference recipe has it.
///
/// dfdx's own `LeakyReLU<E>` is built with `Default`, whose slope is 0.05: a model type that
/// names it would silently train a different network. This module carries its slope in its type.
#[derive(Debug, Default, Clone, Copy)]
pub struct LeakyRelu02;

impl LeakyRelu02 {
    pub const SLOPE: f32 = 0.2;
}

impl ZeroSizedModule for LeakyRelu02 {}
impl NonMutableModule for LeakyRelu02 {}

impl<S: Shape, D: Device<f32>, T: Tape<f32, D>> Module<Tensor<S, f32, D, T>> for LeakyRelu02 {
    type Output = Tensor<S, f32, D, T>;
    type Error = D::Err;

    fn try_forward(&self, input: Tensor<S, f32, D, T>) -> Result<Self::Output, D::Err> {
        input.try_prelu(Self::SLOPE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_inputs_are_scaled_by_one_fifth() {
        let dev: Cpu = Default::default();
        let x = dev.tensor([-2.0f32, -0.5, 0.0, 3.0]);
        let y = LeakyRelu02.forward(x);
        assert_eq!(y.array(), [-0.4, -0.1, 0.0, 3.0]);
    }

    #[test]
    fn built_inside_a_model_keeps_its_slope() {
        let dev: Cpu = Default::default();
        let m = dev.build_module::<(Linear<1, 1>, LeakyRelu02), f32>();
        let mut m = m;
        m.0.weight = dev.tensor([[1.0]]);
        m.0.bias = dev.tensor([0.0]);
        let y = m.forward(dev.tensor([-1.0f32]));
        assert_eq!(y.array(), [-0.2]);
    }
}
