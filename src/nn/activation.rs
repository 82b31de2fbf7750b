//! The activations the project's layers fuse into their own passes (a bias add or a batch norm
//! followed by ReLU, LeakyReLU 0.2 or tanh), named as types so a model's type says which.
//!
//! Each derivative is read from the activation's output, whose sign (or value, for tanh) tells
//! all the backward pass needs, so no input is kept.

use std::fmt::Debug;

use super::kernels;

/// An element-wise activation a layer applies to its output.
pub trait Activation: Debug + Default + Clone + Copy + Send + Sync + 'static {
    /// `y = act(y + bias)`, `y` rows of `bias.len()` values.
    fn bias_then_apply(y: &mut [f32], bias: &[f32]);
    /// `act(x)` for one value.
    fn apply(x: f32) -> f32;
    /// `g *= act'(x)` where `y = act(x)`, element by element.
    fn backward_from_output(g: &mut [f32], y: &[f32]);
    /// Whether the activation is the identity (its backward pass can be skipped).
    const IS_IDENTITY: bool = false;
}

/// No activation.
#[derive(Debug, Default, Clone, Copy)]
pub struct Identity;

/// `max(x, 0)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Relu;

/// `x` for positive `x`, else `0.2 x` (DCGAN's slope, and every recipe's here).
#[derive(Debug, Default, Clone, Copy)]
pub struct LeakyRelu;

/// tanh, by `kernels::fast_tanh`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tanh;

/// The negative slope of `LeakyRelu`.
pub const LEAKY_SLOPE: f32 = 0.2;

impl Activation for Identity {
    const IS_IDENTITY: bool = true;
    fn bias_then_apply(y: &mut [f32], bias: &[f32]) {
        kernels::add_bias(y, bias);
    }
    fn apply(x: f32) -> f32 {
        x
    }
    fn backward_from_output(_: &mut [f32], _: &[f32]) {}
}

impl Activation for Relu {
    fn bias_then_apply(y: &mut [f32], bias: &[f32]) {
        kernels::bias_leaky_relu(y, bias, 0.0);
    }
    fn apply(x: f32) -> f32 {
        x.max(0.0)
    }
    fn backward_from_output(g: &mut [f32], y: &[f32]) {
        kernels::leaky_relu_grad(g, y, 0.0);
    }
}

impl Activation for LeakyRelu {
    fn bias_then_apply(y: &mut [f32], bias: &[f32]) {
        kernels::bias_leaky_relu(y, bias, LEAKY_SLOPE);
    }
    fn apply(x: f32) -> f32 {
        if x < 0.0 { x * LEAKY_SLOPE } else { x }
    }
    fn backward_from_output(g: &mut [f32], y: &[f32]) {
        kernels::leaky_relu_grad(g, y, LEAKY_SLOPE);
    }
}

impl Activation for Tanh {
    fn bias_then_apply(y: &mut [f32], bias: &[f32]) {
        kernels::bias_tanh(y, bias);
    }
    fn apply(x: f32) -> f32 {
        kernels::fast_tanh(x)
    }
    fn backward_from_output(g: &mut [f32], y: &[f32]) {
        kernels::tanh_grad(g, y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<A: Activation>(f: impl Fn(f32) -> f32) {
        let xs = [-2.0f32, -0.3, 0.4, 1.7];
        let mut y = xs.to_vec();
        A::bias_then_apply(&mut y, &[0.5]);
        let mut g = vec![1.0; 4];
        A::backward_from_output(&mut g, &y);
        for ((x, y), g) in xs.iter().zip(&y).zip(&g) {
            let x = x + 0.5;
            assert!((y - f(x)).abs() < 1e-5, "{x}: {y}");
            assert_eq!(A::apply(x), *y);
            let h = 1e-3;
            let numeric = (f(x + h) - f(x - h)) / (2.0 * h);
            assert!((g - numeric).abs() < 1e-2, "{x}: {g} vs {numeric}");
        }
    }

    #[test]
    fn each_activation_and_its_derivative() {
        check::<Identity>(|x| x);
        check::<Relu>(|x| x.max(0.0));
        check::<LeakyRelu>(|x| if x < 0.0 { 0.2 * x } else { x });
        check::<Tanh>(f32::tanh);
    }
}
